"""Ingest writes a chunk in a few statements and keeps every guarantee of the
one-item-at-a-time version: no item queued twice when two processes see it,
a story known by its canonical URL not queued again, pruned stories remembered;
on SQLite and PostgreSQL."""
from __future__ import annotations

import tempfile
import threading
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.store import BATCH, Store, _stmts, articles, insert_many, outbox
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

ACCOUNTS = [("x", 0), ("fb", 0)]
FEED = "world"


def open_store(url: str, clock=None) -> Store:
    store = Store(url, clock or Clock())
    store.migrate()
    store.feed_row(FEED, "https://news.example.org/rss")
    return store


class Statements:
    """The statements an engine sends (an executemany counts once)."""

    def __init__(self, engine: sa.Engine):
        self.sent: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_rest):
        self.sent.append(statement.split(None, 3)[:3])


def count(store: Store, table: sa.Table) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_a_chunk_is_a_handful_of_statements_whatever_its_size(db_url):
    store = open_store(db_url)
    store.ingest(FEED, [article(0)], ACCOUNTS)
    sent = Statements(store.engine)
    result = store.ingest(FEED, [article(n) for n in range(1, 201)], ACCOUNTS)
    assert (result.new, result.queued) == (200, 400)
    assert len(sent.sent) <= 12, sent.sent   # was about 6 per item
    assert count(store, articles) == 201 and count(store, outbox) == 400


def test_a_first_sight_larger_than_a_batch_is_recorded_whole(db_url):
    store = open_store(db_url)
    many = [article(n) for n in range(BATCH + 7)]
    result = store.ingest(FEED, many, ACCOUNTS, backfill=2)
    assert (result.new, result.queued, result.primed) == (BATCH + 7, 4, True)
    assert store.known_items(FEED, [a.item_id for a in many]) == {a.item_id for a in many}
    assert store.ingest(FEED, many, ACCOUNTS).primed is False


def test_items_recorded_by_another_process_since_known_items_are_not_queued(db_url):
    store, other = open_store(db_url), open_store(db_url)
    store.ingest(FEED, [article(0)], ACCOUNTS)
    found = [article(1), article(2), article(0)]
    known = store.known_items(FEED, [a.item_id for a in found])
    assert known == {"guid-0"}
    assert other.ingest(FEED, [article(1)], ACCOUNTS).queued == 2   # meanwhile
    result = store.ingest(FEED, found, ACCOUNTS, known=known)
    assert result.queued == 2   # story 2 only
    assert sorted(r.title for r in store.queue("x")) == ["Story number 1", "Story number 2"]


def test_two_items_of_one_story_in_one_chunk_make_one_story_queued_once(db_url):
    store = open_store(db_url)
    store.ingest(FEED, [article(0)], ACCOUNTS)
    twin = article(1, item_id="guid-1-again", url="http://www.news.example.org/story-1")
    result = store.ingest(FEED, [article(1), twin], ACCOUNTS)
    assert (result.new, result.queued) == (2, 2)
    assert count(store, articles) == 2
    assert store.known_items(FEED, ["guid-1", "guid-1-again"]) == {"guid-1", "guid-1-again"}


