"""Several Herald workers on one database, and the feeds they poll.

Shared by tests/test_workers.py, ``bench/chaos.py --workers`` and bench/scaleout.py:

- ``FeedFarm``: many feeds on one 127.0.0.1 port (``/feeds/<name>.xml``), every
  request logged with its time, so polls are counted where they arrive;
- ``Worker``: one ``run_bot.py --config CFG run`` process, restartable, its
  stderr in a log file of its own;
- ``write_config``: a config for the workers (JSON is YAML);
- ``held``: who holds which lease, read from the database the workers share;
- ``cpu_seconds``: a process's CPU time from /proc/<pid>/stat.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
READY = "Herald running"     # what Herald logs once its scheduler started
PREFIX = "/feeds/"


# -- the feeds ---------------------------------------------------------------------

class FeedFarm:
    """RSS feeds on one local port, each rendered by ``render(name)`` on every
    request (default: the items given to ``add``). Answers carry no validators,
    so each poll is a full fetch that Herald logs ("feed NAME: polled")."""

    def __init__(self, render: Callable[[str], bytes] | None = None):
        self.render = render or self._rss
        self.items: dict[str, list[tuple[int, datetime]]] = {}
        self.log: list[tuple[float, str]] = []     # (time.monotonic(), feed name)
        self.lock = threading.Lock()
        self.server = _FarmServer(("127.0.0.1", 0), _FarmHandler)
        self.server.farm = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}{name}.xml"

    def start(self) -> FeedFarm:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():     # shutdown() waits for a loop that never ran
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FeedFarm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add(self, name: str, count: int = 1) -> None:
        """Publish ``count`` new items on feed ``name`` (dated now)."""
        with self.lock:
            items = self.items.setdefault(name, [])
            items += [(len(items) + i, datetime.now(timezone.utc)) for i in range(count)]

    def polls(self, since: float = 0.0, until: float = float("inf")) -> Counter:
        """Requests per feed between two ``time.monotonic()`` readings."""
        with self.lock:
            return Counter(name for at, name in self.log if since <= at < until)

    def times(self, name: str) -> list[float]:
        with self.lock:
            return [at for at, feed in self.log if feed == name]

    def served(self, name: str) -> bytes:
        with self.lock:
            self.log.append((time.monotonic(), name))
        return self.render(name)

    def _rss(self, name: str) -> bytes:
        with self.lock:
            items = list(reversed(self.items.get(name, [])))
        body = "".join(item(f"https://news.example.org/{name}/story-{n}",
                             f"Story {n} of {name}: the council votes", when)
                       for n, when in items)
        return rss(f"News of {name}", body)


def rss(title: str, items: str) -> bytes:
    """An RSS 2.0 document around ``items`` (already XML)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{escape(title)}</title><link>https://news.example.org/</link>"
            f"<description>Stories for a test</description>{items}</channel></rss>").encode()


