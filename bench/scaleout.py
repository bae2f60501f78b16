"""Scale-out: feeds polled per second and CPU per poll with 1, 2 and 3 workers.

Many feeds, each due every ``--every`` seconds, more than one worker can poll on
this machine, served by a local server that answers from memory and counts every
request. In one run, on one throwaway PostgreSQL cluster (tests/postgres.py's),
each worker count gets a fresh database: its ``run_bot.py run`` workers start,
their leases spread, a warm-up passes, then for ``--seconds`` the bench counts
the polls that reach the feed server and the CPU time of the workers
(/proc/<pid>/stat, user + system). With ``--rounds 2`` the counts alternate
(1, 2, 3, 1, 2, 3) so a change in the machine's load shows in both.

    .venv/bin/python bench/scaleout.py [--feeds 1000 --every 5 --seconds 30
        --warmup 10 --workers 1,2,3 --rounds 1 --keep]

Figures are ratios to the single worker measured in the same run. The machine's
busy share (all cores, /proc/stat) is printed beside them: workers cannot go
faster than the cores left free by everything else, the database included.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fleet import (FeedFarm, Leases, Worker, cpu_seconds, item, rss,  # noqa: E402
                         wait_for, write_config)

sys.path.insert(1, str(REPO / "bench"))
from pgcluster import cluster  # noqa: E402

ITEMS = 10       # items in every feed (the same on every poll: nothing new to post)
START = 120.0    # seconds the workers may take to start and spread their leases
TAKEOVER = 5.0   # workers.takeover_after of the config it writes (s)


@dataclass
class Options:
    feeds: int = 1000
    every: int = 5
    seconds: float = 30.0
    warmup: float = 10.0
    workers: list[int] = field(default_factory=lambda: [1, 2, 3])
    rounds: int = 1
    keep: bool = False


@dataclass
class Phase:
    """One worker count's measurement window."""

    workers: int
    seconds: float
    polls: int
    cpu: float             # the workers' CPU seconds in the window
    busy: float            # the machine's busy share, all cores, 0..1
    per_feed: list[int]    # polls of each feed in the window

    @property
    def rate(self) -> float:
        return self.polls / self.seconds

    @property
    def cpu_per_poll(self) -> float:
        return self.cpu / self.polls if self.polls else math.inf


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]          # idle + iowait
    return sum(fields) - idle, sum(fields)


