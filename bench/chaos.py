"""Chaos benchmark: never lose a post, never post twice, on every platform.

A feed on 127.0.0.1 publishes new RSS items over time; Herald (``run_bot.py run``,
a real subprocess) posts each to one account per platform on the fake platform
server (``tests.fakes.server``; the platforms come from its registry, one
``tests/fakes/<name>_api.py`` each, and each gets a server process of its own),
which answers 5xx, 429 and slow accepts (recorded, then answered after the
client's read timeout) at random. Meanwhile Herald is killed with SIGKILL at
random moments and restarted; half the kills wait for a post in ``sending``
first, to hit the ambiguous window between claim and record. When the feed is
done and the outbox is settled, Herald gets SIGTERM (must exit 0), and every
(article, account) pair is checked, per platform, against the posts that
platform's fake accepted: exactly once, none missing.

    .venv/bin/python bench/chaos.py [--platforms twitter,facebook,mastodon,bluesky]
        [--pairs 200 --kills 10 --seed N --timeout 600]
        [--fail-5xx 0.2 --rate-limit 0.05 --fb-rate-limit 0.01 --slow-accept 0.05 --keep]
        [--workers 3 --database postgresql://...|throwaway --feeds 6]

With ``--workers N`` (PostgreSQL only: ``--database`` a URL of an empty database,
or ``throwaway`` for a cluster of its own started as tests/postgres.py does) N
``run`` workers share the database, as one service; the kills are spread across
them (a kill aimed at a post in flight hits the worker that claimed it), the
articles are spread over ``--feeds`` feeds (default 2 per worker), and the note
adds how often each feed was polled in each of its intervals, counted at the
feed server: about once, across all workers, is right; a kill leaves its
worker's feeds unpolled until their leases are taken over.

Exit status 0 only with 0 lost, 0 duplicates, 0 strays and 0 refused re-sends
on every platform, over at least ``--pairs`` pairs (articles x platforms). A
refused re-send is a posting request the platform failed with an error it was
not told to inject, other than 400/422: X's "duplicate content", a used Bluesky
record key; each means Herald sent an accepted post again. (400/422 are counted
apart, as "malformed": a SIGKILL while Herald writes a post leaves the fake a
short body, which it answers 400.) Graph's 429 gets its own, lower rate by default:
each one pauses the Page for at least a minute (Graph counts in minutes).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakes.server import platforms as registered  # noqa: E402
from tests.fakes.shapes import FakePlatform, Request  # noqa: E402
from tests.fleet import READY, FeedFarm, Worker, end, pid_of, rss  # noqa: E402

sys.path.insert(1, str(REPO / "bench"))
from pgcluster import cluster  # noqa: E402

LINK = "https://news.example.org/chaos/{run}/story-{n}"
LINK_RE = re.compile(r"https://news\.example\.org/chaos/\S+/story-\d+")
# Per account, on top of what the platform's fake says (``FakePlatform.account``).
ACCOUNT = {"max_attempts": 20, "retry_backoff": "1s"}
EVERY = 5                    # seconds between polls of each feed
# Several workers: a killed one's work moves after TAKEOVER seconds, not the default 20.
WORKERS = {"heartbeat": "1s", "takeover_after": "5s"}
CONFIG = {"log_level": "INFO", "publish_every": "1s",
          "http": {"connect_timeout": 2, "read_timeout": 5, "deadline": 10}}


def platforms(names: list[str] | None = None) -> dict[str, FakePlatform]:
    """The fakes that say how to configure an account (all of them, or ``names``)."""
    known = {name: p for name, p in sorted(registered().items()) if p.account}
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ValueError(f"no fake platform {', '.join(unknown)}; known: {', '.join(known)}")
    return {name: known[name] for name in names} if names else known


def account_name(platform: str) -> str:
    return f"chaos-{platform}"


class TimedOut(Exception):
    """The run went past ``--timeout``."""


@dataclass
class Options:
    platforms: list[str] = field(default_factory=list)   # empty: every registered fake
    pairs: int = 200
    kills: int = 10
    seed: int = 1
    timeout: float = 600.0
    fail_5xx: float = 0.2
    rate_limit: float = 0.05
    # Each Graph 429 pauses the Page for a minute at least (the fake's floor, as
    # Graph counts in minutes): at 0.05 a 200-pair run takes 10-15 minutes.
    fb_rate_limit: float = 0.01
    slow_accept: float = 0.05
    slow_seconds: float = 3.0
    reset_seconds: int = 3
    read_timeout: float = 1.0
    keep: bool = False
    workers: int = 1
    database: str | None = None   # a URL, "throwaway", or None: SQLite in the run's folder
    feeds: int = 0                # 0: one feed, or two per worker with several

    @property
    def feed_count(self) -> int:
        return self.feeds or (1 if self.workers == 1 else 2 * self.workers)


@dataclass
class Tally:
    """One platform's figures, counted at its fake: what it accepted, per article."""

    pairs: int = 0
    once: int = 0
    lost: list[int] = field(default_factory=list)                    # article numbers
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (article, copies)
    strays: list[str] = field(default_factory=list)   # accepted posts with no link of this run
    faults: Counter = field(default_factory=Counter)  # injected, by kind; and "refused"

    @property
    def ok(self) -> bool:
        return (self.pairs >= 1 and self.once == self.pairs and not self.lost
                and not self.duplicates and not self.strays and not self.faults["refused"])


