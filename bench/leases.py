"""A heartbeat's lease refresh at N feeds, against the driver doing its least, on SQLite.

Every heartbeat (``workers.heartbeat``, 5 s by default) a worker refreshes its
leases (bot.leases): it beats, reads the leases other workers hold and takes
free ones; its beat keeps its own. With one worker holding N feeds, the least
any refresh can do is what the floor does here with the raw sqlite3 driver in
one transaction: write its heartbeat row and read the feed leases other
workers hold (none here: a scan that finds no row). History of the floor: until
2026-12-03 it also read every lease, then (d49b69b) it renewed every lease in
one UPDATE, as Herald did; now a lease lasts while its holder beats. The first
refresh takes all N leases, against the floor of one executemany INSERT of N
rows.

It prints the CPU per refresh (median of --rounds) for both and their ratio,
and the WAL one steady refresh writes (a heartbeat's disk writes, from a
checkpointed database).

    .venv/bin/python bench/leases.py [--feeds 10000] [--rounds 11]
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# HERALD_ROOT runs the same benchmark against another checkout (the "before" figures).
sys.path.insert(0, os.environ.get("HERALD_ROOT") or str(Path(__file__).resolve().parent.parent))

from bot.leases import Leases  # noqa: E402
from bot.store import Store  # noqa: E402

TTL = timedelta(seconds=20)
WORKER = "bench-worker"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def cpu_ms(fn) -> float:
    began = time.process_time()
    fn()
    return (time.process_time() - began) * 1000


def stamp(at: datetime) -> str:
    """The form SQLite keeps Herald's times in (as SQLAlchemy writes them)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def herald(path: str, names: list[str], rounds: int) -> tuple[float, list[float], int]:
    store = Store(f"sqlite:///{path}", utc_now)
    store.migrate()
    leases = Leases(store, WORKER, utc_now, TTL, exclusive=True)
    refresh = lambda: leases.refresh(names, ["console"])  # noqa: E731
    first = cpu_ms(refresh)
    steady = [cpu_ms(refresh) for _ in range(rounds)]
    assert len(leases.held("feed")) == len(names), "the refresh must hold every feed"
    wal = wal_of_one(path, refresh)
    store.close()
    return first, steady, wal


def floor(path: str, names: list[str], rounds: int) -> tuple[float, list[float]]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE leases (kind VARCHAR(16), name VARCHAR(200), holder VARCHAR(200),"
                 " until DATETIME, PRIMARY KEY (kind, name))")
    conn.execute("CREATE TABLE workers (worker VARCHAR(200) PRIMARY KEY, beat_at DATETIME)")

    def take() -> None:
        until = stamp(utc_now() + TTL)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO leases VALUES ('feed', ?, ?, ?) ON CONFLICT DO NOTHING",
                         [(name, WORKER, until) for name in names])
        conn.execute("COMMIT")

    def keep() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO workers VALUES (?, ?) ON CONFLICT (worker) DO UPDATE"
                     " SET beat_at = excluded.beat_at", (WORKER, stamp(utc_now())))
        conn.execute("SELECT name, holder NOT IN (?) FROM leases WHERE kind = 'feed'"
                     " AND holder != ?", (WORKER, WORKER)).fetchall()
        conn.execute("COMMIT")

    first = cpu_ms(take)
    steady = [cpu_ms(keep) for _ in range(rounds)]
    conn.close()
    return first, steady


def wal_of_one(path: str, refresh) -> int:
    """Bytes of WAL one refresh writes to a freshly checkpointed database."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    refresh()
    return os.path.getsize(path + "-wal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()
    names = [f"feed{i:05d}" for i in range(args.feeds)]
    with tempfile.TemporaryDirectory() as tmp:
        ours_first, ours, wal = herald(os.path.join(tmp, "herald.db"), names, args.rounds)
        floor_first, theirs = floor(os.path.join(tmp, "floor.db"), names, args.rounds)
    print(f"lease refresh, {args.feeds:,} feeds, one worker (SQLite), ms CPU, median of "
          f"{args.rounds}")
    for label, mine, least in (("first (takes every lease)", ours_first, floor_first),
                               ("steady (keeps them)", statistics.median(ours),
                                statistics.median(theirs))):
        print(f"  {label:27s} Herald {mine:8.1f}   floor {least:7.1f}   {mine / least:5.1f}x")
    print(f"  WAL written by one steady refresh: {wal / 1024:,.0f} KB")


if __name__ == "__main__":
    main()
