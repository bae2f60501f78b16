"""`status`: the service header, exit codes, JSON keys, zones, order, titles."""
from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import report
from bot.articles import LeadFinder
from bot.config import FeedConfig, HttpSettings, Schedule
from bot.errors import AuthFailed, RateLimited, Rejected
from bot.http import HttpClient
from bot.poll import Poller
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import article
from tests.test_publish import clock, make, queue, store  # noqa: F401 (fixtures)

WHEN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?( [A-Za-z_]+(?:/[A-Za-z_]+)*)?")
TOP_KEYS = {"version", "generated_at", "timezone", "exit_code", "problems", "service", "feeds",
            "failed_posts", "accounts", "recent_posts", "held_posts", "filtered_posts"}


def status(store, publisher, **kw):
    out = io.StringIO()
    code = report.status(store, publisher, out, **kw)
    return code, out.getvalue()


def beating(store, clock, age=timedelta(seconds=30)):
    """A service that started an hour ago and beat ``age`` ago."""
    store.beat("web1:4242", "web1", 4242, clock() - timedelta(hours=1))
    clock.advance(seconds=age.total_seconds())   # the beat carries the store's clock


def poller(store, clock):
    client = HttpClient(HttpSettings(deadline=5, read_timeout=2))
    return Poller(store, client, LeadFinder(None), lambda feed: [("x", 0)], clock)


# -- the header and the service condition -------------------------------------------

def test_no_heartbeat_at_all_is_no_service_and_exit_1(store, clock):
    publisher, _ = make(store, clock)
    code, out = status(store, publisher)
    assert out.splitlines()[0] == "no service running"
    assert code == 1 and out.rstrip().endswith("problems (exit 1): no service running")


def test_a_recent_heartbeat_is_a_running_service_and_exit_0(store, clock):
    publisher, _ = make(store, clock)
    beating(store, clock, timedelta(seconds=30))
    code, out = status(store, publisher)
    assert out.splitlines()[0] == ("service running (pid 4242, host web1, since 2026-11-27 08:00 UTC, "
                                   "last heartbeat 30 s ago)")
    assert code == 0 and "problems" not in out


def test_a_heartbeat_older_than_two_minutes_is_no_service(store, clock):
    publisher, _ = make(store, clock)
    beating(store, clock, timedelta(minutes=2, seconds=1))
    code, out = status(store, publisher)
    assert out.splitlines()[0] == ("no service running (last heartbeat 2026-11-27 09:00 UTC, "
                                   "2 min ago, pid 4242 on host web1)")
    assert code == 1


def test_a_clean_shutdown_leaves_no_service(store, clock):
    publisher, _ = make(store, clock)
    beating(store, clock)
    store.end_worker("web1:4242")
    assert status(store, publisher)[0] == 1


# -- accounts: paused is 1, rate limited is 0 ------------------------------------------

def test_rate_limited_alone_exits_0_and_is_not_called_paused(store, clock):
    publisher, adapter = make(store, clock)
    beating(store, clock)
    queue(store, 1, 2)
    adapter.script = [RateLimited(clock() + timedelta(minutes=15), "X answered 429")]
    publisher.run()
    code, out = status(store, publisher)
    assert code == 0, out
    assert "[rate limited until 2026-11-27 09:15 UTC]" in out
    assert "PAUSED" not in out and "(paused)" not in out, "the queue says why it waits"
    assert "(rate limited)" in out


def test_a_paused_account_exits_1_and_names_the_fix(store, clock):
    publisher, adapter = make(store, clock)
    beating(store, clock)
    queue(store, 1, 2)
    adapter.script = [AuthFailed("401 Unauthorized")]
    publisher.run()
    code, out = status(store, publisher)
    assert code == 1
    assert "PAUSED: auth failed: 401 Unauthorized; fix it, then `run_bot.py resume x`" in out
    assert "2 post(s) wait until the account is resumed" in out
    assert "problems (exit 1): account x is paused: auth failed: 401 Unauthorized" in out


