"""The poll job against a local HTTP server: validators, moves, 410, back-off."""
from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from werkzeug import Response

from bot.articles import LeadFinder
from bot.config import FeedConfig, HttpSettings
from bot.http import HttpClient
from bot.poll import Poller
from bot.store import Store
from tests.helpers import Clock, article

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>"""


def rss(*numbers: int) -> str:
    return RSS.format(items="".join(
        f"<item><title>Item {n}</title><link>https://e.example/{n}</link><guid>g{n}</guid>"
        f"<description>Item {n} is a story long enough to be a real lead for a post, with words.</description>"
        f"</item>" for n in numbers))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def poller(tmp_path, clock):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    client = HttpClient(HttpSettings(deadline=5, read_timeout=2))
    return Poller(store, client, LeadFinder(None), lambda feed: [("x", 0)], clock)


def feed(httpserver, path="/rss", every=timedelta(minutes=5)) -> FeedConfig:
    return FeedConfig(name="f", url=httpserver.url_for(path), every=every, fetch_article="never")


def test_new_items_after_first_sight_are_queued(poller, httpserver):
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(1), content_type="application/rss+xml")
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(2, 1), content_type="application/rss+xml")
    f = feed(httpserver)
    assert poller.poll(f).primed is True
    result = poller.poll(f, force=True)
    assert (result.new, result.queued) == (1, 1)


def test_etag_and_last_modified_make_a_304_cost_no_parsing(poller, httpserver):
    headers = {"ETag": '"v1"', "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(1), headers=headers)
    httpserver.expect_ordered_request(
        "/rss", headers={"If-None-Match": '"v1"', "If-Modified-Since": headers["Last-Modified"]}
    ).respond_with_response(Response(status=304))
    f = feed(httpserver)
    poller.poll(f)
    result = poller.poll(f, force=True)
    assert (result.new, result.queued) == (0, 0)
    httpserver.check_assertions()
    assert poller.store.feed_row("f", f.url).etag == '"v1"', "validators survive a 304"


def test_permanent_redirect_is_remembered(poller, httpserver):
    httpserver.expect_ordered_request("/old").respond_with_response(
        Response(status=301, headers={"Location": httpserver.url_for("/new")}))
    httpserver.expect_ordered_request("/new").respond_with_data(rss(1))
    httpserver.expect_ordered_request("/new").respond_with_data(rss(2, 1))
    f = feed(httpserver, "/old")
    poller.poll(f)
    assert poller.poll(f, force=True).queued == 1
    httpserver.check_assertions()  # the second poll went straight to /new


def test_410_disables_the_feed_with_a_logged_reason(poller, httpserver, caplog):
    httpserver.expect_request("/rss").respond_with_data("gone", status=410)
    f = feed(httpserver)
    assert poller.poll(f) is None
    assert "feed f: " in caplog.text and "polling stopped" in caplog.text
    assert poller.poll(f, force=True) is None
    assert len(httpserver.log) == 1, "a gone feed is not fetched again"


def test_failures_back_off_exponentially_and_other_feeds_go_on(poller, httpserver, clock):
    httpserver.expect_request("/bad").respond_with_data("oops", status=500)
    httpserver.expect_request("/good").respond_with_data(rss(1))
    bad, good = feed(httpserver, "/bad"), FeedConfig(name="g", url=httpserver.url_for("/good"),
                                                       fetch_article="never")
    assert poller.poll(bad) is None and poller.poll(good).primed
    row = poller.store.feed_row("f", bad.url)
    assert row.error_streak == 1 and row.next_poll_at == clock() + timedelta(minutes=5)
    clock.advance(minutes=4)
    assert poller.poll(bad) is None and len([e for e in httpserver.log if e[0].path == "/bad"]) == 1
    clock.advance(minutes=1)
    poller.poll(bad)
    row = poller.store.feed_row("f", bad.url)
    assert row.error_streak == 2 and row.next_poll_at == clock() + timedelta(minutes=10)
    assert "HTTP 500" in row.last_error


def test_retry_after_is_honoured(poller, httpserver, clock):
    httpserver.expect_request("/rss").respond_with_data("slow down", status=429, headers={"Retry-After": "3600"})
    f = feed(httpserver)
    poller.poll(f)
    assert poller.store.feed_row("f", f.url).next_poll_at == clock() + timedelta(hours=1)


def test_cache_control_max_age_is_a_lower_bound_on_the_interval(poller, httpserver, clock):
    httpserver.expect_request("/rss").respond_with_data(rss(1), headers={"Cache-Control": "public, max-age=1800"})
    f = feed(httpserver)
    poller.poll(f)
    assert poller.store.feed_row("f", f.url).next_poll_at == clock() + timedelta(minutes=30)


def test_a_feed_fetched_less_than_half_its_interval_ago_is_skipped(poller, httpserver, clock):
    # Several workers share feeds (issue 11): one that was just polled is not fetched again.
    httpserver.expect_request("/rss").respond_with_data(rss(1))
    f = feed(httpserver, every=timedelta(minutes=10))
    assert poller.poll(f).primed
    clock.advance(minutes=4, seconds=59)
    assert poller.poll(f) is None and len(httpserver.log) == 1
    assert poller.poll(f, force=True) is not None and len(httpserver.log) == 2
    clock.advance(minutes=5)
    assert poller.poll(f) is not None and len(httpserver.log) == 3


def test_a_clock_stepped_back_does_not_stop_polling(poller, httpserver, clock):
    httpserver.expect_request("/rss").respond_with_data(rss(1))
    f = feed(httpserver, every=timedelta(minutes=10))
    poller.poll(f)
    clock.advance(hours=-1)
    assert poller.poll(f) is not None and len(httpserver.log) == 2


class RecordingStore(Store):
    """A real store that notes what each ingest was handed."""

    def __init__(self, *args):
        super().__init__(*args)
        self.ingested: list[list[str]] = []

    def ingest(self, feed, found, accounts, **kwargs):
        self.ingested.append([a.item_id for a in found])
        return super().ingest(feed, found, accounts, **kwargs)


def test_known_items_are_left_out_before_any_per_item_work(tmp_path, clock, httpserver):
    store = RecordingStore(f"sqlite:///{tmp_path / 'r.db'}", clock)
    store.migrate()
    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    lambda feed: [("x", 0)], clock)
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(2, 1))
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(3, 2, 1))
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(3, 2, 1) + " ")
    f = feed(httpserver)
    poller.poll(f)
    assert (poller.poll(f, force=True).new, poller.poll(f, force=True).new) == (1, 0)
    # The first sight hands over the whole document; then only what the store did not know,
    # and a changed document with nothing new is not ingested at all.
    assert store.ingested == [["g2", "g1"], ["g3"]]
    assert [r.status for r in store.queue("x")] == ["pending"]


def test_the_backfill_at_first_sight_keeps_its_lead(tmp_path, clock, httpserver):
    # Only the backfill gets its text at first sight; an item listed twice is still one item.
    store = Store(f"sqlite:///{tmp_path / 'b.db'}", clock)
    store.migrate()
    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    lambda feed: [("x", 0)], clock)
    body = rss(3, 3, 2, 1).replace("<item>", "<item><pubDate>Wed, 25 Nov 2026 10:00:00 GMT"
                                    "</pubDate>", 2)
    httpserver.expect_request("/rss").respond_with_data(body)
    f = FeedConfig(name="f", url=httpserver.url_for("/rss"), backfill=1, fetch_article="never")
    assert (poller.poll(f).new, poller.poll(f, force=True).new) == (3, 0)
    queued = store.queue("x")
    assert len(queued) == 1
    assert store.article(queued[0].article_id).lead.startswith("Item 3 is a story")


class OvertakenStore(Store):
    """Another worker records the feed's whole first sight just after this
    one looked up its backfill, or made the feed's row (a lease taken over
    mid-poll)."""

    def known_items(self, feed, item_ids):
        answer = super().known_items(feed, item_ids)
        self._overtake(feed)
        return answer

    def open_feed(self, name, configured_url):
        answer = super().open_feed(name, configured_url)
        self._overtake(name)
        return answer

    cut_short = False   # the other's first sight recorded its items, then died unprimed

    def _overtake(self, feed):
        other = Store(self.url, self.clock)
        other.ingest(feed, [article(n, feed="f", item_id=f"g{n}", url=f"https://e.example/{n}")
                            for n in (3, 2, 1)], [("x", 0)], backfill=1)
        if self.cut_short:
            with other.tx() as conn:
                conn.execute(sa.text("UPDATE feed_state SET primed_at = NULL"))
        other.close()


@pytest.mark.parametrize("made_by", ["this poll", "this poll, cut short", "an earlier run"])
def test_a_first_sight_counts_and_queues_only_what_the_store_did_not_hold(tmp_path, clock,
                                                                           httpserver, made_by):
    store = OvertakenStore(f"sqlite:///{tmp_path / 'o.db'}", clock)
    store.migrate()
    store.cut_short = made_by.endswith("cut short")
    if made_by == "an earlier run":   # the other worker comes in after the backfill lookup
        Store.open_feed(store, "f", httpserver.url_for("/rss"))
    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    lambda feed: [("x", 0)], clock)
    httpserver.expect_request("/rss").respond_with_data(rss(3, 2, 1))
    f = FeedConfig(name="f", url=httpserver.url_for("/rss"), backfill=1, fetch_article="never")
    result = poller.poll(f)
    assert (result.new, result.queued) == (0, 0), "every item the other recorded is known"
    assert result.primed == store.cut_short, "primed by this poll only when the other died first"
    assert len(store.queue("x")) == 1, "the other worker's backfill, once"


def test_every_200_answer_tells_the_fetched_hook_its_hub_and_topic(tmp_path, clock, httpserver,
                                                                    caplog):
    heard = []

    def fetched(name, hub, topic):
        heard.append((name, hub, topic))
        if len(heard) == 2:
            raise RuntimeError("the hook broke")
    store = Store(f"sqlite:///{tmp_path / 'w.db'}", clock)
    store.migrate()
    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    lambda feed: [("x", 0)], clock, fetched=fetched)
    hub = ('<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="hub" href="https://hub.example/"/>'
           '<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="self" href="https://e.example/rss"/>')
    headers = {"ETag": '"v1"'}
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(1), headers=headers)
    httpserver.expect_ordered_request("/rss").respond_with_data(
        rss(2, 1).replace("<title>t</title>", "<title>t</title>" + hub), headers={"ETag": '"v2"'})
    httpserver.expect_ordered_request("/rss").respond_with_response(Response(status=304))
    f = feed(httpserver)
    poller.poll(f)
    assert poller.poll(f, force=True).new == 1  # a hook that raises costs the poll nothing
    poller.poll(f, force=True)
    assert heard == [("f", None, None), ("f", "https://hub.example/", "https://e.example/rss")]
    assert "the fetched hook failed (RuntimeError)" in caplog.text


# ---------------------------------------------------------------- unchanged feeds (issue 12)


def statements(store: Store) -> list[str]:
    """Every SQL statement the store's engine runs from now on."""
    seen: list[str] = []
    sa_event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, sql, *rest: seen.append(sql.split()[0].upper()))
    return seen