def test_workers_ingesting_the_same_poll_together_queue_each_item_once(db_url):
    stores = [open_store(db_url) for _ in range(4)]
    stores[0].ingest(FEED, [article(0)], ACCOUNTS)
    found = [article(n) for n in range(1, 60)]
    results, start = [], threading.Barrier(len(stores))

    def poll(store: Store) -> None:
        known = store.known_items(FEED, [a.item_id for a in found])
        start.wait(timeout=30)
        results.append(store.ingest(FEED, found, ACCOUNTS, known=known).queued)

    threads = [threading.Thread(target=poll, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(results) == 2 * 59 and count(store=stores[0], table=outbox) == 2 * 59


def test_update_feed_sets_what_it_is_given_and_refuses_unknown_columns(db_url):
    store = open_store(db_url)
    store.update_feed(FEED, etag='"v2"', error_streak=3)
    store.update_feed(FEED, error_streak=0)
    row = store.feed_row(FEED, "https://news.example.org/rss")
    assert (row.etag, row.error_streak) == ('"v2"', 0)
    for bad in ({"etga": "x"}, {"feed_name": "other"}):
        try:
            store.update_feed(FEED, **bad)
        except TypeError as exc:
            assert "not a feed_state column" in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_a_full_chunk_for_many_accounts_stays_within_the_parameter_limits(db_url):
    # 500 items x 20 accounts: 10,000 outbox rows of 8 values, more than
    # SQLite (32,766) or PostgreSQL (65,535) take in one statement.
    store = open_store(db_url)
    store.ingest(FEED, [article(0)], ACCOUNTS)
    accounts = [(f"acct{n}", 0) for n in range(20)]
    result = store.ingest(FEED, [article(n) for n in range(1, BATCH + 1)], accounts)
    assert (result.new, result.queued) == (BATCH, BATCH * 20)
    assert count(store, outbox) == BATCH * 20


POLL = st.tuples(st.sampled_from(["a", "b"]),                       # feed
                 st.lists(st.tuples(st.integers(0, 12),             # item id
                                    st.integers(0, 8),              # story
                                    st.sampled_from(["https://", "http://www."])),
                          max_size=8))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(POLL, min_size=1, max_size=6))
def test_batched_ingest_queues_what_the_one_item_rule_says(polls):
    """A model of the rule: a feed's first sight queues nothing; later, an item
    new to its feed queues its story for each account that has not had it
    (a story is one whatever the scheme or www. of its link)."""
    primed, seen, had = set(), set(), set()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/h.db", Clock())
        store.migrate()
        for feed, entries in polls:
            store.feed_row(feed, f"https://{feed}.example/rss")
            found = [article(i, feed=feed, item_id=f"{feed}-{i}",
                             url=f"{scheme}news.example.org/story-{s}") for i, s, scheme in entries]
            expected = 0
            for i, s, _ in dict(((i, (i, s, x)) for i, s, x in reversed(entries))).values():
                if (feed, i) not in seen and feed in primed:
                    expected += sum((s, a) not in had for a, _ in ACCOUNTS)
                    had.update((s, a) for a, _ in ACCOUNTS)
                seen.add((feed, i))
            primed.add(feed)
            assert store.ingest(feed, found, ACCOUNTS).queued == expected
        store.close()


ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                         timezone(timedelta(hours=-8))])
WHEN = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1),
                    timezones=ZONES)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
ARTICLE_ROWS = st.lists(st.fixed_dictionaries({
    "url_key": TEXT, "url": TEXT, "feed": TEXT, "title": TEXT,
    "lead": TEXT, "image": st.none() | TEXT, "author": st.none() | TEXT,
    "categories": TEXT, "published_at": st.none() | WHEN, "first_seen_at": WHEN}),
    min_size=1, max_size=8, unique_by=lambda row: row["url_key"])


@given(rows=ARTICLE_ROWS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_driver_executemany_stores_what_sqlalchemy_would(rows):
    # insert_many sends SQLite tuples through the columns' bind processors
    # instead of SQLAlchemy's per-row parameter dicts: the rows stored, as the
    # database keeps them (times as text), must be the same either way.
    with tempfile.TemporaryDirectory() as folder:
        stored = []
        for name, insert in (("plain", lambda conn, stmt, rows: conn.execute(stmt, rows)),
                             ("fast", insert_many)):
            store = Store(f"sqlite:///{folder}/{name}.db", Clock())
            store.migrate()
            with store.tx() as conn:
                insert(conn, _stmts("sqlite").add_articles, rows)
            with store.read() as conn:
                stored.append(conn.exec_driver_sql(
                    "SELECT url_key, url, feed, title, lead, image, author, categories,"
                    " published_at, first_seen_at FROM articles ORDER BY id").all())
            store.close()
    assert stored[0] == stored[1]
    assert len(stored[0]) == len(rows)