def test_an_auth_pause_with_changed_credentials_lifts_itself_and_exits_0(store, clock):
    publisher, adapter = make(store, clock)
    beating(store, clock)
    queue(store, 1)
    adapter.script = [AuthFailed("401 Unauthorized")]
    publisher.run()
    fixed, _ = make(store, clock, token="tok-2")
    code, out = status(store, fixed)
    assert code == 0 and "resumes at the next pass" in out
    assert store.account_row("x").paused_reason, "status read it, and wrote nothing"


# -- feeds: failing after the back-off or gone is 1 -------------------------------------

def feed(httpserver, path="/rss") -> FeedConfig:
    return FeedConfig(name="world", url=httpserver.url_for(path), every=timedelta(minutes=5),
                      fetch_article="never")


def test_one_failure_backs_off_and_exits_0_a_second_after_the_back_off_exits_1(
        store, clock, httpserver):
    publisher, _ = make(store, clock)
    beating(store, clock)
    httpserver.expect_request("/rss").respond_with_data("no", status=404)
    f = feed(httpserver)
    poller(store, clock).poll(f, force=True)
    code, out = status(store, publisher)
    assert code == 0, out
    assert "world: last fetch 2026-11-27 09:00 UTC" in out
    assert "failed x1: " in out and "next try 2026-11-27 09:05 UTC" in out
    clock.advance(minutes=10)
    beating(store, clock)
    poller(store, clock).poll(f)
    code, out = status(store, publisher)
    assert code == 1 and "FAILING x2: " in out
    assert "problems (exit 1): feed world failed 2 times in a row" in out


def test_a_gone_feed_exits_1(store, clock, httpserver):
    publisher, _ = make(store, clock)
    beating(store, clock)
    httpserver.expect_request("/rss").respond_with_data("gone", status=410)
    poller(store, clock).poll(feed(httpserver), force=True)
    code, out = status(store, publisher)
    assert code == 1 and "GONE: " in out and "polling stopped" in out
    assert "feed world is gone" in out


# -- JSON -------------------------------------------------------------------------------

def test_json_has_the_documented_keys_and_iso_times_with_offsets(store, clock):
    sched = Schedule(timezone="Europe/Berlin", max_per_day=1)
    publisher, adapter = make(store, clock, schedule=sched)
    beating(store, clock)
    queue(store, 1, 2, 3)
    adapter.script = [Rejected("400 text too long")]
    publisher.run()
    code, out = status(store, publisher, as_json=True, zone="America/New_York")
    doc = json.loads(out)
    assert set(doc) == TOP_KEYS and doc["version"] == 1
    assert doc["exit_code"] == code == 0 and doc["problems"] == []
    assert doc["timezone"] == "America/New_York"
    assert doc["generated_at"] == "2026-11-27T04:00:30-05:00"
    assert set(doc["service"]) == {"running", "workers"} and doc["service"]["running"] is True
    assert set(doc["service"]["workers"][0]) == {"worker", "host", "pid", "since", "last_heartbeat",
                                                 "heartbeat_age_seconds", "alive", "feeds",
                                                 "accounts"}
    assert set(doc["feeds"][0]) == {"name", "state", "last_fetch", "last_success", "error_streak",
                                    "last_error", "gone_reason", "next_try"}
    (failed,) = doc["failed_posts"]
    assert set(failed) == {"id", "account", "title", "at", "article_url", "error", "platform_id",
                           "permalink"}
    assert "400 text too long" in failed["error"] and failed["at"].endswith("+01:00")
    (account,) = doc["accounts"]
    assert set(account) == {"name", "platform", "timezone", "state", "paused_reason",
                            "resumes_by_itself", "waiting_until", "wait_reason", "counts",
                            "queue", "queue_total"}
    assert account["timezone"] == "Europe/Berlin"
    assert account["counts"] == {"pending": 1, "sent": 1, "failed": 1}
    assert set(account["queue"][0]) == {"id", "title", "at", "reason", "expires_at",
                                        "expires_before_sent"}
    planned = datetime.fromisoformat(account["queue"][0]["at"])
    assert planned.utcoffset() == timedelta(hours=1), "Berlin in November"


