"""Durability where it matters: what records a post's outcome commits to disk
(SQLite synchronous=FULL, PostgreSQL synchronous_commit=on), feed state and
what a poll saw do not wait for it (NORMAL / off). The level in force is read
inside each transaction, on the same connection, as its statements run."""
from __future__ import annotations

import sqlalchemy as sa

from bot.models import Target
from bot.store import Store
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

FEED = "world"
DURABLE = {"sqlite": 2, "postgresql": "on"}     # FULL
RELAXED = {"sqlite": 1, "postgresql": "off"}    # NORMAL


class Levels:
    """(statement's first words, durability level in force) for each write."""

    def __init__(self, store: Store):
        self.dialect = store.engine.dialect.name
        self.seen: list[tuple[str, object]] = []
        sa.event.listen(store.engine, "before_cursor_execute", self._write)

    def _write(self, _conn, cursor, statement, *_rest):
        words = statement.split()
        if words[0].upper() not in ("INSERT", "UPDATE", "DELETE"):
            return
        ask = "PRAGMA synchronous" if self.dialect == "sqlite" else "SHOW synchronous_commit"
        level = cursor.connection.execute(ask).fetchone()[0]
        table = words[2] if words[0].upper() != "UPDATE" else words[1]
        self.seen.append((f"{words[0].upper()} {table}", level))

    def take(self) -> set[object]:
        levels = {level for _, level in self.seen}
        self.seen.clear()
        return levels


def open_store(url: str) -> Store:
    store = Store(url, Clock())
    store.migrate()
    store.feed_row(FEED, "https://news.example.org/rss")
    store.ingest(FEED, [article(0)], [("x", 0)])
    return store


def test_feed_state_and_ingest_do_not_wait_for_the_disk(db_url):
    store = open_store(db_url)
    levels = Levels(store)
    store.update_feed(FEED, last_fetch_at=store.clock(), error_streak=0)
    store.ingest(FEED, [article(1), article(2)], [("x", 0)])
    assert levels.seen and levels.take() == {RELAXED[levels.dialect]}


def test_every_post_outcome_is_on_disk_at_commit(db_url):
    store = open_store(db_url)
    store.ingest(FEED, [article(n) for n in range(1, 6)],
                 lambda a: [Target("x"), Target("fb", status="held")])
    levels = Levels(store)
    x = [r.id for r in store.queue("x")]
    fb = [r.id for r in store.held("fb")]
    outcomes = [
        lambda: store.claim(x[0], "w1", "text"), lambda: store.mark_sent(x[0], "p1"),
        lambda: store.claim(x[1], "w1", "text"), lambda: store.release(x[1], "timeout"),
        lambda: store.mark_failed(x[2], "refused"), lambda: store.mark_skipped(x[3], "expired"),
        lambda: store.retry(row_id=x[2]), lambda: store.skip(x[4]),
        lambda: store.approve(fb[0], "edited"), lambda: store.reject(fb[1]),
        lambda: store.set_account("x", paused_reason="paused by the user")]
    for outcome in outcomes:
        outcome()
        assert levels.take() == {DURABLE[levels.dialect]}, outcome


def test_a_relaxed_write_after_a_durable_one_is_relaxed_again(db_url):
    store = open_store(db_url)
    levels = Levels(store)
    store.set_account("x", paused_reason="p")
    store.update_feed(FEED, error_streak=0)
    store.beat("w1", "host", 1, store.clock())
    assert [level for _, level in levels.seen] == \
        [DURABLE[levels.dialect]] * 2 + [RELAXED[levels.dialect]] * 2


def test_postgres_sessions_relax_commits_even_where_the_server_waits(postgres_server, postgres_url):
    # The test cluster itself runs with synchronous_commit=off: make this
    # database's default "on", so only the store's own setting can relax it.
    database = postgres_url.rsplit("/", 1)[1]
    postgres_server.sql(f"ALTER DATABASE {database} SET synchronous_commit = on")
    try:
        store = open_store(postgres_url)
        store.ingest(FEED, [article(1)], [("x", 0)])
        levels = Levels(store)
        store.update_feed(FEED, error_streak=0)
        store.mark_skipped(store.queue("x")[0].id, "expired")
        assert [level for _, level in levels.seen] == ["off", "on"]
        store.close()
    finally:
        postgres_server.sql(f"ALTER DATABASE {database} RESET synchronous_commit")
