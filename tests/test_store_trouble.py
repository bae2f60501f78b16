"""The store against hostile data and a database in trouble: NUL characters,
huge first sights in batches, the same story under http/https and www, a full
disk, a file that is not a database, and the file deleted under a running
Herald."""
from __future__ import annotations

import logging
import os
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.store import BATCH, Store, story_key
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

ACCOUNTS = [("x", 0)]


def open_store(url: str) -> Store:
    store = Store(url, Clock())
    store.migrate()
    return store


def poll(store: Store, found, feed="world"):
    store.feed_row(feed, "https://news.example.org/rss")
    return store.ingest(feed, found, ACCOUNTS)


def test_nul_characters_are_stored_without_them(db_url):
    store = open_store(db_url)
    poll(store, [])
    result = poll(store, [article(1, title="Bad\x00 title", lead="A\x00 lead.", item_id="g\x001")])
    assert result.queued == 1
    (row,) = store.queue("x")
    assert store.article(row.article_id).title == "Bad title"
    assert store.known_items("world", ["g\x001"]) == {"g\x001"}


def test_a_first_sight_larger_than_any_statement_is_written_in_batches(db_url):
    store = open_store(db_url)
    many = [article(n) for n in range(BATCH * 2 + 7)]
    result = poll(store, many)
    assert (result.new, result.queued, result.primed) == (len(many), 0, True)
    assert poll(store, many + [article(-1)]).queued == 1


def test_known_items_takes_more_ids_than_postgres_takes_parameters(db_url):
    store = open_store(db_url)
    poll(store, [article(1)])
    ids = [f"guid-{n}" for n in range(70_000)]
    assert store.known_items("world", ids) == {"guid-1"}


@pytest.mark.parametrize("moved", ["http://news.example.org/story-1",
                                   "https://www.news.example.org/story-1",
                                   "http://WWW.news.example.org/story-1?utm_source=x"])
def test_the_same_story_moved_to_https_or_www_is_not_posted_twice(db_url, moved):
    store = open_store(db_url)
    poll(store, [])
    poll(store, [article(1)])
    result = poll(store, [article(1, item_id="new-guid", url=moved)])
    assert (result.new, result.queued) == (1, 0)


def test_story_key_keeps_what_tells_stories_apart():
    assert story_key("https://a.example/x") != story_key("https://b.example/x")
    assert story_key("https://a.example/x?id=1") != story_key("https://a.example/x?id=2")
    assert story_key("ftp://a.example/x").startswith("ftp://")
    assert story_key("http://[::1") == "http://[::1"  # urlsplit refuses it; kept as written