@pytest.mark.parametrize("row", ["made by this poll", "left by an earlier run"])
def test_a_new_feeds_first_sight_looks_none_of_its_items_up(poller, httpserver, row):
    httpserver.expect_request("/rss").respond_with_data(rss(3, 2, 1))
    f = dataclasses.replace(feed(httpserver), backfill=1)
    if row == "left by an earlier run":     # its row may hold a cut-short first sight
        poller.store.feed_row(f.name, f.url)
    sql: list[str] = []
    sa_event.listen(poller.store.engine, "before_cursor_execute",
                    lambda conn, cursor, text, *rest: sql.append(" ".join(text.split())))
    result = poller.poll(f)
    assert (result.new, result.queued, result.primed) == (3, 1, True)
    asked = [s for s in sql if s.startswith("SELECT") and "items.item_id IN" in s]
    assert bool(asked) == (row == "left by an earlier run"), sql


def etag_feed(httpserver, etag='"v1"'):
    httpserver.expect_request("/rss", headers={"If-None-Match": etag}).respond_with_response(
        Response(status=304, headers={"ETag": etag}))
    httpserver.expect_request("/rss").respond_with_data(rss(1), headers={"ETag": etag})
    return feed(httpserver)


def test_an_unchanged_healthy_feed_costs_no_statement_until_the_flush(poller, httpserver, clock):
    f = etag_feed(httpserver)
    poller.poll(f)
    poller.poll(f, force=True)                # the first 304 reads the row
    seen = statements(poller.store)
    for _ in range(3):
        clock.advance(minutes=5)
        assert poller.poll(f).new == 0
    assert seen == [], "three 304s of a healthy feed ask and write nothing"
    assert len(httpserver.log) == 5 and httpserver.log[-1][1].status_code == 304
    poller.store.flush_feeds()
    assert "UPDATE" in seen and seen.count("UPDATE") == 1, seen
    row = poller.store.feed_row("f", f.url)
    assert row.last_fetch_at == row.last_success_at == clock()


