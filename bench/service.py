"""The running service with 10,000 feeds and 1,000,000 stored articles (issue 12).

One ``run_bot.py run`` process (SQLite, the default single worker) polls
--feeds feeds every --every seconds from bench/feeds.py's server (RSS 2.0,
50 items with HTML descriptions, ETag and 304, keep-alive; a child process on
127.0.0.1). Before it starts, the database is filled as bench/status.py fills
it: --articles articles and their items over the same 10,000 feed names, a
share of them posted. The service then sees every feed for the first time
(priming), and the bench measures one whole interval after that, centred on
the first round of polls every feed takes part in: --changed of the feeds gain
one item at its start, the rest answer 304.

It prints, for that interval: the polls that reached the feed server, the feeds
whose last fetch fell in it (each one should), the worker's CPU seconds as a
share of one core and of the machine, its peak and final RSS (VmHWM, VmRSS),
and the same for priming. The floor of a speed figure is the same machine's
two cores over the same interval: the figure is the share the service leaves.

    .venv/bin/python bench/service.py            # 10,000 feeds, 5 minutes
    .venv/bin/python bench/service.py --feeds 1000 --every 60 --articles 100000
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

import feeds as feedbench  # noqa: E402
import status as statusbench  # noqa: E402

from bot.schema import url_digest  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.fleet import Worker, cpu_seconds, wait_for, write_config  # noqa: E402

SERVED = multiprocessing.get_context("fork").Value("q", 0)   # requests answered


class Counted(feedbench.Handler):
    def do_GET(self):  # noqa: N802
        with SERVED.get_lock():
            SERVED.value += 1
        super().do_GET()


def fill(path: Path, articles: int, share: float) -> float:
    """Make the schema and fill it as bench/status.py does; seconds taken."""
    began = time.perf_counter()
    store = Store(f"sqlite:///{path}", lambda: statusbench.T0)
    store.migrate()
    store.close()
    statusbench.fill_sqlite(str(path), statusbench.rows(articles, share, statusbench.sqlite_ts))
    return time.perf_counter() - began


def config(folder: Path, db: Path, port: int, n: int, every: int) -> Path:
    names = [f"feed{i:05d}" for i in range(n)]   # bench/status.py's feed names
    feeds = [{"name": name, "url": f"http://127.0.0.1:{port}/feed{i}.xml", "every": f"{every}s",
              "backfill": 0, "fetch_article": "never"} for i, name in enumerate(names)]
    account = {"name": "console", "platform": "console", "template": "{title} {url}"}
    return write_config(folder / "service.yaml", f"sqlite:///{db}", feeds, [account],
                        [{"feeds": names, "accounts": ["console"]}])


def memory(pid: int) -> dict[str, float]:
    """VmHWM (peak) and VmRSS of ``pid``, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
    return out


def count(db: Path, sql: str, *args) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, args).fetchone()[0]


def ours(db: Path, port: int, n: int, where: str, *args) -> int:
    """How many of this bench's feeds match ``where``: the rows the service
    re-made for its URLs (bench/status.py's fill made the same names for
    others), told by the URL's digest, all the row keeps of it."""
    mine = {url_digest(f"http://127.0.0.1:{port}/feed{i}.xml") for i in range(n)}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(f"select configured_url from feed_state where {where}", args)
        return sum(digest in mine for (digest,) in rows)


def machine_busy() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)   # busy, all (idle, iowait out)


