"""One publish pass with a small and a large backlog, side by side in one run.

Issue 12's target: one pass with 3,000 pending posts costs about what it costs
with 100. Each size gets its own SQLite database (built once, copied for every
round), one account with a trivial in-process adapter (it answers at once, so
the pass is all Herald), and the same pass: ``Publisher.run()`` sending
MAX_PER_PASS posts. Printed: the median time per pass and per post sent,
each size's ratio to the small backlog's pass (the floor, measured in the same
run), and the time of the whole plan ``status`` shows (Publisher.plan). Two
schedules: none, and one with windows, caps, jitter and expiry.

    .venv/bin/python bench/publish.py --small 100 --large 3000 --rounds 5

HERALD_ROOT=<another checkout> runs the same benchmark against that code (the
"before" figures).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, os.environ.get("HERALD_ROOT") or str(Path(__file__).resolve().parent.parent))

from bot.adapters.base import Adapter  # noqa: E402
from bot.config import AccountConfig, Schedule, parse_window  # noqa: E402
from bot.models import Article, Receipt  # noqa: E402
from bot.publish import Account, Publisher  # noqa: E402
from bot.store import Store  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
SCHEDULES = {
    "no schedule": None,
    "windows, caps, jitter, expiry": Schedule(
        max_per_hour=1000, max_per_day=10_000, jitter=timedelta(seconds=0),
        windows=(parse_window("daily 06:00-23:00"),), timezone="Europe/Berlin",
        expire_after=timedelta(days=3)),
}


class Instant(Adapter):
    """A platform that takes every post at once."""

    platform, max_length, url_length, counting = "instant", 280, 23, "twitter"

    def publish(self, post) -> Receipt:
        return Receipt(platform_id=post.key)

    def find_recent(self, post, since):
        return None


def build(path: Path, pending: int) -> None:
    """A database with ``pending`` posts queued for account "x"."""
    store = Store(f"sqlite:///{path}", lambda: NOW)
    store.migrate()
    store.feed_row("wire", "https://news.example/rss")
    found = [Article(feed="wire", item_id=f"guid-{n}", url=f"https://news.example/story-{n}",
                     title=f"Story number {n}", lead=f"The lead of story {n}, long enough to post.",
                     published=NOW - timedelta(minutes=n)) for n in range(pending)]
    store.ingest("wire", [], [("x", 0)])          # first sight queues nothing
    assert store.ingest("wire", found, [("x", 0)]).queued == pending
    store.close()


def one_pass(template: Path, work: Path, schedule: Schedule | None) -> tuple[float, int, float]:
    """(seconds for one pass, posts it sent, seconds for the plan ``status`` shows)."""
    shutil.copy(template, work)
    store = Store(f"sqlite:///{work}", lambda: NOW)
    config = AccountConfig(name="x", platform="instant", template="{title}: {lead} {url}",
                           credentials={}, schedule=schedule)
    account = Account(config, Instant("x", {}, {}, clock=lambda: NOW))
    publisher = Publisher(store, [account], lambda: NOW, "bench")
    start = time.perf_counter()
    publisher.plan(account)
    planned = time.perf_counter() - start
    start = time.perf_counter()
    sent = publisher.run()
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, sent, planned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = (args.small, args.large)
        for size in sizes:
            build(folder / f"queue-{size}.db", size)
        print(f"one publish pass, median of {args.rounds} rounds (code: {sys.path[0]})")
        for label, schedule in SCHEDULES.items():
            report(label, folder, sizes, schedule, args.rounds)


def report(label: str, folder: Path, sizes, schedule, rounds: int) -> None:
    medians = {}
    for size in sizes:
        runs = [one_pass(folder / f"queue-{size}.db", folder / "work.db", schedule)
                for _ in range(rounds)]
        medians[size] = (statistics.median(r[0] for r in runs), runs[0][1],
                         statistics.median(r[2] for r in runs))
    floor = medians[sizes[0]][0]
    print(f"\n{label}")
    for size, (seconds, sent, planned) in medians.items():
        print(f"  {size:>6} pending: {seconds * 1000:8.1f} ms a pass, {sent} sent, "
              f"{seconds * 1000 / max(sent, 1):6.2f} ms a post, {seconds / floor:5.2f}x the "
              f"{sizes[0]}-post pass; the plan status shows {planned * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