def tally(posts: list[dict], links: list[str], faults: Counter) -> Tally:
    """Count each of ``links`` among one platform's accepted ``posts``."""
    seen = Counter(_link_of(post) for post in posts)
    t = Tally(pairs=len(links), faults=faults)
    for n, link in enumerate(links):
        copies = seen.pop(link, 0)
        if copies == 1:
            t.once += 1
        elif copies == 0:
            t.lost.append(n)
        else:
            t.duplicates.append((n, copies))
    t.strays = [f"{link!r} x{copies}" for link, copies in seen.items()]
    return t


def _link_of(post: dict) -> str | None:
    # X and Mastodon record the first URL in the text, Graph its link field, Bluesky
    # its link card; a text whose link was shortened would still show the full one.
    if post.get("link"):
        return post["link"]
    found = LINK_RE.search(post.get("text") or "")
    return found.group() if found else None


@dataclass
class Result:
    """The figures of one run, per platform; ``ok`` is the verdict."""

    platforms: dict[str, Tally] = field(default_factory=dict)
    kills: int = 0
    kills_mid_send: int = 0
    herald_log: Counter = field(default_factory=Counter)
    failed_rows: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    error: str | None = None
    workers: int = 1
    polls: Polls | None = None

    @property
    def pairs(self) -> int:
        return sum(t.pairs for t in self.platforms.values())

    @property
    def once(self) -> int:
        return sum(t.once for t in self.platforms.values())

    @property
    def lost(self) -> list[tuple[int, str]]:
        return [(n, name) for name, t in self.platforms.items() for n in t.lost]

    @property
    def duplicates(self) -> list[tuple[int, str, int]]:
        return [(n, name, c) for name, t in self.platforms.items() for n, c in t.duplicates]

    @property
    def faults(self) -> Counter:
        return sum((t.faults for t in self.platforms.values()), Counter())

    @property
    def ok(self) -> bool:
        return (self.error is None and self.exit_code == 0 and bool(self.platforms)
                and all(t.ok for t in self.platforms.values()))