def test_json_says_why_the_exit_code_is_1(store, clock):
    publisher, _ = make(store, clock)
    code, out = status(store, publisher, as_json=True)
    doc = json.loads(out)
    assert code == doc["exit_code"] == 1 and doc["problems"] == ["no service running"]
    assert doc["service"] == {"running": False, "workers": []}


# -- reading it -------------------------------------------------------------------------

def test_every_time_is_labelled_with_the_account_zone_else_the_config_zone(store, clock, httpserver):
    sched = Schedule(timezone="Asia/Tokyo", max_per_day=2)
    publisher, _ = make(store, clock, schedule=sched)
    beating(store, clock)
    httpserver.expect_request("/rss").respond_with_data("no", status=500)
    poller(store, clock).poll(feed(httpserver), force=True)
    queue(store, 1, 2, 3, 4)
    publisher.run()
    code, out = status(store, publisher, zone="America/New_York")
    times = WHEN.findall(out)
    assert len(times) == 7 and all(times), f"an unlabelled time in:\n{out}"
    feed_line = next(line for line in out.splitlines() if line.startswith("  world:"))
    assert set(WHEN.findall(feed_line)) == {" America/New_York"}
    after = out[out.index("accounts:"):]
    assert set(WHEN.findall(after)) == {" Asia/Tokyo"}
    assert "since 2026-11-27 03:00 America/New_York" in out.splitlines()[0]


def test_failed_posts_come_before_the_long_queues(store, clock):
    publisher, adapter = make(store, clock, schedule=Schedule(max_per_day=1))
    beating(store, clock)
    queue(store, *range(1, 31))
    adapter.script = [Rejected("400 duplicate")]
    publisher.run()
    code, out = status(store, publisher)
    assert out.index("failed posts:\n  #") < out.index("accounts:") < out.index("... and 8 more")
    assert out.index("... and 8 more") < out.index("recent posts:")


def test_titles_are_cut_at_a_word(store, clock):
    publisher, _ = make(store, clock)
    beating(store, clock)
    title = "Parliament debates the long awaited reform of the electorates after a midnight session"
    store.ingest("world", [article(1, title=title)], [("x", 0)])
    code, out = status(store, publisher)
    line = next(line for line in out.splitlines() if line.startswith("    #"))
    shown = line.split(": ", 1)[1]
    assert shown == "Parliament debates the long awaited reform of the…", "not 'electorat…'"
    assert title.startswith(shown[:-1])


def test_a_post_that_will_expire_before_its_turn_says_when(store, clock):
    sched = Schedule(max_per_hour=1, expire_after=timedelta(minutes=30))
    publisher, _ = make(store, clock, schedule=sched)
    beating(store, clock)
    queue(store, 1, 2)
    code, out = status(store, publisher)
    assert "at 2026-11-27 09:00 UTC (due)" in out
    assert "expires 2026-11-27 09:30 UTC before it can go (hourly cap)" in out
    doc = json.loads(status(store, publisher, as_json=True)[1])
    lost = [q for q in doc["accounts"][0]["queue"] if q["expires_before_sent"]]
    assert [q["expires_at"] for q in lost] == ["2026-11-27T09:30:30+00:00"]


def test_a_sent_post_shows_its_platform_id_and_permalink_when_known(store, clock):
    publisher, _ = make(store, clock)
    beating(store, clock)
    queue(store, 1)
    publisher.run()
    code, out = status(store, publisher)
    assert "recent posts:\n  #" in out and "— id id-1" in out
    (sent,) = json.loads(status(store, publisher, as_json=True)[1])["recent_posts"]
    assert sent["platform_id"] == "id-1"
    assert sent["article_url"] == "https://news.example.org/story-1"


TITLES = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
                   st.text(st.sampled_from("ab c,;\n\t—Ａ-"), max_size=300),
                   st.lists(st.text("abcＡ,-", min_size=1, max_size=14), min_size=1, max_size=40)
                   .map(" ".join))