class Window:
    """CPU, requests and machine load between ``start`` and ``stop``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.cpu, self.served, self.busy = cpu_seconds(pid), SERVED.value, machine_busy()
        self.began, self.wall_began = time.monotonic(), datetime.now(timezone.utc)

    def stop(self) -> dict:
        busy = machine_busy()
        return {"seconds": time.monotonic() - self.began, "cpu": cpu_seconds(self.pid) - self.cpu,
                "served": SERVED.value - self.served,
                "machine": (busy[0] - self.busy[0]) / max(1, busy[1] - self.busy[1])}


def say(began: float, message: str) -> None:
    print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)


def run(args) -> None:
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="herald-service-"))
    db = folder / "herald.db"
    took = fill(db, args.articles, args.share)
    say(began, f"database filled: {count(db, 'select count(*) from articles'):,} articles, "
               f"{count(db, 'select count(*) from outbox'):,} outbox rows in {took:.0f} s")
    server, port = feedbench.start_server(Counted)
    worker = Worker(config(folder, db, port, args.feeds, args.every), folder / "service.log")
    try:
        measure(args, worker, db, port, began)
    finally:
        worker.stop(grace=60)
        server.terminate()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def measure(args, worker: Worker, db: Path, port: int, began: float) -> None:
    worker.start()
    wait_for(lambda: worker.ready() or not worker.running(), 120, "the service started")
    if not worker.running():
        raise SystemExit(f"the service stopped:\n{worker.text()[-3000:]}")
    prime = Window(worker.pid)   # the poll jobs start now, then every --every s (+ jitter)
    wait_for(lambda: ours(db, port, args.feeds, "primed_at is not null") >= args.feeds
             or not worker.running(),
             args.every * 3, "every feed primed", step=2.0)
    if not worker.running():
        raise SystemExit(f"the service stopped:\n{worker.text()[-3000:]}")
    first = prime.stop()
    say(began, f"{args.feeds:,} feeds primed")
    # A feed primed late in the first round is "fresh" at the next one (polled
    # under every/2 ago) and waits for the one after: the interval measured is
    # centred on the first round every feed takes part in.
    rounds = math.ceil(first["seconds"] / args.every) + 1
    time.sleep(max(0.0, prime.began + (rounds - 0.5) * args.every - time.monotonic()))
    changed = round(args.feeds * args.changed)
    urllib.request.urlopen(f"http://127.0.0.1:{port}/control?upto={changed}").read()
    window = Window(worker.pid)
    time.sleep(args.every)
    cycle, mem = window.stop(), memory(worker.pid)
    time.sleep(6)   # the heartbeat writes the unchanged polls' times (every 5 s)
    since = statusbench.sqlite_ts(window.wall_began)
    fetched = ours(db, port, args.feeds, "last_fetch_at >= ?", since)
    articles = count(db, "select count(*) from articles")
    report(args, first, cycle, mem, fetched, changed, articles, worker)


def report(args, first, cycle, mem, fetched, changed, articles, worker) -> None:
    print(f"\n{args.feeds:,} feeds every {args.every} s, {articles:,} articles stored at the end "
          "(SQLite), one `run_bot.py run` process, 2 cores")
    for label, w in (("priming (first sight of every feed)", first),
                     (f"one interval ({changed} feeds one item newer, the rest 304)", cycle)):
        print(f"  {label}: {w['seconds']:.0f} s, {w['served']:,} requests, "
              f"{w['cpu']:.1f} s CPU = {w['cpu'] / w['seconds']:.1%} of one core, "
              f"{w['cpu'] / max(1, w['served']) * 1000:.2f} ms per request; machine "
              f"{w['machine']:.0%} busy (feed server included)")
    print(f"  feeds whose last fetch fell in the interval: {fetched:,} of {args.feeds:,}")
    print(f"  service RSS: peak {mem['VmHWM']:.0f} MB, at the end {mem['VmRSS']:.0f} MB")
    missed = worker.text().count("was missed by")
    print(f"  scheduler runs missed (APScheduler 'was missed by'): {missed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=300, help="seconds between polls of a feed")
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--share", type=float, default=0.05, help="share of articles posted")
    ap.add_argument("--changed", type=float, default=0.05,
                    help="share of feeds with one new item in the measured interval")
    ap.add_argument("--keep", action="store_true", help="keep the folder (log, database)")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