@dataclass
class Polls:
    """How often each feed was polled in each whole interval of ``every``
    seconds between ``start`` and ``stop``, counted at the feed server."""

    every: float
    seconds: float
    per_interval: Counter = field(default_factory=Counter)   # polls -> feed-intervals
    per_feed: dict[str, int] = field(default_factory=dict)   # polls in all

    @property
    def intervals(self) -> int:
        """Whole intervals per feed."""
        return int(self.seconds // self.every)

    @property
    def mean(self) -> float:
        cells = sum(self.per_interval.values())
        return sum(k * v for k, v in self.per_interval.items()) / cells if cells else 0.0


def count_polls(times: dict[str, list[float]], start: float, stop: float, every: float) -> Polls:
    """``times``: each feed's request times (``time.monotonic()``)."""
    polls = Polls(every, stop - start)
    for feed, seen in sorted(times.items()):
        cells = Counter(int((t - start) // every) for t in seen if start <= t < stop)
        polls.per_interval.update(cells[i] for i in range(polls.intervals))
        polls.per_feed[feed] = sum(cells.values())
    return polls


# -- the feeds -----------------------------------------------------------------

class FeedServer:
    """RSS feeds on 127.0.0.1 that grow when ``add`` is called; start empty.
    Article n is on feed ``n % len(names)``; every request is logged (``farm.log``)."""

    def __init__(self, run_id: str, names: list[str]):
        self.run_id, self.names = run_id, names
        self.items: list[tuple[int, datetime]] = []
        self.lock = threading.Lock()
        self.farm = FeedFarm(self.rss)

    def url(self, name: str) -> str:
        return self.farm.url(name)

    def start(self) -> FeedServer:
        self.farm.start()
        return self

    def stop(self) -> None:
        self.farm.stop()

    def add(self, n: int) -> None:
        with self.lock:
            start = len(self.items)
            self.items += [(start + i, datetime.now(timezone.utc)) for i in range(n)]

    def link(self, n: int) -> str:
        return LINK.format(run=self.run_id, n=n)

    def polls(self, start: float, stop: float) -> Polls:
        return count_polls({name: self.farm.times(name) for name in self.names}, start, stop,
                           EVERY)

    def rss(self, name: str = "") -> bytes:
        mine = self.names.index(name) if name in self.names else 0
        with self.lock:
            items = [(n, when) for n, when in reversed(self.items)   # newest first, as feeds do
                     if n % len(self.names) == mine]
        return rss("Chaos news", "".join(self._item(n, when) for n, when in items))

    def _item(self, n: int, when: datetime) -> str:
        link = escape(self.link(n))
        lead = (f"Story number {n} of the chaos run tells how the council voted on the new "
                f"harbour plan after a long debate that lasted well into the night.")
        return (f"<item><title>Chaos story {n}: council votes on harbour plan</title>"
                f"<link>{link}</link><guid isPermaLink=\"true\">{link}</guid>"
                f"<pubDate>{format_datetime(when)}</pubDate>"
                f"<description>{escape(lead)}</description></item>")


# -- the fake platforms and Herald, as subprocesses -------------------------------

class FakeServer:
    """``tests.fakes.server`` in its own process for one platform, with random
    faults; its request log goes to ``log`` and its stderr beside it. (It speaks
    every registered platform; only ``platform``'s account points at it, so its
    faults and its posts are that platform's.)"""

    def __init__(self, platform: FakePlatform, opts: Options, log: Path, rate_limit: float,
                 seed: int):
        self.platform = platform
        self.log = log
        self.args = [sys.executable, "-m", "tests.fakes.server",
                     "--port", "0", "--fail-5xx", str(opts.fail_5xx),
                     "--rate-limit", str(rate_limit), "--slow-accept", str(opts.slow_accept),
                     "--slow-seconds", str(opts.slow_seconds),
                     "--reset-seconds", str(opts.reset_seconds), "--seed", str(seed),
                     "--log", str(log)]
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> FakeServer:
        with open(self.log.with_suffix(".err"), "a") as err:
            self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, text=True)
        port = self.proc.stdout.readline().strip()   # printed when ready
        if not port.isdigit():
            raise RuntimeError(f"the fake {self.platform.name} server did not start "
                               f"(said {port!r}; see {self.log.with_suffix('.err')})")
        self.url = f"http://127.0.0.1:{port}"
        return self

    def posts(self) -> list[dict]:
        """The posts this platform's fake accepted."""
        with urllib.request.urlopen(self.url + "/_fake/posts", timeout=10) as answer:
            return [p for p in json.load(answer) if p.get("platform") == self.platform.name]

    def faults(self) -> Counter:
        """Injected faults by kind, from the fake's request log, and the posting
        requests the platform failed on its own: "malformed" (400, 422) and "refused"
        (any other error: X's duplicate content, a used Bluesky record key; in this
        run, an accepted post sent again)."""
        kinds: Counter = Counter()
        if not self.log.exists():
            return kinds
        for line in map(json.loads, self.log.read_text().splitlines()):
            fault = line.get("fault")
            if fault:
                kinds["5xx" if fault[0] == "5" else fault] += 1
            elif self._posting(line) and line["status"] >= 400:
                # A SIGKILL while Herald writes a post leaves the fake a short body,
                # which it answers as malformed: expected here, and a post that was
                # really malformed is never accepted, so it shows as lost.
                kinds["malformed" if line["status"] in (400, 422) else "refused"] += 1
        return kinds

    def _posting(self, line: dict) -> bool:
        return line["method"] == "POST" and line["path"].endswith(self.platform.posting)

    def stop(self) -> None:
        end(self.proc, signal.SIGTERM)


def _fakes(opts: Options, chosen: dict[str, FakePlatform], folder: Path) -> dict[str, FakeServer]:
    """One fake per platform, so Graph's 429 (a pause of a minute or more) can be
    tuned apart from the others' (a pause of ``reset_seconds``), and each fake's
    log and posts are its platform's alone."""
    every = sorted(registered())     # seeds stay put when --platforms picks a few
    return {name: FakeServer(p, opts, folder / f"fake-{name}.jsonl",
                             opts.fb_rate_limit if name == "facebook" else opts.rate_limit,
                             opts.seed * 100 + every.index(name))
            for name, p in chosen.items()}


# -- the database, read-only ------------------------------------------------------

class Outbox:
    """Read-only looks at Herald's database (SQLite or PostgreSQL) while it runs."""

    def __init__(self, url: str):
        self.url = url
        self.file = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
        # SQLite read-only: a look never creates the file or takes a write lock.
        self.engine = sa.create_engine(f"sqlite:///file:{self.file}?mode=ro&uri=true"
                                       if self.file else url, poolclass=sa.pool.NullPool)

    def _query(self, sql: str) -> list[tuple]:
        if self.file and not self.file.exists():
            return []
        try:
            with self.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql))]
        except sa.exc.DBAPIError:    # tables not yet created
            return []

    def empty(self) -> bool:
        return not self._query("SELECT 1 FROM feed_state")

    def primed(self, feeds: int = 1) -> bool:
        return len(self._query("SELECT 1 FROM feed_state WHERE primed_at IS NOT NULL")) >= feeds

    def counts(self) -> Counter:
        return Counter(dict(self._query("SELECT status, count(*) FROM outbox GROUP BY status")))

    def sending(self) -> int:
        return self.counts()["sending"]

    def senders(self) -> list[int]:
        """Pids of the workers that claimed the posts in 'sending'."""
        return [pid_of(worker) for (worker,) in self._query(
            "SELECT claimed_by FROM outbox WHERE status = 'sending' AND claimed_by IS NOT NULL")]

    def unsettled(self) -> list[str]:
        """The posts still waiting, with why (a throwaway database is gone after the run)."""
        return [f"{account} #{row_id} {status}, {attempts or 0} attempts, not before "
                f"{not_before}: {error}" for row_id, account, status, attempts, not_before, error
                in self._query("SELECT id, account, status, attempts, not_before, last_error "
                               "FROM outbox WHERE status IN ('pending', 'sending') ORDER BY id")]

    def failed(self) -> list[str]:
        return [f"{account} #{row_id}: {error}" for row_id, account, error in self._query(
            "SELECT id, account, last_error FROM outbox WHERE status NOT IN ('sent', 'pending', 'sending')")]

    def close(self) -> None:
        self.engine.dispose()


