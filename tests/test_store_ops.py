"""The store as a service runs it: worker heartbeats, the schema checked (not
changed) by read-only commands, online backups and queue figures for metrics."""
from __future__ import annotations

from datetime import timedelta

from bot.store import Store
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
