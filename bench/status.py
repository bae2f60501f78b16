"""What `status` asks of the store, at 1,000,000 articles, against the same
calls on an empty database, side by side in one run; SQLite and PostgreSQL
(a throwaway cluster, as tests/postgres.py starts).

The database is filled fast, beside the store (executemany on SQLite, COPY on
PostgreSQL), after the store made the schema: N articles and their items over
10,000 feeds, and outbox rows for a share of them on 4 accounts, mostly sent,
some failed, skipped, filtered, pending and held. Then each call bot.report
and bot.metrics make is timed (best of --rounds), and the whole as one status.

    .venv/bin/python bench/status.py --articles 1000000
    .venv/bin/python bench/status.py --articles 200000 --skip-postgres
"""
from __future__ import annotations

import argparse
import os
import random
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

from bot.store import Store  # noqa: E402
from pgcluster import cluster, dsn  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
ACCOUNTS = ("x", "fb", "mastodon", "bluesky")
FEEDS = 10_000
# Share of the outbox rows in each status (the rest are sent).
MIX = (("failed", 0.02), ("skipped", 0.01), ("filtered", 0.005), ("pending", 0.003),
       ("held", 0.002))


def sqlite_ts(at: datetime) -> str:
    """A time as SQLAlchemy keeps it in SQLite."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def status_of(rng: random.Random) -> str:
    draw, edge = rng.random(), 0.0
    for status, share in MIX:
        edge += share
        if draw < edge:
            return status
    return "sent"


def rows(n: int, share: float, ts) -> tuple[list, list, list, list]:
    """(feed_state, articles, items, outbox) rows; ``ts`` renders a time."""
    rng = random.Random(12)
    feeds = [(f"feed{f:05d}", f"https://feed{f}.example/rss", 0, ts(T0)) for f in range(FEEDS)]
    arts, its, posts = [], [], []
    for i in range(1, n + 1):
        feed, seen = f"feed{i % FEEDS:05d}", T0 - timedelta(seconds=n - i)
        url = f"https://feed{i % FEEDS}.example/2026/story-{i}"
        arts.append((i, url.removeprefix("https://"), url, feed, f"Headline {i}", "A lead.", "[]",
                     ts(seen), ts(seen)))
        its.append((feed, url, i, ts(seen)))
        if rng.random() < share:
            for account in ACCOUNTS:
                status = status_of(rng)
                done = ts(seen + timedelta(minutes=5))
                posts.append((len(posts) + 1, i, account, status, 0, ts(seen), 1, done,
                              done if status == "sent" else None,
                              f"p{len(posts)}" if status == "sent" else None, f"Headline {i} {url}",
                              None if status in ("sent", "pending", "held") else "why"))
    return feeds, arts, its, posts


COLUMNS = {
    "feed_state": "name, configured_url, error_streak, last_fetch_at",
    "articles": "id, url_key, url, feed, title, lead, categories, published_at, first_seen_at",
    "items": "feed, item_id, article_id, first_seen_at",
    "outbox": "id, article_id, account, status, priority, queued_at, attempts, updated_at, "
              "sent_at, platform_id, text, last_error",
}


def fill_sqlite(path: str, data: tuple) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for table, values in zip(COLUMNS, data):
        marks = ",".join("?" * len(values[0]))
        conn.executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", values)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(dsn: str, data: tuple) -> None:
    with psycopg.connect(dsn) as conn:
        for table, values in zip(COLUMNS, data):
            with conn.cursor().copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        for table in ("articles", "outbox"):
            conn.execute(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def calls(store: Store) -> dict:
    """What a status (bot.report.gather, bot.metrics.gauges_from_store) reads."""
    now = T0 + timedelta(hours=1)
    return {
        "outbox_counts": store.outbox_counts,
        "queue_stats": lambda: store.queue_stats(now),
        "recent failed": lambda: store.recent(["failed"], 10),
        "recent sent": lambda: store.recent(["sent"], 10),
        "recent filtered": lambda: store.recent(["filtered"], 10),
        "held": store.held,   # all of them, as bot.report asks today
        "feeds": store.feeds,
        "workers": store.workers,
        "accounts": lambda: [store.account_row(a) for a in ACCOUNTS],
        "pending queues": lambda: [store.queue(a) for a in ACCOUNTS],
    }


def timed(store: Store, rounds: int) -> dict[str, float]:
    best = {}
    for name, call in calls(store).items():
        spent = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
        best[name] = min(spent)
    best["status (all)"] = sum(best.values())
    start = time.perf_counter()
    store.held(limit=10)
    best["held, a page of 10"] = time.perf_counter() - start   # not in the sum
    return best


def run(backend: str, url_of, fill, args) -> None:
    empty = Store(url_of("empty"), lambda: T0)
    empty.migrate()
    floor = timed(empty, args.rounds)
    empty.close()
    store = Store(url_of("full"), lambda: T0)
    store.migrate()
    started = time.perf_counter()
    data = rows(args.articles, args.share, fill.ts)
    fill(data)
    filled = time.perf_counter() - started
    full = timed(store, args.rounds)
    store.close()
    print(f"\n{backend}: {args.articles:,} articles, {len(data[3]):,} outbox rows, "
          f"{FEEDS:,} feeds (made and filled in {filled:.0f} s)")
    print(f"{'':18}{'full ms':>10}{'empty ms':>10}{'ratio':>9}")
    for name in full:
        print(f"{name:18}{full[name] * 1000:>10.1f}{floor[name] * 1000:>10.2f}"
              f"{full[name] / floor[name]:>8.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.25,
                        help="share of the articles queued (for every account)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print(f"status: code from {sys.path[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        def fill(data):
            fill_sqlite(f"{tmp}/full.db", data)
        fill.ts = sqlite_ts
        run("SQLite", lambda name: f"sqlite:///{tmp}/{name}.db", fill, args)
    with cluster("herald_empty", "herald_full", skip=args.skip_postgres) as server:
        if server is not None:
            def fill_pg(data):
                fill_postgres(dsn(server, "herald_full"), data)
            fill_pg.ts = lambda at: at
            run("PostgreSQL", lambda name: server.url(f"herald_{name}"), fill_pg, args)

if __name__ == "__main__":
    main()