class Bench:
    """The feeds, the cluster, and one phase after another."""

    def __init__(self, opts: Options, out=sys.stdout):
        self.opts, self.out = opts, out
        self.dir = Path(tempfile.mkdtemp(prefix="herald-scaleout-"))
        self.names = [f"f{i:05d}" for i in range(opts.feeds)]
        self.bodies = {name: _feed(name) for name in self.names}
        self.farm = FeedFarm(self.bodies.__getitem__)
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=self.out, flush=True)

    def run(self) -> list[Phase]:
        phases = []
        with self.farm, cluster() as server:
            if server is None:
                raise SystemExit("scaleout needs PostgreSQL: no server binaries found")
            for round_ in range(self.opts.rounds):
                for n in self.opts.workers:
                    name = f"scale_{round_}_{n}"
                    server.sql(f"CREATE DATABASE {name}")
                    phases.append(self.phase(n, server.url(name)))
        if not self.opts.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return phases

    def phase(self, n: int, database: str) -> Phase:
        config = self._config(database, n)
        workers = [Worker(config, self.dir / f"{config.stem}-{i}.log") for i in range(n)]
        leases = Leases(database, ttl=TAKEOVER)
        try:
            # One after another, as a rolling start does (tests/test_workers.py starts
            # them together); the figures are taken once the leases have spread.
            for worker in workers:
                worker.start()
                wait_for(lambda: worker.ready() or not worker.running(), START,
                         f"{worker.log.name} started")
                if not worker.running():
                    raise RuntimeError(f"{worker.log.name} exited at start (see {self.dir})")
            wait_for(lambda: self._spread(leases, workers), START, f"leases spread over {n}")
            self.say(f"{n} worker(s) hold all {len(self.names)} feeds; warming up")
            time.sleep(self.opts.warmup)
            return self._measure(n, workers)
        finally:
            for worker in workers:
                worker.stop(grace=30.0)
            leases.close()

    def _measure(self, n: int, workers: list[Worker]) -> Phase:
        cpu0, busy0 = [cpu_seconds(w.pid) for w in workers], machine_ticks()
        since = time.monotonic()
        time.sleep(self.opts.seconds)
        until = time.monotonic()
        cpu1, busy1 = [cpu_seconds(w.pid) for w in workers], machine_ticks()
        gone = [w.log.name for w in workers if not w.running()]
        if gone:
            raise RuntimeError(f"workers died while measured: {gone} (see {self.dir})")
        polls = self.farm.polls(since, until)
        phase = Phase(n, until - since, sum(polls.values()), sum(cpu1) - sum(cpu0),
                      (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
                      [polls[name] for name in self.names])
        self.say(f"{n} worker(s): {phase.rate:.1f} polls/s, "
                 f"{phase.cpu_per_poll * 1000:.2f} ms CPU per poll")
        return phase

    def _spread(self, leases: Leases, workers: list[Worker]) -> bool:
        held = leases.by_pid()
        feeds = {pid: sum(kind == "feed" for kind, _ in mine) for pid, mine in held.items()}
        return (sum(feeds.values()) == len(self.names)
                and all(feeds.get(w.pid, 0) > 0 for w in workers))

    def _config(self, database: str, n: int) -> Path:
        feeds = [{"name": name, "url": self.farm.url(name), "every": f"{self.opts.every}s",
                  "backfill": 0, "fetch_article": "never"} for name in self.names]
        account = {"name": "console", "platform": "console", "template": "{title} {url}"}
        return write_config(self.dir / f"workers-{n}-{time.monotonic_ns()}.yaml", database,
                            feeds, [account], [{"feeds": self.names, "accounts": ["console"]}],
                            # INFO as by default: a line per poll is part of its cost
                            workers={"heartbeat": "1s", "takeover_after": f"{TAKEOVER:g}s"})


def _feed(name: str) -> bytes:
    when = datetime(2026, 12, 1, tzinfo=timezone.utc)
    return rss(f"News of {name}", "".join(
        item(f"https://news.example.org/{name}/story-{n}", f"Story {n} of {name}", when)
        for n in range(ITEMS)))


def table(phases: list[Phase], opts: Options) -> str:
    """The phases side by side, as ratios to the single worker's (its median
    over the rounds)."""
    demand = opts.feeds / opts.every
    floor = [p for p in phases if p.workers == min(opts.workers)]
    rate0 = statistics.median(p.rate for p in floor)
    cpu0 = statistics.median(p.cpu_per_poll for p in floor)
    lines = ["| workers | polls/s | x floor | of demand | ms CPU/poll | x floor "
             "| workers' CPU (cores) | machine busy | polls per feed min-max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in phases:
        lines.append(
            f"| {p.workers} | {p.rate:.1f} | {p.rate / rate0:.2f} | {p.rate / demand:.0%} "
            f"| {p.cpu_per_poll * 1000:.2f} | {p.cpu_per_poll / cpu0:.2f} "
            f"| {p.cpu / p.seconds:.2f} | {p.busy:.0%} | {min(p.per_feed)}-{max(p.per_feed)} |")
    return "\n".join(lines)


def report(phases: list[Phase], opts: Options, command: str, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"command:  {command}")
    p(f"machine:  {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    p(f"demand:   {opts.feeds} feeds every {opts.every} s = {opts.feeds / opts.every:.0f} polls/s; "
      f"window {opts.seconds:g} s after {opts.warmup:g} s of warm-up")
    p(table(phases, opts))
    p("  (x floor: ratio to the single worker of this run; of demand: polls/s over feeds/every;")
    p("   workers' CPU: their user+system seconds per second; machine busy: all cores, "
      "everything)")


def parse(argv: list[str] | None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=d.feeds)
    p.add_argument("--every", type=int, default=d.every, help="seconds (5 at least)")
    p.add_argument("--seconds", type=float, default=d.seconds, help="measured window per phase")
    p.add_argument("--warmup", type=float, default=d.warmup)
    p.add_argument("--workers", type=lambda t: [int(n) for n in t.split(",")], default=d.workers,
                   help="worker counts, comma-separated (default 1,2,3)")
    p.add_argument("--rounds", type=int, default=d.rounds)
    p.add_argument("--keep", action="store_true", help="keep the configs and worker logs")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Measure each worker count; print the table."""
    opts = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # children are stopped on the way
    bench = Bench(opts)
    phases = bench.run()
    report(phases, opts, "bench/scaleout.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
