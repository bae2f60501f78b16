"""Push benchmark: from "this feed changed" to the post at the platform, in seconds.

The whole service path, for real: an RSS feed and its article pages on
127.0.0.1 (the feed names a WebSub hub, ``tests/fakes/hub.py``, run here), the
fake Mastodon (``tests.fakes.server``, a subprocess) and Herald itself
(``run_bot.py run``, a subprocess) with the feed at ``every: 10m`` and
``fetch_article: always``, so neither polling nor a missing page fetch can
explain the figures. Then ``--n`` times each:

- ping: publish an item, ``POST /ping/<feed>`` with the feed's token, and
  time until the fake platform has the post (page fetched, lead found);
- websub: publish an item and have the hub deliver a signed notification to
  Herald's callback; the same clock.

The floor, measured in the same run: what the path cannot avoid on the wire,
done with plain requests (GET the feed, GET the article page, POST the
status to the fake). Figures are p50/p95/max in ms and as ratios to the
floor's median. Target (issue 12): ping -> post p95 <= 2 s.

    .venv/bin/python bench/push.py [--n 30] [--gap 1.2] [--wait 20] [--keep] [--herald run_bot.py]

Needs the service wiring (bot/cli.py serving bot.push's routes and calling
WebSub.seen after polls); without it the run says which part is missing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakes.hub import FakeHub  # noqa: E402
from tests.fakes.mastodon_api import ENV, FAKE as MASTODON, MASTODON_TOKEN  # noqa: E402
from tests.fleet import end  # noqa: E402
from tests.postgres import free_port  # noqa: E402

FEED = "bench"
TOKEN = "bench-ping-token-0d1e2a"
READY = "Herald running"
CONFIG = """\
version: 1
database: sqlite:///{db}
log_level: INFO
publish_every: 10m
http_listen: 127.0.0.1:{port}
public_url: http://127.0.0.1:{port}
http: {{connect_timeout: 2, read_timeout: 5, deadline: 10, allow_hosts: [127.0.0.1]}}
feeds:
  - {{name: {feed}, url: "{url}", every: 10m, backfill: 0, fetch_article: always,
      ping_token: "${{HERALD_BENCH_PING}}"}}
accounts: [{account}]
routes: [{{feeds: [{feed}], accounts: [bench-mastodon]}}]
"""


# -- the newsroom: a feed naming a hub, and its article pages ---------------------------

class Newsroom:
    """``/feed.xml`` (newest first, with atom:link rel=hub and rel=self) and
    ``/story-<n>.html``, on 127.0.0.1."""

    def __init__(self, hub: str):
        self.hub, self.count, self.lock = hub, 0, threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _NewsHandler)
        self.server.daemon_threads = True
        self.server.newsroom = self
        self.started = datetime.now(timezone.utc)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def topic(self) -> str:
        return f"{self.base}/feed.xml"

    def link(self, n: int) -> str:
        return f"{self.base}/story-{n}.html"

    def publish(self) -> int:
        """Add one item; its number."""
        with self.lock:
            self.count += 1
            return self.count - 1

    def rss(self) -> bytes:
        with self.lock:
            numbers = range(self.count - 1, max(-1, self.count - 21), -1)   # the 20 newest
        items = "".join(
            f"<item><title>Bench story {n}: the harbour plan</title><link>{escape(self.link(n))}</link>"
            f"<guid isPermaLink=\"true\">{escape(self.link(n))}</guid>"
            f"<pubDate>{format_datetime(datetime.now(timezone.utc))}</pubDate></item>" for n in numbers)
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
                f'xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Bench news</title>'
                f"<link>{self.base}/</link><description>Stories</description>"
                f'<atom:link rel="hub" href="{escape(self.hub)}"/>'
                f'<atom:link rel="self" href="{escape(self.topic)}"/>{items}</channel></rss>').encode()

    def page(self, n: int) -> bytes:
        lead = (f"The council voted on story {n}'s harbour plan late on Tuesday after a debate "
                f"that ran well into the night, and the works start in the spring.")
        body = "".join(f"<p>Paragraph {i} of story {n} tells more about the plan, its cost and "
                       f"who pays for the new quay.</p>" for i in range(12))
        return (f"<!doctype html><html><head><title>Story {n}</title>"
                f'<meta property="og:description" content="{escape(lead)}"></head><body><article>'
                f"<h1>Bench story {n}: the harbour plan</h1><p>{escape(lead)}</p>{body}"
                f"</article></body></html>").encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _NewsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        room = self.server.newsroom
        if self.path.startswith("/feed.xml"):
            self._send(room.rss(), "application/rss+xml; charset=utf-8")
        elif self.path.startswith("/story-") and self.path[7:-5].isdigit():
            self._send(room.page(int(self.path[7:-5])), "text/html; charset=utf-8")
        else:
            self._send(b"not found", "text/plain", 404)

    def _send(self, body: bytes, kind: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


# -- subprocesses -----------------------------------------------------------------------

def start(args: list[str], log: Path, env: dict[str, str] | None = None,
          stdout=None) -> subprocess.Popen:
    with open(log, "a") as err:
        return subprocess.Popen(args, cwd=REPO, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                stdout=stdout or err, stderr=err, text=True)


def stop(proc: subprocess.Popen | None) -> int | None:
    """SIGTERM, then SIGKILL after 15 s; the exit code (None if killed)."""
    return end(proc, signal.SIGTERM, 15.0)


def wait_for(done, seconds: float, step: float = 0.01):
    """``done()``'s first true value within ``seconds``, else None."""
    end_at = time.monotonic() + seconds
    while time.monotonic() < end_at:
        value = done()
        if value:
            return value
        time.sleep(step)
    return None


