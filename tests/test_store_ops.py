"""The store as a service runs it: worker heartbeats, the schema checked (not
changed) by read-only commands, online backups and queue figures for metrics."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.secret import unseal
from bot.store import Store, code_revision
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import T0, Clock, article

ROOT = Path(__file__).resolve().parents[1]


def open_store(url: str, clock=None) -> Store:
    store = Store(url, clock or Clock())
    store.migrate()
    return store


# -- workers -------------------------------------------------------------------

def test_a_beat_makes_then_refreshes_the_workers_row(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.beat("svc", "host-a", 4242, T0)
    clock.advance(seconds=30)
    store.beat("svc", "host-a", 4242, T0)
    (row,) = store.workers()
    assert (row.worker, row.host, row.pid, row.started_at, row.beat_at) == \
        ("svc", "host-a", 4242, T0, T0 + timedelta(seconds=30))
    assert row.beat_at.tzinfo is not None


def test_workers_come_newest_beat_first_and_a_clean_end_removes_one(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.beat("old", "host-a", 1, T0)
    clock.advance(minutes=5)
    store.beat("new", "host-b", 2, T0 + timedelta(minutes=5))
    assert [r.worker for r in store.workers()] == ["new", "old"]
    store.end_worker("new")
    store.end_worker("never-there")
    assert [r.worker for r in store.workers()] == ["old"]


def test_a_restarted_worker_with_the_same_name_takes_its_row_over(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.beat("svc", "host-a", 1, T0)
    clock.advance(hours=1)
    store.beat("svc", "host-a", 2, T0 + timedelta(hours=1))
    (row,) = store.workers()
    assert (row.pid, row.started_at) == (2, T0 + timedelta(hours=1))


# -- schema state --------------------------------------------------------------

def snapshot(url: str) -> tuple:
    """The revision and every table with its columns and indexes."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = {t: (sorted(c["name"] for c in inspector.get_columns(t)),
                          sorted(i["name"] for i in inspector.get_indexes(t)))
                      for t in inspector.get_table_names()}
            version = (conn.execute(sa.text("select version_num from alembic_version")).scalar()
                       if "alembic_version" in tables else None)
    finally:
        engine.dispose()
    return version, tables


def test_a_current_database_passes(db_url):
    store = open_store(db_url)
    assert store.schema_state() == "current"
    store.require_current()
    assert store.db_revision() == code_revision()


def test_an_old_database_is_reported_behind_and_left_unchanged(db_url):
    old = Store(db_url, Clock())
    assert old.migrate("0004") == (None, "0004")
    old.close()
    before = snapshot(db_url)
    store = Store(db_url, Clock())
    assert store.schema_state() == "behind"
    with pytest.raises(StoreError, match=r"older than this Herald: run `run_bot.py migrate`"):
        store.require_current()
    store.close()
    assert snapshot(db_url) == before
    assert before[0] == "0004" and "workers" not in before[1]


def test_migrate_says_where_it_came_from(db_url):
    store = Store(db_url, Clock())
    store.migrate("0004")
    assert store.migrate() == ("0004", code_revision())
    assert store.migrate() == (code_revision(), code_revision())


def test_a_database_from_a_newer_herald_is_ahead(db_url):
    store = open_store(db_url)
    with store.tx() as conn:
        conn.execute(sa.text("update alembic_version set version_num = '9999'"))
    assert store.schema_state() == "ahead"
    with pytest.raises(StoreError, match="newer than this Herald: upgrade Herald"):
        store.require_current()


def test_an_empty_database_says_migrate_and_stays_empty(db_url):
    store = Store(db_url, Clock())
    assert store.schema_state() == "empty"
    with pytest.raises(StoreError, match=r"no Herald database yet: run `run_bot.py migrate`"):
        store.require_current()
    store.close()
    assert snapshot(db_url) == (None, {})


def test_a_missing_sqlite_file_and_folder_are_not_created_by_a_look(tmp_path):
    path = tmp_path / "not" / "yet" / "herald.db"
    store = Store(f"sqlite:///{path}", Clock())
    with pytest.raises(StoreError, match=f"{path}: holds no Herald database yet"):
        store.require_current()
    assert not path.parent.exists()
    store.migrate()
    assert path.exists() and store.schema_state() == "current"


# -- backup --------------------------------------------------------------------

ACCOUNTS = [("x", 0)]


def fill(store: Store, first: int, n: int, feed: str = "world") -> None:
    store.feed_row(feed, "https://news.example.org/rss")
    store.ingest(feed, [article(k) for k in range(first, first + n)], ACCOUNTS)