# -- the run ----------------------------------------------------------------------

class Chaos:
    """One chaos run in a temporary directory; ``run()`` returns the figures."""

    def __init__(self, opts: Options, out=sys.stdout):
        self.opts = opts
        self.out = out
        self.rng = random.Random(opts.seed)
        self.feed_rng = random.Random(opts.seed + 2)    # the drip thread's own
        self.victim_rng = random.Random(opts.seed + 3)  # which worker a kill hits
        self.platforms = platforms(opts.platforms)
        self.articles = math.ceil(opts.pairs / len(self.platforms))
        self.dir = Path(tempfile.mkdtemp(prefix="herald-chaos-"))
        names = ["chaos"] if opts.feed_count == 1 else [f"chaos-{i}" for i in range(opts.feed_count)]
        self.feed = FeedServer(f"{opts.seed}-{os.getpid()}", names)
        self.fakes = _fakes(opts, self.platforms, self.dir)
        self.env = {var: value for p in self.platforms.values() for var, value in p.env.items()}
        logs = (["herald.log"] if opts.workers == 1
                else [f"herald-{i}.log" for i in range(opts.workers)])
        self.workers = [Worker(self.dir / "herald.yaml", self.dir / log, self.env) for log in logs]
        self.stack = ExitStack()
        self.outbox: Outbox | None = None
        self.result = Result(workers=opts.workers)
        self.deadline = 0.0
        self.polls_from = 0.0

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=self.out, flush=True)

    def run(self) -> Result:
        self.started = time.monotonic()
        self.deadline = self.started + self.opts.timeout
        try:
            self._run()
        except TimedOut as exc:
            self.result.error = f"timed out: {exc}"
            self._tally()    # what got through so far; "lost" then counts posts still queued
            self.result.unsettled = self.outbox.unsettled()
        except RuntimeError as exc:     # a database that will not do, a fake that did not start
            self.result.error = str(exc)
        finally:
            self._clean_up()
        self.result.seconds = time.monotonic() - self.started
        return self.result

    def _run(self) -> None:
        self.outbox = Outbox(self._database())
        if not self.outbox.empty():
            raise RuntimeError(f"the database {self._shown()} is not empty: give chaos a new one")
        self.feed.start()
        for fake in self.fakes.values():
            fake.start()
        self._write_config()
        for worker in self.workers:
            worker.start()
        self._wait(lambda: self.outbox.primed(len(self.feed.names)),
                   "Herald's first sight of the empty feeds")
        self._wait(lambda: all(w.ready() for w in self.workers), "every worker to start")
        self.polls_from = time.monotonic()
        self.say(f"{len(self.feed.names)} feed(s) primed by {len(self.workers)} worker(s); "
                 f"publishing {self.articles} articles to {', '.join(self.platforms)}")
        dripping = threading.Thread(target=self._drip, daemon=True)
        dripping.start()
        self._kill_while(dripping.is_alive)
        self.say(f"feed done after {self.result.kills} kills; waiting for the outbox to settle")
        self._wait(self._settled, "the outbox to settle")
        codes = [worker.stop() for worker in self.workers]
        self.result.exit_code = next((c for c in codes if c != 0), 0)
        self.say(f"Herald stopped with SIGTERM, exit code(s) {codes}")
        self._tally()

    def _database(self) -> str:
        if self.opts.database == "throwaway":
            server = self.stack.enter_context(cluster("herald"))
            if server is None:
                raise RuntimeError("--database throwaway: no PostgreSQL server binaries found")
            return server.url("herald")
        return self.opts.database or f"sqlite:///{self.dir / 'herald.db'}"

    def _shown(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.outbox.url)   # no password in the note

    def _write_config(self) -> None:
        # JSON is YAML: the accounts as the fakes describe them, one per platform.
        accounts = [{"name": account_name(name), **p.account(self.fakes[name].url), **ACCOUNT,
                     "read_timeout": self.opts.read_timeout}
                    for name, p in self.platforms.items()]
        feeds = [{"name": name, "url": self.feed.url(name), "every": f"{EVERY}s", "backfill": 0,
                  "fetch_article": "never"} for name in self.feed.names]
        route = {"feeds": self.feed.names, "accounts": [a["name"] for a in accounts]}
        workers = {"workers": WORKERS} if self.opts.workers > 1 else {}
        config = {"version": 1, "database": self.outbox.url, **CONFIG, "feeds": feeds,
                  "accounts": accounts, "routes": [route], **workers}
        (self.dir / "herald.yaml").write_text(json.dumps(config, indent=1))

    def _drip(self) -> None:
        """Publish the articles a few at a time, every second or two."""
        published = 0
        while published < self.articles and time.monotonic() < self.deadline:
            n = min(self.feed_rng.randint(1, 4), self.articles - published)
            self.feed.add(n)
            published += n
            time.sleep(self.feed_rng.uniform(1.0, 2.0))

    def _kill_while(self, feeding) -> None:
        """SIGKILL and restart a worker at random moments, at least ``--kills``
        times and for as long as the feed publishes."""
        while self.result.kills < self.opts.kills or feeding():
            self._check_time("the kill loop")
            self._until(lambda: all(w.ready() for w in self.workers), 20.0)   # not at start-up
            time.sleep(self.rng.uniform(0.5, 3.5))
            aimed = self.rng.random() < 0.5
            if aimed:
                self._until(lambda: self.outbox.sending() > 0, 3.0)   # aim at a send in flight
            victim = self._victim(aimed)
            victim.kill()
            self.result.kills += 1
            self.result.kills_mid_send += victim.pid in self.outbox.senders()
            time.sleep(self.rng.uniform(0.0, 1.0))
            victim.start()

    def _victim(self, aimed: bool) -> Worker:
        """The worker sending a post when aimed and one is, else one at random."""
        sending = set(self.outbox.senders()) if aimed else set()
        hit = [w for w in self.workers if w.pid in sending]
        return hit[0] if hit else self.victim_rng.choice(self.workers)

    def _settled(self) -> bool:
        counts = self.outbox.counts()
        return (sum(counts.values()) >= self.articles * len(self.platforms)
                and counts["pending"] == 0 and counts["sending"] == 0)

    def _wait(self, done, what: str) -> None:
        while not done():
            self._check_time(what)
            time.sleep(0.2)

    def _check_workers(self) -> None:
        """A worker that exited on its own (not killed here) ends the run."""
        for worker in self.workers:
            if worker.proc and worker.proc.poll() is not None:
                raise RuntimeError(f"{worker.log.name} exited with code {worker.proc.returncode}: "
                                   f"{worker.text()[-1500:]}")

    def _until(self, done, seconds: float) -> None:
        end_at = time.monotonic() + seconds
        while time.monotonic() < end_at and not done():
            time.sleep(0.01)

    def _check_time(self, what: str) -> None:
        self._check_workers()
        if time.monotonic() > self.deadline:
            raise TimedOut(f"{self.opts.timeout:.0f}s passed while waiting for {what}; "
                           f"outbox {dict(self.outbox.counts())}")

    def _tally(self) -> None:
        """Count at each fake (faults come in at clean-up, once its log is complete)."""
        links = [self.feed.link(n) for n in range(self.articles)]
        for name, fake in self.fakes.items():
            self.result.platforms[name] = tally(fake.posts(), links, Counter())
        self.result.failed_rows = self.outbox.failed()

    def _clean_up(self) -> None:
        if self.polls_from:
            self.result.polls = self.feed.polls(self.polls_from, time.monotonic())
        for worker in self.workers:
            worker.stop(grace=5.0)
        for name, fake in self.fakes.items():
            fake.stop()
            self.result.platforms.setdefault(name, Tally()).faults.update(fake.faults())
        self.feed.stop()
        for worker in self.workers:
            self.result.herald_log.update(_herald_events(worker.log))
        if self.outbox:
            self.outbox.close()
        self.stack.close()     # a throwaway cluster goes here
        if self.opts.keep or not self.result.ok:
            self.say(f"kept {self.dir} (config, herald*.log, fake-*.jsonl"
                     + (", herald.db)" if self.outbox and self.outbox.file else ")"))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