@given(TITLES, st.integers(min_value=10, max_value=120))
def test_cut_is_one_line_within_the_width_and_ends_at_a_word_unless_it_cannot(title, width):
    shown = report.cut(title, width)
    flat = " ".join(title.split())
    assert len(shown) <= width and not any(c.isspace() and c != " " for c in shown)
    if flat == shown:
        return
    assert shown.endswith("…") and len(flat) > width
    kept = shown[:-1]
    assert flat.startswith(kept)
    at_word = flat[len(kept):][:1] in (" ", ",", ";", ":", "-", "–", "—")
    no_word_near = flat[:width - 1].rfind(" ") < width // 2 and flat[width - 1] != " "
    assert at_word or no_word_near


@pytest.mark.parametrize("title, shown", [
    ("Short title", "Short title"),
    ("A title\nwith a line break", "A title with a line…"),
    ("Ａ" * 80, "Ａ" * 19 + "…"),
    ("Word " * 10, "Word Word Word Word…"),
    ("Wordy " * 10, "Wordy Wordy Wordy…"),
])
def test_cut_examples(title, shown):
    assert report.cut(title, 20) == shown


def test_a_many_line_error_is_one_line_of_the_report(store, clock):
    publisher, adapter = make(store, clock)
    beating(store, clock)
    queue(store, 1)
    adapter.script = [Rejected("400 Bad Request\n" + "<html>\n" * 200)]
    publisher.run()
    code, out = status(store, publisher)
    line = next(line for line in out.splitlines() if line.startswith("  #1 x "))
    assert "rejected: 400 Bad Request <html>" in line and line.endswith("…")
    assert out.splitlines()[out.splitlines().index(line) + 1] == "accounts:"


def test_several_workers_are_listed_with_the_feeds_and_accounts_each_holds(store, clock):
    from bot.leases import Leases
    publisher, _ = make(store, clock)
    feeds = [f"feed-{n}" for n in range(7)]
    workers = [Leases(store, f"web{n}:1{n}", clock, timedelta(seconds=20), host=f"web{n}",
                      pid=10 + n, started_at=clock() - timedelta(hours=1)) for n in (1, 2)]
    for _ in range(2):
        for leases in workers:
            leases.refresh(feeds, ["x"])
    doc = json.loads(status(store, publisher, as_json=True)[1])
    held = {w["worker"]: (w["feeds"], w["accounts"]) for w in doc["service"]["workers"]}
    assert sorted(len(f) for f, _ in held.values()) == [3, 4]
    assert sorted(a for _, accounts in held.values() for a in accounts) == ["x"]
    text = status(store, publisher)[1]
    assert "service running: 2 workers" in text
    assert re.search(r"worker pid 11 on web1, .*: [34] feeds \(feed-", text)


def test_held_and_filtered_posts_are_shown_with_why(store, clock):
    from bot.models import Target
    publisher, _ = make(store, clock)

    def targets(a):
        if a.item_id == "guid-1":
            return [Target("x", status="held")]
        return [Target("x", status="filtered", reason='excluded keyword "sport"')]
    store.ingest("world", [article(1), article(2)], targets, backfill=2)
    doc = json.loads(status(store, publisher, as_json=True)[1])
    assert [p["title"] for p in doc["held_posts"]] == ["Story number 1"]
    (kept_out,) = doc["filtered_posts"]
    assert kept_out["error"] == 'excluded keyword "sport"'
    assert doc["accounts"][0]["counts"] == {"held": 1, "filtered": 1}
    text = status(store, publisher)[1]
    assert "held for approval (approve ID or reject ID):" in text
    assert 'Story number 2 — excluded keyword "sport"' in text


def test_an_x_budget_shows_what_this_month_spent_and_when_it_resets(store, clock):
    import dataclasses

    from bot.configtypes import Budget
    publisher, _ = make(store, clock)
    account = publisher.accounts[0]
    account.config = dataclasses.replace(account.config, budget=Budget(posts=10))
    queue(store, 1, 2, 3)
    assert publisher.run() == 3
    doc = json.loads(status(store, publisher, as_json=True)[1])
    shown = doc["accounts"][0]["budget"]
    assert shown["unit"] == "posts" and shown["spent"] == 3 and shown["left"] == 7
    assert datetime.fromisoformat(shown["resets"]).astimezone(timezone.utc) == \
        datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert "budget: 3 posts spent this month, 7 left, resets 2026-12-01" in status(store, publisher)[1]