# -- figures ----------------------------------------------------------------------------

@dataclass
class Series:
    name: str
    seconds: list[float] = field(default_factory=list)
    missed: int = 0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")

    def line(self, floor: float) -> str:
        p50, p95, top = self.quantile(0.5), self.quantile(0.95), max(self.seconds, default=float("nan"))
        return (f"{self.name:<8} n={len(self.seconds):<3} missed={self.missed:<2} p50 {p50 * 1000:7.0f} ms "
                f"({p50 / floor:5.1f}x)  p95 {p95 * 1000:7.0f} ms ({p95 / floor:5.1f}x)  "
                f"max {top * 1000:7.0f} ms")


# -- the run ----------------------------------------------------------------------------

class Bench:
    def __init__(self, opts: argparse.Namespace):
        self.opts = opts
        self.dir = Path(tempfile.mkdtemp(prefix="herald-push-"))
        self.hub = FakeHub().__enter__()
        self.room = Newsroom(self.hub.url)
        self.port = free_port()
        self.fake = self.herald = None
        self.fake_url = ""
        self.session = requests.Session()

    def run(self) -> int:
        try:
            return self._run()
        finally:
            print(f"Herald exit code: {stop(self.herald)}")
            modes = [form.get("hub.mode") for form in self.hub.requests]
            print(f"hub requests: {modes.count('subscribe')} subscribe, {modes.count('unsubscribe')} "
                  f"unsubscribe (one at stop expected)")
            stop(self.fake)
            self.room.stop()
            self.hub.__exit__()
            if self.opts.keep:
                print(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self) -> int:
        self._start_fake()
        self._start_herald()
        floor = self._floor()
        print(f"floor    GET feed + GET page + POST status: median {floor * 1000:.1f} ms")
        ping = self._series("ping", self._ping)
        print(ping.line(floor))
        websub = Series("websub")
        if self._subscribed():
            websub = self._series("websub", self._notify)
            print(websub.line(floor))
        else:
            print("websub   no verified subscription 30 s after the first poll: bot/cli.py must call "
                  "WebSub.seen(feed, result.hub, result.topic) after each poll and serve its routes")
        print(f"posts with the article page's lead: {self._with_leads()}")
        ok = ping.seconds and ping.quantile(0.95) <= 2.0 and not ping.missed
        print(f"target ping p95 <= 2000 ms: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1

    def _start_fake(self) -> None:
        self.fake = start([sys.executable, "-m", "tests.fakes.server", "--port", "0"], self.dir / "fake.log",
                          stdout=subprocess.PIPE)
        port = self.fake.stdout.readline().strip()
        if not port.isdigit():
            raise SystemExit(f"the fake platform did not start (see {self.dir / 'fake.log'})")
        self.fake_url = f"http://127.0.0.1:{port}"

    def _start_herald(self) -> None:
        account = {"name": "bench-mastodon", **MASTODON.account(self.fake_url), "template": "{title}: {lead} {url}"}
        config = self.dir / "herald.yaml"
        config.write_text(CONFIG.format(db=self.dir / "herald.db", port=self.port, feed=FEED, url=self.room.topic,
                                        account=json.dumps(account)))
        self.herald = start([sys.executable, self.opts.herald, "--config", str(config), "run"],
                            self.dir / "herald.log", {**ENV, "HERALD_BENCH_PING": TOKEN})
        log = self.dir / "herald.log"
        if not wait_for(lambda: READY in log.read_text(errors="replace"), 60, 0.1):
            raise SystemExit(f"Herald did not start in 60 s (see {log})")
        status = wait_for(lambda: self._try(lambda: self.session.post(self._ping_url(), timeout=5)), 10, 0.1)
        if status != 401:     # a tokenless ping: 401 once wired
            raise SystemExit(f"POST /ping/{FEED} is not served (answer {status}): bot/cli.py must put "
                             f"bot.push's routes on the listener")
        # The first poll primes the empty feed; an item it saw would be recorded, never posted.
        if not wait_for(self._primed, 60, 0.1):
            raise SystemExit(f"Herald did not poll the feed in 60 s (see {log})")

    def _primed(self) -> bool:
        try:
            with sqlite3.connect(f"file:{self.dir / 'herald.db'}?mode=ro", uri=True, timeout=5) as db:
                return bool(db.execute("SELECT 1 FROM feed_state WHERE primed_at IS NOT NULL").fetchall())
        except sqlite3.Error:    # not created yet
            return False

    def _ping_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping/{FEED}"

    @staticmethod
    def _try(call) -> int | None:
        """The status ``call()`` got, None when it could not connect."""
        try:
            return call().status_code
        except requests.RequestException:
            return None

    def _floor(self) -> float:
        times = []
        for n in range(max(5, self.opts.n // 3)):
            started = time.perf_counter()
            self.session.get(self.room.topic, timeout=5).raise_for_status()
            self.session.get(self.room.link(10_000 + n), timeout=5).raise_for_status()
            self.session.post(f"{self.fake_url}/api/v1/statuses", data={"status": f"floor {n}"},
                              headers={"Authorization": f"Bearer {MASTODON_TOKEN}"}, timeout=5).raise_for_status()
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    def _series(self, name: str, push) -> Series:
        series = Series(name)
        for _ in range(self.opts.n):
            n = self.room.publish()
            started = time.perf_counter()
            push()
            if wait_for(lambda: self._posted(self.room.link(n)), self.opts.wait):
                series.seconds.append(time.perf_counter() - started)
            else:
                series.missed += 1
            time.sleep(max(0.0, self.opts.gap - (time.perf_counter() - started)))
        return series

    def _ping(self) -> None:
        answer = self.session.post(self._ping_url(), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        if answer.status_code != 202:
            raise SystemExit(f"the ping was answered {answer.status_code}")

    def _notify(self) -> None:
        statuses = self.hub.publish(self.room.topic, self.room.rss())
        if not statuses or any(not 200 <= s < 300 for s in statuses):
            raise SystemExit(f"Herald answered the notification {statuses}")

    def _posted(self, link: str) -> bool:
        return any(link in text for text in self._texts())

    def _texts(self) -> list[str]:
        return [p.get("text") or "" for p in self.session.get(f"{self.fake_url}/_fake/posts", timeout=5).json()]

    def _with_leads(self) -> str:
        """How many posts carry the lead only the article page has (og:description)."""
        texts = [t for t in self._texts() if "/story-" in t]
        return f"{sum('council voted' in t for t in texts)}/{len(texts)}"

    def _subscribed(self) -> bool:
        return self.hub.wait_for(lambda hub: any(s.topic == self.room.topic for s in hub.subs.values()), 30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30, help="pushes of each kind")
    p.add_argument("--gap", type=float, default=1.2, help="seconds from one push to the next, at least")
    p.add_argument("--wait", type=float, default=20.0, help="seconds to wait for a post before it counts missed")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (config, db, logs)")
    p.add_argument("--herald", default=str(REPO / "run_bot.py"), help="the entry point to start")
    opts = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"command: bench/push.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    return Bench(opts).run()


if __name__ == "__main__":
    sys.exit(main())