def test_a_304_still_keeps_the_interval_from_memory(poller, httpserver, clock):
    # The every/2 guard reads the noted time, not the database's older one.
    f = etag_feed(httpserver)
    poller.poll(f)
    clock.advance(minutes=5)
    poller.poll(f)
    clock.advance(minutes=1)
    assert poller.poll(f) is None and len(httpserver.log) == 2


def test_a_failure_after_unwritten_304s_keeps_both_times(poller, httpserver, clock):
    f = etag_feed(httpserver)
    poller.poll(f)
    clock.advance(minutes=5)
    poller.poll(f)                            # a 304 noted, not written
    noted = clock()
    httpserver.clear_all_handlers()
    httpserver.expect_request("/rss").respond_with_data("oops", status=500)
    clock.advance(minutes=5)
    poller.poll(f)                            # written at once
    poller.store.flush_feeds()                # the older note must not move anything back
    row = poller.store.feed_row("f", f.url)
    assert row.last_fetch_at == clock() and row.last_success_at == noted
    assert row.error_streak == 1 and "HTTP 500" in row.last_error


def test_a_304_of_a_failing_feed_clears_its_error_at_once(poller, httpserver, clock):
    f = etag_feed(httpserver)
    poller.poll(f)
    poller.store.update_feed("f", error_streak=2, last_error="HTTP 503")
    poller.forget(["f"])
    clock.advance(minutes=5)
    poller.poll(f, force=True)
    row = poller.store.feed_row("f", f.url)
    assert (row.error_streak, row.last_error, row.last_success_at) == (0, None, clock())