def test_a_status_read_does_not_wait_for_a_long_write(tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    store, other = open_store(url), Store(url, Clock())
    store.feed_row("world", "https://news.example.org/rss")
    started, finish = threading.Event(), threading.Event()

    def long_write():
        with store.tx() as conn:
            conn.execute(sa.text("update feed_state set error_streak = 1"))
            started.set()
            finish.wait(10)

    writer = threading.Thread(target=long_write)
    writer.start()
    started.wait(5)
    try:
        assert [r.name for r in other.feeds()] == ["world"]
    finally:
        finish.set()
        writer.join()


def test_a_full_disk_is_one_line_and_passes_when_space_returns(tmp_path, caplog):
    path = tmp_path / "h.db"
    store = open_store(f"sqlite:///{path}")
    poll(store, [])
    pages = sqlite3.connect(path).execute("pragma page_count").fetchone()[0]

    def full_disk(dbapi_conn, _record):  # the file may not grow: what a full disk says
        dbapi_conn.execute(f"pragma max_page_count={pages}")

    sa.event.listen(store.engine, "connect", full_disk)
    store.engine.dispose()
    big = [article(n, lead="x" * 5000) for n in range(50)]
    with caplog.at_level(logging.INFO, "bot"):
        for _ in range(3):
            with pytest.raises(StoreError, match=f"database {path}: the disk is full"):
                poll(store, big)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "disk is full" in errors[0].getMessage()
        store.health.quiet = 0  # as if a minute went by without the problem
        sa.event.remove(store.engine, "connect", full_disk)
        store.engine.dispose()
        assert poll(store, big).queued == 50
    assert "database works again" in caplog.text


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "h.db"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(StoreError, match=f"database {path}: it is not a usable SQLite database"):
        open_store(f"sqlite:///{path}")


def test_a_read_only_database_is_named(tmp_path):
    path = tmp_path / "h.db"
    open_store(f"sqlite:///{path}").close()
    # Root ignores file modes; SQLite's own read-only open gives the same error.
    store = Store(f"sqlite:///file:{path}?mode=ro&uri=true", Clock())
    with pytest.raises(StoreError, match="read-only; make the file and its folder writable"):
        store.set_account("x", paused_reason="test")


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_database_deleted_under_herald_stops_it(tmp_path, how):
    path = tmp_path / "h.db"
    store = open_store(f"sqlite:///{path}")
    poll(store, [])
    os.remove(path)
    if how == "replaced":
        open_store(f"sqlite:///{path}").close()
    with pytest.raises(StoreError, match=f"{how} while Herald ran") as caught:
        poll(store, [article(1)])
    assert caught.value.fatal


def test_migration_0003_rekeys_stories_recorded_before_it(tmp_path):
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from bot.store import MIGRATIONS
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", Clock())
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.tx() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        for n, url in enumerate(["http://news.example.org/a", "https://news.example.org/a",
                                 "https://www.news.example.org/b"]):
            conn.execute(sa.text("insert into articles (id, url_key, url, feed, title, "
                                 "first_seen_at) values (:i, :k, :u, 'f', 't', '2026-01-01')"),
                         {"i": n + 1, "k": url, "u": url})
    store.migrate()
    with store.read() as conn:
        keys = dict(conn.execute(sa.text("select id, url_key from articles")).all())
    assert keys == {1: "news.example.org/a", 2: "https://news.example.org/a",
                    3: "news.example.org/b"}, "a collision keeps its old key"


def test_a_first_sight_cut_short_queues_only_the_backfill_when_tried_again(db_url):
    store = open_store(db_url)
    store.feed_row("world", "https://news.example.org/rss")
    many = [article(n) for n in range(BATCH * 2 + 100)]
    commits = [0]

    def disk_fills(_conn, _cursor, statement, *_rest):
        # The second batch's items never reach the database (the first is committed).
        if commits[0] and statement.lstrip().upper().startswith("INSERT INTO ITEMS"):
            raise StoreError("database h.db: the disk is full")

    sa.event.listen(store.engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    sa.event.listen(store.engine, "before_cursor_execute", disk_fills)
    with pytest.raises(StoreError):
        store.ingest("world", many, ACCOUNTS, backfill=3)
    sa.event.remove(store.engine, "before_cursor_execute", disk_fills)
    assert len(store.known_items("world", [a.item_id for a in many])) == BATCH
    result = store.ingest("world", many, ACCOUNTS, backfill=3)
    assert result.primed
    assert sorted(r.title for r in store.queue("x")) == ["Story number 0", "Story number 1",
                                                        "Story number 2"]


@pytest.mark.parametrize("fatal", [False, True])
def test_a_failed_flush_of_unchanged_polls_keeps_them_for_the_next(tmp_path, fatal):
    # The flush runs inside a poll, a heartbeat or a stop: none of them failed.
    clock = Clock()
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.feed_row("a", "https://a.example/feed")

    def broken(_conn, _cursor, statement, *_rest):
        if statement.lstrip().upper().startswith("UPDATE"):
            raise StoreError("database h.db: the disk is full", fatal=fatal)

    sa.event.listen(store.engine, "before_cursor_execute", broken)
    store.feed_unchanged("a", clock())
    if fatal:
        with pytest.raises(StoreError):
            store.flush_feeds()
    else:
        store.flush_feeds()
    sa.event.remove(store.engine, "before_cursor_execute", broken)
    assert store.feed_row("a", "https://a.example/feed").last_fetch_at is None
    store.flush_feeds()
    assert store.feed_row("a", "https://a.example/feed").last_fetch_at == clock()
    store.close()