def contents(path: Path) -> dict[str, list[tuple]]:
    """Every row of Herald's tables in a SQLite file, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {t: sorted(conn.execute(f'select * from "{t}"'), key=repr) for t in names}
    finally:
        conn.close()


def test_a_backup_of_a_quiet_database_has_the_same_rows(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'herald.db'}")
    fill(store, 0, 5)
    fill(store, 5, 3)   # after the first sight: three posts queued
    store.beat("svc", "host-a", 7, T0)
    store.backup(str(tmp_path / "copy.db"))
    assert contents(tmp_path / "copy.db") == contents(tmp_path / "herald.db")
    assert len(contents(tmp_path / "copy.db")["outbox"]) == 3
    copy = Store(f"sqlite:///{tmp_path / 'copy.db'}", Clock())
    assert copy.schema_state() == "current" and len(copy.queue("x")) == 3
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_backup_while_another_thread_writes_is_consistent(tmp_path):
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    store = open_store(url)
    fill(store, 0, 1)
    writer_store = Store(url, Clock())   # another connection pool, like another process
    stop = threading.Event()
    written = []

    def writer():
        n = 1
        while not stop.is_set():
            fill(writer_store, n * 10, 10)
            written.append(n)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = []
        while len(copies) < 5 or len(written) < 5:
            copies.append(tmp_path / f"copy-{len(copies)}.db")
            store.backup(str(copies[-1]))
    finally:
        stop.set()
        thread.join()
    sizes = []
    for copy in copies:
        conn = sqlite3.connect(copy)
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        # One snapshot: every queued post's story and item made it, none half.
        assert conn.execute("select count(*) from outbox o left join articles a "
                            "on a.id = o.article_id where a.id is null").fetchone() == (0,)
        items = conn.execute("select count(*) from items").fetchone()[0]
        posts = conn.execute("select count(*) from outbox").fetchone()[0]
        assert items == posts + 1 and items % 10 == 1   # whole polls only
        sizes.append(items)
        conn.close()
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]   # writes went on meanwhile
    assert sizes[-1] <= len(contents(tmp_path / "herald.db")["items"])


def test_a_backup_never_overwrites_a_file_but_fills_an_empty_one(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'herald.db'}")
    fill(store, 0, 2)
    kept = tmp_path / "kept.db"
    kept.write_bytes(b"an older backup")
    with pytest.raises(StoreError, match="exists; Herald never overwrites"):
        store.backup(str(kept))
    assert kept.read_bytes() == b"an older backup"
    with pytest.raises(StoreError, match="exists; Herald never overwrites"):
        store.backup(str(tmp_path / "herald.db"))   # its own file, above all
    empty = tmp_path / "empty.db"
    empty.touch()
    store.backup(str(empty))
    assert len(contents(empty)["items"]) == 2


def test_a_backup_into_a_missing_folder_says_so(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'herald.db'}")
    with pytest.raises(StoreError, match="the folder .*nowhere does not exist"):
        store.backup(str(tmp_path / "nowhere" / "copy.db"))


def test_a_failed_backup_leaves_no_half_file(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'herald.db'}")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        with pytest.raises(StoreError, match=r"backup of .* to .*copy.db failed"):
            store.backup(str(folder / "copy.db"))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_postgresql_is_backed_up_with_pg_dump(postgres_url):
    store = open_store(postgres_url)
    with pytest.raises(StoreError, match="pg_dump"):
        store.backup("/tmp/never-written.db")
    assert not Path("/tmp/never-written.db").exists()


# -- queue figures -------------------------------------------------------------

def test_queue_stats_count_pending_posts_and_the_oldest_due_one(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    fill(store, 0, 1)
    fill(store, 10, 2)                          # x: two posts queued at T0
    clock.advance(minutes=10)
    store.feed_row("other", "https://other.example/rss")
    store.ingest("other", [], [("fb", 0)])
    store.ingest("other", [article(50, feed="other")], [("fb", 0), ("x", 0)])   # at T0+10m
    first, second = store.queue("x")[:2]
    store.release(first.id, "busy", not_before=T0 + timedelta(minutes=30))   # due later
    store.claim(second.id, "w", "text")         # in flight: not pending
    (fb_row,) = store.queue("fb")
    store.release(fb_row.id, "busy", not_before=T0 + timedelta(minutes=20))
    stats = store.queue_stats(T0 + timedelta(minutes=15))
    assert stats == {"x": (2, T0 + timedelta(minutes=10)), "fb": (1, None)}
    later = store.queue_stats(T0 + timedelta(minutes=40))
    assert later == {"x": (2, T0 + timedelta(minutes=10)), "fb": (1, T0 + timedelta(minutes=20))}
    assert later["x"][1].tzinfo is not None


def test_queue_stats_know_nothing_of_settled_posts(db_url):
    store = open_store(db_url)
    fill(store, 0, 1)
    fill(store, 10, 1)
    (row,) = store.queue("x")
    store.mark_failed(row.id, "rejected")
    assert store.queue_stats(T0) == {}


def test_the_revisions_read_from_file_names_are_alembic_s():
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from bot.store import MIGRATIONS, revisions
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    assert revisions() == {r.revision for r in script.walk_revisions()}
    assert code_revision() == script.get_current_head()


def test_a_start_on_a_current_schema_does_not_import_alembic(tmp_path):
    # alembic is 11 MB of memory the service need not carry for months.
    url = f"sqlite:///{tmp_path / 'h.db'}"
    Store(url, Clock()).migrate()
    probe = ("import sys; from bot.store import Store; from datetime import datetime, timezone; "
             f"s = Store({url!r}, lambda: datetime.now(timezone.utc)); "
             "print(s.migrate(), s.schema_state(), 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    head = code_revision()
    assert done.stdout.split("\n")[0] == f"('{head}', '{head}') current False", done.stderr


def test_migrating_takes_feed_url_tokens_out_of_the_database_and_keeps_the_move(db_url):
    configured = "https://reader:p4ss-w0rd@news.example/rss?key=q-s3cret"
    moved = "https://reader:p4ss-w0rd@news.example/new-rss?key=q-s3cret"
    store = Store(db_url, Clock())
    store.migrate("0008")
    with store.tx() as conn:
        conn.execute(sa.text("insert into feed_state (name, configured_url, url, etag, error_streak)"
                             " values ('f', :c, :u, '\"v1\"', 0)"), {"c": configured, "u": moved})
    store.migrate()
    with store.read() as conn:
        raw = conn.execute(sa.text("select configured_url, url from feed_state")).one()
    assert "p4ss-w0rd" not in str(tuple(raw)) and "q-s3cret" not in str(tuple(raw))
    assert unseal(raw.url, configured) == moved
    row = store.feed_row("f", configured)
    assert row.etag == '"v1"', "the configured URL is recognised: its validators are kept"
    store.close()