def test_a_forgotten_feed_is_read_again(poller, httpserver, clock):
    # Another worker held the feed meanwhile and stored new validators.
    f = etag_feed(httpserver)
    poller.poll(f)
    clock.advance(minutes=5)
    poller.poll(f)
    poller.store.update_feed("f", etag='"v2"')
    clock.advance(minutes=5)
    poller.poll(f)
    assert httpserver.log[-1][0].headers["If-None-Match"] == '"v1"', "remembered while held"
    poller.forget(["f"])
    clock.advance(minutes=5)
    poller.poll(f)
    assert httpserver.log[-1][0].headers["If-None-Match"] == '"v2"'


def test_unchanged_polls_are_written_when_the_store_closes(tmp_path, httpserver, clock):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    poller = Poller(store, HttpClient(HttpSettings()), LeadFinder(None), lambda feed: [], clock)
    f = etag_feed(httpserver)
    poller.poll(f)
    clock.advance(minutes=5)
    poller.poll(f)
    store.close()
    again = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    assert again.feed_row("f", f.url).last_fetch_at == clock()
    again.close()


def test_after_a_changed_feed_the_next_304_asks_nothing(poller, httpserver, clock):
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(1), headers={"ETag": '"v1"'})
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(2, 1), headers={"ETag": '"v2"'})
    httpserver.expect_ordered_request("/rss", headers={"If-None-Match": '"v2"'}).respond_with_response(
        Response(status=304))
    f = feed(httpserver)
    poller.poll(f)
    clock.advance(minutes=5)
    assert poller.poll(f).queued == 1
    seen = statements(poller.store)
    clock.advance(minutes=5)
    assert poller.poll(f).new == 0
    httpserver.check_assertions()
    assert seen == []


