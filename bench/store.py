"""The store's cost per feed poll against a floor, side by side in one run, on
SQLite (a file) and PostgreSQL (a throwaway cluster, as tests/postgres.py starts).

For N feeds of 50 items it runs what the poller asks of the store:

  first sight    feed_row, known_items, ingest (50 new, none queued), update_feed
  changed feed   the same with 1 new item among the 50 known, queued for 2 accounts
  changed, known=  the same, ingest given known_items' answer and the new items only
  unchanged      feed_row and update_feed (a 304)

and prints per feed: statements (a before_cursor_execute listener; an
executemany counts once), CPU of this process (the PostgreSQL server's own is
not in it), wall time, and the CPU as a ratio to the floor: the raw DB-API
driver writing the same 50 item and 50 article rows in one transaction with
executemany (first sight); reading the 50 known ids in one SELECT and writing
one item (changed); upserting one feed row (unchanged). Each floor is one
transaction, as the driver alone would do it.

    .venv/bin/python bench/store.py --feeds 1000
    HERALD_ROOT=/tmp/herald-before .venv/bin/python bench/store.py   # another checkout

The PostgreSQL cluster runs with fsync off (as in the tests): its figures are
CPU, not durability. SQLite's wall time includes its fsyncs.
"""
from __future__ import annotations

import argparse
import inspect
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# HERALD_ROOT runs the same benchmark against another checkout (the "before" figures).
sys.path.insert(0, os.environ.get("HERALD_ROOT") or str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bot.models import Article  # noqa: E402
from bot.store import Store  # noqa: E402
from pgcluster import cluster, dsn  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
ACCOUNTS = [("x", 0), ("fb", 0)]
ITEMS = 50


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def feed_items(feed: str, n: int, start: int = 0) -> list[Article]:
    return [Article(feed=feed, item_id=f"https://{feed}.example/story-{i}",
                    url=f"https://{feed}.example/story-{i}", title=f"Headline {i} of {feed}",
                    summary="<p>Heavy rain caused floods along the coast.</p>",
                    published=T0 - timedelta(minutes=i), categories=("News",),
                    lead="Heavy rain caused floods along the coast on Thursday, officials said.")
            for i in range(start, start + n)]


class Counter:
    """Statements sent to the database (executemany = one)."""

    def __init__(self, engine: sa.Engine):
        self.n = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args):
        self.n += 1


def poll(store: Store, feed: str, found: list[Article]) -> None:
    """The store calls of one poll that got a 200, as bot.poll makes them."""
    store.feed_row(feed, f"https://{feed}.example/rss")
    store.known_items(feed, [a.item_id for a in found])
    store.ingest(feed, found, ACCOUNTS)
    store.update_feed(feed, last_fetch_at=store.clock(), error_streak=0)


def poll_known(store: Store, feed: str, found: list[Article]) -> None:
    """As ``poll`` when the poller hands ingest the known items it asked for
    (``ingest(known=)``) and only the new items (as bot.poll does once primed)."""
    store.feed_row(feed, f"https://{feed}.example/rss")
    known = store.known_items(feed, [a.item_id for a in found])
    store.ingest(feed, [a for a in found if a.item_id not in known], ACCOUNTS, known=known)
    store.update_feed(feed, last_fetch_at=store.clock(), error_streak=0)


def unchanged(store: Store, feed: str) -> None:
    store.feed_row(feed, f"https://{feed}.example/rss")
    store.update_feed(feed, last_fetch_at=store.clock(), error_streak=0)


def measure(label: str, feeds: int, step, counter: Counter) -> dict:
    before, cpu, wall = counter.n, time.process_time(), time.perf_counter()
    for i in range(feeds):
        step(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"label": label, "statements": (counter.n - before) / feeds,
            "cpu_ms": cpu * 1000 / feeds, "wall_ms": wall * 1000 / feeds}


def run_store(url: str, feeds: int) -> list[dict]:
    clock = Clock()
    store = Store(url, clock)
    store.migrate()
    counter = Counter(store.engine)
    names = [f"feed{i:05d}" for i in range(feeds)]
    first = {n: feed_items(n, ITEMS, 1) for n in names}
    rows = [measure("first sight", feeds, lambda i: poll(store, names[i], first[names[i]]), counter)]
    clock.now += timedelta(minutes=5)
    changed = {n: feed_items(n, 1) + first[n][:-1] for n in names}
    rows.append(measure("changed feed", feeds,
                        lambda i: poll(store, names[i], changed[names[i]]), counter))
    queued = sum(len(store.queue(a)) for a, _ in ACCOUNTS)
    assert queued == 2 * feeds, f"{queued} queued, expected {2 * feeds}"
    if "known" in inspect.signature(store.ingest).parameters:   # not in older checkouts
        clock.now += timedelta(minutes=5)
        again = {n: feed_items(n, 1, -1) + changed[n][:-1] for n in names}
        rows.append(measure("changed, known=", feeds,
                            lambda i: poll_known(store, names[i], again[names[i]]), counter))
        queued = sum(len(store.queue(a)) for a, _ in ACCOUNTS)
        assert queued == 4 * feeds, f"{queued} queued, expected {4 * feeds}"
    rows.append(measure("unchanged (304)", feeds, lambda i: unchanged(store, names[i]), counter))
    store.close()
    return rows


def floor_rows(feed: str, n: int) -> tuple[list[tuple], list[tuple]]:
    arts = [(f"{feed}.example/story-{i}", f"https://{feed}.example/story-{i}", feed,
             f"Headline {i} of {feed}", "Heavy rain caused floods.", '["News"]', T0, T0)
            for i in range(n)]
    return arts, [(feed, f"https://{feed}.example/story-{i}", i + 1, T0) for i in range(n)]


