"""The store as a service runs it: worker heartbeats, the schema checked (not
changed) by read-only commands, online backups and queue figures for metrics."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.store import Store, code_revision
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import T0, Clock


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