EVENTS = {"post sent": "post sent: ", "found after restart": "found on the platform after a restart",
          "released after restart": "not on the platform after a restart",
          "found before resend": "was already on the platform",
          "duplicate answer": "was already posted; recorded as sent",
          "reconcile failed": "cannot check post", "retries": "failed (",
          "rate limited": "rate limited until", "started": READY}


def _herald_events(log: Path) -> Counter:
    counts: Counter = Counter()
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            counts.update(name for name, needle in EVENTS.items() if needle in line)
    return counts


COLUMNS = ("pairs", "once", "lost", "duplicates", "strays", "refused", "malformed", "5xx", "429",
           "slow")


def _row(name: str, t: Tally) -> list:
    return [name, t.pairs, t.once, len(t.lost), len(t.duplicates), len(t.strays),
            t.faults["refused"], t.faults["malformed"], t.faults["5xx"], t.faults["429"],
            t.faults["slow-accept"]]


def table(r: Result) -> str:
    """The per-platform figures as a Markdown table, with a total row."""
    total = Tally(pairs=r.pairs, once=r.once, faults=r.faults,
                  lost=[n for n, _ in r.lost], duplicates=[(n, c) for n, _, c in r.duplicates],
                  strays=[s for t in r.platforms.values() for s in t.strays])
    rows = [_row(name, t) for name, t in r.platforms.items()] + [_row("total", total)]
    lines = ["| platform | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def report(r: Result, command: str, out=sys.stdout) -> None:
    """Print the figures of a run."""
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"command:            {command}")
    p(table(r))
    p("  (once: posted exactly once; strays: accepted posts with no link of this run;")
    p("   refused: posting requests the platform refused on its own, i.e. a re-send of a")
    p("   post it had; malformed: posting requests answered 400/422, as a post cut short by")
    p("   a SIGKILL is; 5xx/429/slow: faults injected; slow = recorded, answered late)")
    for name, t in r.platforms.items():
        if t.lost or t.duplicates or t.strays:
            p(f"{name}: lost articles {t.lost[:10]}, duplicated (article, copies) "
              f"{t.duplicates[:10]}, strays {t.strays[:5]}")
    p(f"kills:              {r.kills} (a post left in 'sending': {r.kills_mid_send})"
      + (f", spread over {r.workers} workers" if r.workers > 1 else ""))
    if r.polls:
        p(polls_note(r.polls))
    p("herald log:         " + ", ".join(f"{k} {r.herald_log[k]}" for k in EVENTS))
    if r.failed_rows:
        p(f"failed rows:        {r.failed_rows[:10]}")
    if r.unsettled:
        p(f"still queued:       {r.unsettled[:10]}")
    p(f"SIGTERM exit code:  {r.exit_code}")
    p(f"time:               {r.seconds:.1f}s")
    if r.error:
        p(f"error:              {r.error}")
    p("verdict:            " + ("OK" if r.ok else "FAILED"))