FLOOR_DDL = ["CREATE TABLE fa (id INTEGER PRIMARY KEY, url_key TEXT UNIQUE, url TEXT, feed TEXT,"
             " title TEXT, lead TEXT, categories TEXT, published_at TIMESTAMP,"
             " first_seen_at TIMESTAMP)",
             "CREATE TABLE fi (feed TEXT, item_id TEXT, article_id INTEGER,"
             " first_seen_at TIMESTAMP, PRIMARY KEY (feed, item_id))"]
FLOOR_ARTICLE = ("INSERT INTO fa (url_key, url, feed, title, lead, categories, published_at,"
                 " first_seen_at) VALUES ({p},{p},{p},{p},{p},{p},{p},{p})")
FLOOR_ITEM = "INSERT INTO fi VALUES ({p},{p},{p},{p})"
FLOOR_READ = "SELECT item_id FROM fi WHERE feed = {p} AND item_id = ANY({p})"


def floor_sqlite(path: str, feeds: int) -> tuple[float, float, float]:
    """CPU ms per feed of the raw driver: (write 50 items and articles, read
    50 known ids and write 1, update one feed row), each its own transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")   # what the store's poll writes use
    for ddl in FLOOR_DDL + ["CREATE TABLE fs (name TEXT PRIMARY KEY, last_fetch_at TIMESTAMP)"]:
        conn.execute(ddl)
    spent = [0.0, 0.0, 0.0]

    def timed(k: int, *statements: tuple[str, object, bool]) -> None:
        t = time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        for sql, params, many in statements:
            (conn.executemany if many else conn.execute)(sql, params).fetchall()
        conn.execute("COMMIT")
        spent[k] += time.process_time() - t

    for i in range(feeds):
        feed = f"f{i}"
        arts, its = floor_rows(feed, ITEMS)
        timed(0, (FLOOR_ARTICLE.format(p="?"), [tuple(map(str, a)) for a in arts], True),
              (FLOOR_ITEM.format(p="?"), [tuple(map(str, r)) for r in its], True))
        marks = ",".join("?" * ITEMS)
        new_art, new_item = floor_rows(f"n{i}", 1)
        timed(1, (f"SELECT item_id FROM fi WHERE feed = ? AND item_id IN ({marks})",
                  [feed, *(r[1] for r in its)], False),
              (FLOOR_ARTICLE.format(p="?"), [tuple(map(str, a)) for a in new_art], True),
              (FLOOR_ITEM.format(p="?"), [tuple(map(str, r)) for r in new_item], True))
        timed(2, ("INSERT OR REPLACE INTO fs VALUES (?, ?)", (feed, str(T0)), False))
    conn.close()
    return tuple(s * 1000 / feeds for s in spent)


def floor_postgres(dsn: str, feeds: int) -> tuple[float, float, float]:
    """As floor_sqlite, with psycopg."""
    spent = [0.0, 0.0, 0.0]
    with psycopg.connect(dsn) as conn:
        for ddl in FLOOR_DDL + ["CREATE TABLE fs (name TEXT PRIMARY KEY, last_fetch_at TIMESTAMPTZ)"]:
            conn.execute(ddl.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY"))
        conn.commit()

        def timed(k: int, *statements: tuple[str, object, bool]) -> None:
            t = time.process_time()
            with conn.cursor() as cur:
                for sql, params, many in statements:
                    (cur.executemany if many else cur.execute)(sql, params)
            conn.commit()
            spent[k] += time.process_time() - t

        for i in range(feeds):
            feed = f"f{i}"
            arts, its = floor_rows(feed, ITEMS)
            timed(0, (FLOOR_ARTICLE.format(p="%s"), arts, True),
                  (FLOOR_ITEM.format(p="%s"), its, True))
            new_art, new_item = floor_rows(f"n{i}", 1)
            timed(1, (FLOOR_READ.format(p="%s"), (feed, [r[1] for r in its]), False),
                  (FLOOR_ARTICLE.format(p="%s"), new_art, True),
                  (FLOOR_ITEM.format(p="%s"), new_item, True))
            timed(2, ("INSERT INTO fs VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
                      " SET last_fetch_at = excluded.last_fetch_at", (feed, T0), False))
    return tuple(s * 1000 / feeds for s in spent)


def report(backend: str, rows: list[dict], floor: tuple[float, float, float]) -> None:
    print(f"\n{backend}")
    print(f"{'':18}{'statements':>11}{'CPU ms':>9}{'wall ms':>9}{'floor ms':>10}{'CPU/floor':>11}")
    bases = {"first sight": floor[0], "changed feed": floor[1], "changed, known=": floor[1],
             "unchanged (304)": floor[2]}
    for row in rows:
        base = bases[row["label"]]
        print(f"{row['label']:18}{row['statements']:>11.1f}{row['cpu_ms']:>9.2f}"
              f"{row['wall_ms']:>9.2f}{base:>10.2f}{row['cpu_ms'] / base:>10.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print(f"store: {args.feeds} feeds x {ITEMS} items, code from {sys.path[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_store(f"sqlite:///{tmp}/herald.db", args.feeds)
        report("SQLite", rows, floor_sqlite(f"{tmp}/floor.db", args.feeds))
    with cluster("bench", "floor", skip=args.skip_postgres) as server:
        if server is not None:
            rows = run_store(server.url("bench"), args.feeds)
            report("PostgreSQL", rows, floor_postgres(dsn(server, "floor"), args.feeds))

if __name__ == "__main__":
    main()