def test_a_forced_poll_during_a_failing_poll_leaves_the_feed_as_the_last_one_found(
        poller, httpserver, clock):
    # A ping arrives while the scheduled poll waits on a server that then fails.
    # The ping's poll must start from the failure, not from the row both saw
    # before it: its 304 clears the error instead of leaving it stuck.
    f = etag_feed(httpserver)
    poller.poll(f)
    httpserver.clear_all_handlers()
    answers = iter([Response("oops", status=500), Response(status=304)])

    def slow_then_fine(_request):
        answer = next(answers)
        if answer.status_code == 500:
            time.sleep(0.4)
        return answer
    httpserver.expect_request("/rss").respond_with_handler(slow_then_fine)
    clock.advance(minutes=5)
    scheduled = threading.Thread(target=poller.poll, args=(f,))
    scheduled.start()
    time.sleep(0.1)
    poller.poll(f, force=True)
    scheduled.join()
    poller.store.flush_feeds()
    row = poller.store.feed_row("f", f.url)
    assert (row.error_streak, row.last_error, row.next_poll_at) == (0, None, None)


def test_a_feed_token_never_sits_in_the_database_yet_follows_the_move(poller, httpserver, tmp_path):
    # The token is in the userinfo and in the query; the feed moves within its
    # host, so the next poll needs both.
    key, password = "q-s3cret-value", "p4ss-w0rd-token"
    base = httpserver.url_for("/").replace("http://", f"http://reader:{password}@")
    httpserver.expect_ordered_request("/old", query_string={"key": key}).respond_with_response(
        Response(status=301, headers={"Location": f"/new?key={key}"}))
    auth = {"Authorization": "Basic cmVhZGVyOnA0c3MtdzByZC10b2tlbg=="}
    httpserver.expect_ordered_request("/new", query_string={"key": key}, headers=auth
                                      ).respond_with_data(rss(1))
    httpserver.expect_ordered_request("/new", query_string={"key": key}, headers=auth
                                      ).respond_with_data(rss(2, 1))
    f = FeedConfig(name="f", url=f"{base}old?key={key}", fetch_article="never")
    poller.poll(f)
    poller._rows.clear()   # as after a restart: the row is read from the database
    assert poller.poll(f, force=True).queued == 1
    httpserver.check_assertions()
    poller.store.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "h.db").iterdump())
    assert key not in dump and password not in dump


def test_a_sealed_move_that_no_longer_fits_the_configured_url_starts_from_it(poller, httpserver):
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(1))
    f = feed(httpserver)
    poller.store.feed_row("f", f.url)
    poller.store.update_feed("f", url="http://elsewhere.invalid/{secret:900:950}")
    assert poller.poll(f).primed, "polled at its configured URL"
    assert len(httpserver.log) == 1