def polls_note(polls: Polls) -> str:
    """How often each feed was polled per interval, as two lines."""
    shown = ", ".join(f"{k} polls: {polls.per_interval[k]}" for k in sorted(polls.per_interval))
    totals = sorted(polls.per_feed.values())
    return (f"polls per feed per {polls.every:g} s interval: {shown} (feed-intervals; "
            f"mean {polls.mean:.2f}, 1.00 is right)\n"
            f"polls per feed:     {totals[0]}-{totals[-1]} over {polls.seconds:.0f} s "
            f"({polls.intervals} intervals each, {len(totals)} feeds)")


def parse(argv: list[str] | None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--platforms", type=_names, default=d.platforms,
                   help=f"comma-separated, default all: {','.join(platforms())}")
    p.add_argument("--pairs", type=int, default=d.pairs, help="articles x platforms, at least")
    p.add_argument("--kills", type=int, default=d.kills, help="SIGKILLs, at least")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    p.add_argument("--fail-5xx", type=float, default=d.fail_5xx)
    p.add_argument("--rate-limit", type=float, default=d.rate_limit)
    p.add_argument("--fb-rate-limit", type=float, default=d.fb_rate_limit,
                   help="429 share on Graph, whose pauses last a minute or more")
    p.add_argument("--slow-accept", type=float, default=d.slow_accept)
    p.add_argument("--reset-seconds", type=int, default=d.reset_seconds)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (db, logs)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="run workers sharing the database (several: PostgreSQL only)")
    p.add_argument("--database", default=d.database,
                   help="a SQLAlchemy URL of an empty database, or 'throwaway' for a PostgreSQL "
                        "cluster of the run's own (default: SQLite in the run's folder)")
    p.add_argument("--feeds", type=int, default=d.feeds,
                   help="feeds the articles are spread over (default 1, or 2 per worker)")
    opts = Options(**vars(p.parse_args(argv)))
    if opts.workers < 1 or opts.feeds < 0:
        p.error("--workers must be at least 1 and --feeds at least 0")
    if opts.workers > 1 and (opts.database or "sqlite").startswith("sqlite"):
        p.error("several workers share one PostgreSQL database: give --database "
                "postgresql+psycopg://... or --database throwaway (SQLite allows one)")
    return opts


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        platforms(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def main(argv: list[str] | None = None) -> int:
    """Run the chaos test; 0 only if no pair was lost or doubled over ``--pairs`` pairs."""
    opts = parse(argv)
    # SIGTERM to this script still cleans up its children (finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = Chaos(opts).run()
    report(result, "bench/chaos.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0 if result.ok and result.pairs >= opts.pairs else 1


if __name__ == "__main__":
    sys.exit(main())