def item(link: str, title: str, when: datetime) -> str:
    """An RSS item linking ``link``."""
    lead = f"{title}, after a long debate on the harbour plan that lasted well into the night."
    return (f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
            f'<guid isPermaLink="true">{escape(link)}</guid>'
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{escape(lead)}</description></item>")


class _FarmServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    farm: FeedFarm

    def handle_error(self, request, client_address) -> None:
        pass    # a worker killed mid-fetch resets its connection: expected here


class _FarmHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive: a poll costs no new connection
    server: _FarmServer

    def do_GET(self) -> None:
        name = self.path.split("?")[0]
        if not (name.startswith(PREFIX) and name.endswith(".xml")):
            self.send_error(404)
            return
        data = self.server.farm.served(name[len(PREFIX):-len(".xml")])
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass


# -- the workers -------------------------------------------------------------------

class Worker:
    """``run_bot.py --config CFG run``, restartable; stdout and stderr appended
    to ``log``."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None):
        self.config, self.log = config, log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> Worker:
        self.starts += 1
        with open(self.log, "a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "run_bot.py"), "--config", str(self.config), "run"],
                cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """True once this start of the worker logged that its jobs run."""
        return self.text().count(READY) >= self.starts

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM; the exit code, or None if it had to be killed."""
        return end(self.proc, signal.SIGTERM, grace)


def end(proc: subprocess.Popen | None, sig: int, grace: float = 10.0) -> int | None:
    """Signal ``proc`` and wait; SIGKILL after ``grace`` seconds. None if killed."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(sig)
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def wait_for(done: Callable[[], object], seconds: float, what: str, step: float = 0.1,
             detail: Callable[[], str] | None = None):
    """``done()``'s first true value within ``seconds``; AssertionError naming
    ``what`` otherwise, followed by ``detail()``."""
    end_at = time.monotonic() + seconds
    while True:
        value = done()
        if value:
            return value
        if time.monotonic() > end_at:
            raise AssertionError(f"{what}: not within {seconds:g} s"
                                 + (f"\n{detail()}" if detail else ""))
        time.sleep(step)


def write_config(path: Path, database: str, feeds: list[dict], accounts: list[dict],
                 routes: list[dict], **top) -> Path:
    """A config for workers on ``database``; ``top`` adds or overrides settings
    (``workers={"heartbeat": "1s", "takeover_after": "4s"}``)."""
    config = {"version": 1, "database": database, "log_level": "INFO", "publish_every": "1s",
              "http": {"connect_timeout": 2, "read_timeout": 5, "deadline": 10},
              "feeds": feeds, "accounts": accounts, "routes": routes, **top}
    path.write_text(json.dumps(config, indent=1))
    return path


def run_bot(config: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``run_bot.py --config CFG ARGS...`` to the end, its output captured."""
    return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config),
                           *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def status(config: Path, env: dict[str, str] | None = None) -> dict:
    """``run_bot.py status --json``, parsed (its exit code says health, not failure)."""
    done = run_bot(config, "status", "--json", env=env)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"status --json gave no JSON (exit {done.returncode}): "
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}") from None


# -- the database ------------------------------------------------------------------

class Leases:
    """Read-only looks at the leases the workers on one database hold. A
    lease runs while its holder's heartbeat is younger than ``ttl`` seconds
    (the config's ``workers.takeover_after``)."""

    def __init__(self, url: str, ttl: float):
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.ttl = ttl

    def rows(self) -> list[tuple[str, str, str | None, datetime | None]]:
        """(kind, name, holder, holder's last beat) of every lease row; none
        before the table exists."""
        try:
            with self.engine.connect() as conn:
                found = conn.execute(sa.text(
                    "SELECT kind, name, holder, beat_at FROM leases"
                    " LEFT JOIN workers ON workers.worker = leases.holder"))
                return [(k, n, h, _aware(b)) for k, n, h, b in found]
        except sa.exc.DBAPIError:
            return []

    def held(self) -> dict[tuple[str, str], str]:
        """(kind, name) -> holder, for the leases that run now."""
        alive = datetime.now(timezone.utc) - timedelta(seconds=self.ttl)
        return {(kind, name): holder for kind, name, holder, beat in self.rows()
                if holder and beat and beat >= alive}

    def by_pid(self) -> dict[int, set[tuple[str, str]]]:
        """What each worker process holds, by pid (ids are host:pid:start)."""
        found: dict[int, set[tuple[str, str]]] = {}
        for lease, holder in self.held().items():
            found.setdefault(pid_of(holder), set()).add(lease)
        return found

    def close(self) -> None:
        self.engine.dispose()


def pid_of(worker: str) -> int:
    """The pid in a worker id ``host:pid:start``."""
    return int(worker.rsplit(":", 2)[1])


def _aware(value):
    if isinstance(value, str):      # SQLite keeps text
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


# -- the processes -----------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()   # the name may hold spaces and ")"
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime, stime: fields 14 and 15

