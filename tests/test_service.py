"""The service's own guards: a second SIGTERM, a wall clock stepping back, a
database deleted under it, one feed's unexpected error."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bot.articles import LeadFinder
from bot.config import FeedConfig, HttpSettings
from bot.errors import StoreError
from bot.http import HttpClient
from bot.poll import Poller
from bot.service import ClockWatch, Stopper
from bot.store import Store
from tests.helpers import Clock

ROOT = Path(__file__).resolve().parents[1]


class FakeScheduler:
    def __init__(self, jobs=()):
        self.shutdowns: list[bool] = []
        self.jobs = list(jobs)
        self.woken = 0

    def shutdown(self, wait=True):
        self.shutdowns.append(wait)

    def get_jobs(self):
        return self.jobs

    def wakeup(self):
        self.woken += 1


class FakeJob:
    def __init__(self):
        self.changes: list = []

    def modify(self, **changes):
        self.changes.append(changes)


def test_a_second_sigterm_changes_nothing():
    scheduler, stops = FakeScheduler(), []
    stopper = Stopper(scheduler, lambda: stops.append(1))
    stopper.signal(signal.SIGTERM, None)
    stopper.signal(signal.SIGTERM, None)
    stopper.signal(signal.SIGINT, None)
    stopper.join()
    assert scheduler.shutdowns == [True] and stops == [1] and stopper.code == 0


def test_a_fatal_database_error_stops_with_status_1():
    scheduler = FakeScheduler()
    stopper = Stopper(scheduler, lambda: None)
    stopper.fatal(StoreError("database h.db was deleted while Herald ran", fatal=True))
    assert scheduler.shutdowns == [False] and stopper.code == 1


def test_a_wall_clock_stepping_back_makes_every_job_due():
    wall, mono = [1_000_000.0], [50.0]
    jobs = [FakeJob(), FakeJob()]
    watch = ClockWatch(FakeScheduler(jobs), wall=lambda: wall[0], mono=lambda: mono[0])
    wall[0] += 5
    mono[0] += 5
    assert not watch.check(), "time going on is no step"
    wall[0] -= 3600
    mono[0] += 5
    assert watch.check()
    assert all(len(j.changes) == 1 and "next_run_time" in j.changes[0] for j in jobs)
    wall[0] += 40
    mono[0] += 5
    assert not watch.check(), "a step forward waits for nothing"


def test_a_feed_with_a_stepped_back_clock_is_polled(tmp_path):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    feed = FeedConfig(name="f", url=(tmp_path / "feed.xml").as_uri(), every=timedelta(minutes=5),
                      fetch_article="never")
    store.feed_row("f", feed.url)
    store.update_feed("f", last_fetch_at=clock(), next_poll_at=clock() + timedelta(hours=1))
    poller = Poller(store, HttpClient(HttpSettings()), LeadFinder(None), lambda f: [], clock)
    assert poller._waiting(store.feed_row("f", feed.url))
    clock.advance(hours=-1)
    assert not poller._waiting(store.feed_row("f", feed.url))


class ExplodingClient(HttpClient):
    """A client whose fetch fails with a bug nobody foresaw, for one feed."""

    def get(self, url, *args, **kwargs):
        if "bad" in url:
            raise RuntimeError("something nobody foresaw")
        return super().get(url, *args, **kwargs)


def test_one_feed_with_an_unexpected_error_is_recorded_and_others_go_on(tmp_path, httpserver):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    httpserver.expect_request("/good.xml").respond_with_data(
        (ROOT / "config" / "demo" / "feed.xml").read_bytes(), content_type="application/rss+xml")
    poller = Poller(store, ExplodingClient(HttpSettings()), LeadFinder(None), lambda f: [], clock)
    feeds = [FeedConfig(name=n, url=httpserver.url_for(f"/{n}.xml"), fetch_article="never")
             for n in ("bad", "good")]
    results = [poller.poll(f, force=True) for f in feeds]
    assert results[0] is None and results[1].new > 0
    bad = next(r for r in store.feeds() if r.name == "bad")
    assert bad.last_error == "unexpected error RuntimeError: something nobody foresaw"
    assert bad.error_streak == 1 and bad.next_poll_at > clock()


def test_the_database_deleted_under_run_stops_it_with_one_line(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    config = tmp_path / "config" / "demo.yaml"
    config.write_text(config.read_text().replace("every: 5m", "every: 5s")
                      + "publish_every: 5s\n")
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config),
                             "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        seen = ""
        deadline = time.monotonic() + 30
        while "post sent" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "post sent" in seen, seen
        os.remove(tmp_path / "data" / "demo.db")
        assert proc.wait(timeout=30) == 1
        err = proc.stderr.read()
        assert err.count("was deleted while Herald ran") == 2, err   # the store's line, the stop
        assert "Traceback" not in err
    finally:
        proc.kill()


def test_a_database_that_is_not_one_is_one_line_and_exit_1(tmp_path, capsys):
    from bot.cli import main
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo.db").write_text("not sqlite\n" * 500)
    for command in ("once", "status"):
        code = main(["--config", str(tmp_path / "config" / "demo.yaml"), command])
        err = capsys.readouterr().err
        assert code == 1 and "it is not a usable SQLite database" in err, err
        assert "Traceback" not in err and err.count("not a usable SQLite") == 1, err


def test_a_huge_title_and_lead_are_stored_as_a_bounded_prefix(tmp_path, httpserver):
    from bot.articles import MAX_LEAD, MAX_TITLE
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    body = ("<rss version='2.0'><channel><title>t</title>{}</channel></rss>")
    item = ("<item><title>{}</title><link>https://e.example/1</link><guid>g1</guid>"
            "<description>{}</description></item>").format("Word " * 200_000, "Lead. " * 100_000)
    httpserver.expect_ordered_request("/rss").respond_with_data(body.format(""))
    httpserver.expect_ordered_request("/rss").respond_with_data(body.format(item))
    feed = FeedConfig(name="f", url=httpserver.url_for("/rss"), fetch_article="never")
    poller = Poller(store, HttpClient(HttpSettings(max_bytes=10_000_000)), LeadFinder(None),
                    lambda f: [("x", 0)], clock)
    poller.poll(feed, force=True)
    assert poller.poll(feed, force=True).queued == 1
    (row,) = store.queue("x")
    stored = store.article(row.article_id)
    assert len(stored.title) <= MAX_TITLE + 1 and stored.title.endswith("Word…")
    assert len(stored.lead) <= MAX_LEAD + 1


def test_two_jobs_meeting_the_same_fatal_error_stop_with_one_line(caplog):
    scheduler = FakeScheduler()
    stopper = Stopper(scheduler, lambda: None)
    error = StoreError("database h.db was deleted while Herald ran", fatal=True)
    stopper.fatal(error)
    stopper.fatal(error)
    assert [r.message for r in caplog.records].count(f"stopping: {error}") == 1
    assert scheduler.shutdowns == [False]


def test_a_ping_during_the_feeds_poll_is_answered_by_another_poll_at_once():
    import threading

    from bot.service import Service, Wiring
    feed = FeedConfig(name="news", url="https://news.example.org/rss")
    started, release, calls = threading.Event(), threading.Event(), []

    def poll(f, force=False):
        calls.append(force)
        if len(calls) == 1:
            started.set()
            release.wait(10)
    service = Service(Wiring([feed], poll, lambda: None, owns=lambda name: False),
                      "UTC", timedelta(seconds=15), notify=lambda *a: True)
    assert service.poll_now("news") and not service.poll_now("nope")
    runner = threading.Thread(target=service._poll, args=("news",))
    runner.start()
    assert started.wait(10)
    service.poll_now("news")        # while the first poll runs: the job cannot start again
    release.set()
    runner.join(10)
    assert calls == [True, True], "the feed is another worker's, yet both pings poll it"
    service._poll("news")
    assert calls == [True, True], "without a ping, a feed this worker does not hold is left alone"


def test_feeds_taken_over_have_their_jobs_made_due_once():
    from bot.service import Service, Wiring
    service = Service(Wiring([], lambda f, force=False: None, lambda: None), "UTC",
                      timedelta(seconds=15), notify=lambda *a: True)
    service.poll_soon(["b", "a"])
    assert service._nudged() == ["poll:a", "poll:b", "publish"]
    assert service._nudged() == ["publish"]
