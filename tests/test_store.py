"""Dedupe, first sight and outbox transitions, across restarts of the process."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bot.store import Store
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

ACCOUNTS = [("x", 0), ("fb", 0)]
ROOT = Path(__file__).resolve().parents[1]


def open_store(url: str, clock=None) -> Store:
    store = Store(url, clock or Clock())
    store.migrate()
    return store


def poll(store: Store, found, feed="world", url="https://news.example.org/rss", **kw):
    store.feed_row(feed, url)
    return store.ingest(feed, found, ACCOUNTS, **kw)


def pending(store: Store, account="x") -> list[str]:
    return [r.title for r in store.queue(account)]


def test_first_sight_of_20_items_queues_nothing(db_url):
    store = open_store(db_url)
    result = poll(store, [article(n) for n in range(20)])
    assert (result.new, result.queued, result.primed) == (20, 0, True)
    assert pending(store) == []


def test_backfill_queues_the_newest_n(db_url):
    store = open_store(db_url)
    poll(store, [article(n) for n in (5, 1, 3, 2)], backfill=2)
    assert sorted(pending(store)) == ["Story number 1", "Story number 2"]


def test_restart_lost_etag_and_reordering_never_repost(db_url):
    store = open_store(db_url)
    poll(store, [article(n) for n in range(5)])
    store.close()
    store = open_store(db_url)  # a new process on the same database
    result = poll(store, [article(n) for n in reversed(range(5))])
    assert (result.new, result.queued) == (0, 0)


def test_new_item_after_first_sight_is_queued_once_per_account(db_url):
    store = open_store(db_url)
    poll(store, [article(1)])
    result = poll(store, [article(2), article(1)])
    assert (result.new, result.queued) == (1, 2)
    assert pending(store, "x") == pending(store, "fb") == ["Story number 2"]


def test_edited_item_keeps_its_guid_and_is_not_posted_again(db_url):
    store = open_store(db_url)
    poll(store, [article(1)])
    poll(store, [article(2)])
    result = poll(store, [article(2, title="Story number 2 (updated)")])
    assert result.new == 0 and pending(store) == ["Story number 2"]


def test_same_story_through_two_feeds_or_a_new_guid_is_not_queued_twice(db_url):
    store = open_store(db_url)
    poll(store, [article(1)])
    poll(store, [article(1, feed="other")], feed="other", url="https://other.example/rss")
    poll(store, [article(2)])
    tracked = article(2, feed="other", item_id="other-guid",
                      url="https://NEWS.example.org/story-2?utm_source=rss#top")
    result = poll(store, [tracked], feed="other", url="https://other.example/rss")
    assert result.new == 1 and result.queued == 0
    assert pending(store) == ["Story number 2"]


def test_max_age_keeps_old_items_out(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    result = poll(store, [article(1), article(30)], max_age=timedelta(hours=12))
    assert result.queued == 2 and pending(store) == ["Story number 1"]


def test_outbox_transitions(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    poll(store, [article(1)])
    (row,) = store.queue("x")
    assert store.claim(row.id, "worker-a", "text") is True
    assert store.claim(row.id, "worker-b", "text") is False, "a claimed row cannot be claimed again"
    assert store.queue("x") == [] and len(store.queue("x", ("sending",))) == 1
    store.release(row.id, "HTTP 503", not_before=clock() + timedelta(minutes=1))
    (row,) = store.queue("x")
    assert row.attempts == 1 and row.last_error == "HTTP 503" and row.claimed_by is None
    store.claim(row.id, "worker-a", "text")
    store.mark_sent(row.id, "1234")
    assert store.sent_times("x", clock() - timedelta(hours=1)) == [clock()]
    assert store.skip(row.id) == 0, "a sent post cannot be skipped"


def test_two_workers_racing_for_each_row_claim_it_exactly_once(db_url):
    setup = open_store(db_url)
    poll(setup, [])
    poll(setup, [article(n) for n in range(1, 31)])
    row_ids = [r.id for account in ("x", "fb") for r in setup.queue(account)]
    workers = [open_store(db_url), open_store(db_url)]  # two processes, one database
    start = threading.Barrier(2, timeout=10)

    def race(me: int) -> list[bool]:
        won = []
        for row_id in row_ids:
            start.wait()  # both hit the same row at the same moment
            won.append(workers[me].claim(row_id, f"worker-{me}", "text"))
        return won

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(race, (0, 1))
    assert [a + b for a, b in zip(first, second)] == [1] * len(row_ids)
    holders = {r.id: r.claimed_by for a in ("x", "fb") for r in setup.queue(a, ("sending",))}
    assert holders == {row_id: f"worker-{0 if won else 1}" for row_id, won in zip(row_ids, first)}


def test_failed_posts_can_be_retried_and_skipped(db_url):
    store = open_store(db_url)
    poll(store, [])
    poll(store, [article(1), article(2)])
    first, second = store.queue("x")
    store.mark_failed(first.id, "rejected: text too long")
    store.mark_failed(second.id, "rejected: text too long")
    assert store.retry(row_id=first.id) == 1
    assert store.skip(second.id) == 1
    assert store.retry(account="x") == 0
    assert store.outbox_counts()["x"] == {"pending": 1, "skipped": 1}


def test_changing_a_feed_url_forgets_the_remembered_redirect(db_url):
    store = open_store(db_url)
    store.feed_row("world", "https://a.example/rss")
    store.update_feed("world", url="https://b.example/rss", etag='"v1"')
    row = store.feed_row("world", "https://c.example/rss")
    assert row.url is None and row.etag is None


def test_a_poll_s_feed_state_is_written_with_its_items_and_a_bad_column_writes_nothing(db_url):
    clock, url = Clock(), "https://news.example.org/rss"
    store = open_store(db_url, clock)
    row = store.feed_row("world", url)
    assert (row.error_streak, row.primed_at) == (0, None)   # RETURNING gave the whole new row
    poll(store, [article(n) for n in range(3)], feed_values={"etag": '"v1"', "error_streak": 0})
    row = store.feed_row("world", url)
    assert (row.etag, row.primed_at) == ('"v1"', clock())
    try:
        poll(store, [article(9)], feed_values={"etag": '"v2"', "no_such_column": 1})
    except TypeError as exc:
        assert "no_such_column" in str(exc)
    else:
        raise AssertionError("an unknown feed_state column was accepted")
    assert store.feed_row("world", url).etag == '"v1"'
    assert store.known_items("world", [article(9).item_id]) == set()
    poll(store, [article(9)], feed_values={"etag": '"v2"'})   # a primed feed: state with the item
    assert store.feed_row("world", url).etag == '"v2"'
    assert pending(store) == ["Story number 9"]


def test_datetimes_come_back_aware_utc(db_url):
    store = open_store(db_url)
    poll(store, [])
    poll(store, [article(1)])
    (row,) = store.queue("x")
    assert row.queued_at.utcoffset() == timedelta(0)
    assert row.published_at.tzinfo is not None


def test_keys_longer_than_the_columns_still_dedupe(db_url):
    # SQLite keeps any length; PostgreSQL enforces VARCHAR(1000) and a b-tree
    # entry limit, which a long text that does not compress would break.
    noise = "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(60))
    long_id, long_url = "urn:" + noise[:1500], "https://news.example.org/" + noise
    store = open_store(db_url)
    poll(store, [])
    result = poll(store, [article(1, item_id=long_id), article(2, url=long_url)])
    assert (result.new, result.queued) == (2, 4)
    assert store.known_items("world", [long_id, "guid-2", "other"]) == {long_id, "guid-2"}
    result = poll(store, [article(1, item_id=long_id), article(3, url=long_url)])
    assert (result.new, result.queued) == (1, 0), "same URL under a new guid is not queued"


def test_workers_starting_together_migrate_once(postgres_url):
    # Separate processes, as Alembic's context is process-global; each one
    # imports, says ready, then all start migrating at the same moment.
    code = ("import sys; from datetime import datetime, timezone; from bot.store import Store;"
            "print('ready', flush=True); sys.stdin.readline();"
            "Store(sys.argv[1], lambda: datetime.now(timezone.utc)).migrate()")
    workers = [subprocess.Popen([sys.executable, "-c", code, postgres_url], cwd=ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for _ in range(2)]
    assert [w.stdout.readline() for w in workers] == ["ready\n"] * 2
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()
    errors = [w.communicate(timeout=60)[1] for w in workers]
    assert [w.returncode for w in workers] == [0] * 2, errors


def test_migration_is_idempotent_and_versioned(db_url):
    open_store(db_url)
    store = open_store(db_url)
    with store.tx() as conn:
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    newest = max(p.name.split("_")[0] for p in (ROOT / "bot/migrations/versions").glob("0*.py"))
    assert version == newest and store.schema_state() == "current"


def test_unchanged_polls_are_written_together_and_never_move_a_time_back(db_url):
    clock = Clock()
    store = Store(db_url, clock)
    store.migrate()
    for name in ("a", "b"):
        store.feed_row(name, f"https://{name}.example/feed")
    early, late = clock(), clock() + timedelta(minutes=5)
    store.update_feed("b", last_fetch_at=late, last_success_at=late)
    store.feed_unchanged("a", early)
    store.feed_unchanged("b", early)
    assert store.feed_row("a", "https://a.example/feed").last_fetch_at is None, "not yet written"
    store.flush_feeds()
    rows = {r.name: r for r in store.feeds()}
    assert (rows["a"].last_fetch_at, rows["a"].last_success_at) == (early, early)
    assert (rows["b"].last_fetch_at, rows["b"].last_success_at) == (late, late)
    store.close()
