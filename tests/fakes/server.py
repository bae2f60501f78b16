"""A fake platform server on one 127.0.0.1 port, speaking every platform whose
fake module declares itself (X API v2, Graph API, Mastodon REST, Bluesky XRPC, ...).

It speaks the real request and answer shapes, checks each platform's credentials,
records every accepted post, and can be scripted per test
(``fake.script("429", reset=...)``) or run standalone for chaos tests::

    python -m tests.fakes.server --port 0 --fail-5xx 0.2 --rate-limit 0.05 \
        --slow-accept 0.05 --slow-seconds 3 --seed 1 --log /tmp/fake.jsonl

Standalone, it prints its port on one line when ready and serves
``GET /_fake/posts`` (JSON list of accepted posts) until SIGTERM or SIGINT.

Adding a platform: write ``tests/fakes/<name>_api.py`` (any module here whose
name ends in ``_api``); nothing in this file changes. The module exports

    FAKE = FakePlatform(...)          # from .shapes

with these fields (``shapes.FakePlatform`` and ``shapes.Contract`` document each):

- ``name``: the adapter's ``platform``, as the registry in ``bot.adapters`` knows it.
- ``api``: a ``shapes.Api`` subclass with ``authenticate() -> Reply | None``,
  ``route() -> Reply`` and ``fault(answer) -> Reply``. It reads its accounts from
  ``self.state``, records accepted posts with ``self.fake.record({...})`` (keys
  "platform", "account", "text", "link", "id", plus whatever ``has_image`` reads)
  and lists them with ``self.fake.posts_of(key, value)`` (newest first; ``at`` is
  epoch seconds, from the server's clock). Ids come from ``self.fake.next_id()``.
- ``claims(request) -> bool``: this request is the platform's (by path prefix, say
  ``/api/`` or ``/xrpc/``); the first platform that claims a request answers it.
- ``seed(fake, state, count, at, text)``: record ``count`` posts by the default
  account made at ``at`` (``text`` + " n"), without requests, for paging tests.
- ``state()``: builds this server's accounts (the default one the contract's
  credentials name, and methods to add more); ``fake.states[name]`` holds it.
- ``posting``: path suffixes of the posting requests (where chaos may accept slowly).
- ``contract``: a ``shapes.Contract``; the platform then runs in
  tests/test_adapter_contract.py. Its ``fault(answer)`` must answer each kind in
  ``contract.faults`` (at least ``shapes.COMMON_FAULTS``: "401", "500", "503",
  "400"; "502" and the odd shapes are shared), "429" with ``reset=`` (epoch) and
  ``regain=`` (minutes) giving ``contract.until``, ``image_refusal`` under
  ``image_path``, "hang", "slow-accept" and "trickle" (shared by ``Api``).
- ``account(url) -> dict`` and ``env``: an account mapping for a config (credentials
  as ``${VARS}`` named in ``env``), for tests/test_platforms_e2e.py.
- ``flags(parser)`` / ``configure(state, args)``: optional standalone flags.

``platforms()`` returns them by name.
"""
from __future__ import annotations

import argparse
import importlib
import itertools
import json
import pkgutil
import random
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from .shapes import Answer, Chaos, FakePlatform, Reply, Request

_PLATFORMS: dict[str, FakePlatform] = {}


def platforms() -> dict[str, FakePlatform]:
    """Every platform fake in this package (modules named ``*_api``), by name."""
    if not _PLATFORMS:
        for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])):
            if module.endswith("_api"):
                fake = importlib.import_module(f".{module}", __package__).FAKE
                _PLATFORMS[fake.name] = fake
    return dict(_PLATFORMS)


class FakeApi:
    """The fake server. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, *, port: int = 0, hang_seconds: float = 3.0, chaos: Chaos | None = None,
                 log_file: str | None = None, clock: Callable[[], datetime] | None = None):
        # When each post was accepted (its created_at / created_time); tests pass a clock.
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.platforms = platforms()
        self.states = {name: p.state() for name, p in self.platforms.items()}
        self._posting = tuple(s for p in self.platforms.values() for s in p.posting)
        self.hang_seconds = hang_seconds
        self.chaos = chaos or Chaos()
        self.posts: list[dict] = []
        self.requests: list[dict] = []
        self.media: dict[str, int] = {}
        self._rng = random.Random(self.chaos.seed)
        self._script: deque[Answer] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._log = open(log_file, "a", encoding="utf-8") if log_file else None
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    # --- lifecycle

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeApi:
        # A short poll interval keeps stop() (and each test's teardown) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()          # releases hanging answers at once
        self._server.shutdown()
        self._server.server_close()
        if self._log:
            self._log.close()

    def __enter__(self) -> FakeApi:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- scripting

    def script(self, *kinds: str, path: str | None = None, **params) -> None:
        """Queue fault answers for the next requests (under ``path`` when given).

        Kinds: "500", "503", "502" (HTML, not JSON), "429" (``reset=`` epoch for X or None,
        ``regain=`` minutes for Graph), "401", "400", "403", "403-duplicate",
        "403-permissions", "403-tier", "402-credits", "429-usage-capped" (``headers=``) (X),
        "200-no-id", "graph-<code>" (``subcode=``), "hang" (``seconds=``),
        "slow-accept" (``seconds=``: recorded, answered late), "trickle" (``seconds=``:
        recorded, its answer sent a byte at a time), and the odd shapes of
        ``shapes.raw_reply`` ("raw", "401-list", "429-retry-after", "200-html", "empty",
        "cut"). ``message=`` overrides the platform message."""
        with self._lock:
            self._script.extend(Answer(kind, path, dict(params)) for kind in kinds)

    def next_fault(self, path: str) -> Answer | None:
        with self._lock:
            for answer in self._script:
                if answer.path is None or answer.path in path:
                    self._script.remove(answer)
                    return answer
            return self._chaos_fault(path)

    def _chaos_fault(self, path: str) -> Answer | None:
        c, roll = self.chaos, self._rng.random()
        if roll < c.fail_5xx:
            return Answer(self._rng.choice(("500", "502", "503")))
        if roll < c.fail_5xx + c.rate_limit:
            return Answer("429", params={"reset": int(time.time()) + c.reset_seconds,
                                         "regain": max(1, c.reset_seconds // 60)})
        if roll < c.fail_5xx + c.rate_limit + c.slow_accept and path.endswith(self._posting):
            return Answer("slow-accept", params={"seconds": c.slow_seconds})
        return None

    def next_id(self) -> str:
        with self._lock:
            return str(1_860_000_000_000_000_000 + next(self._ids))

    # --- dispatch

    def handle(self, req: Request) -> Reply:
        if req.path == "/_fake/posts":
            with self._lock:
                return Reply(200, list(self.posts))
        with self._lock:
            self.requests.append({"method": req.method, "path": req.path, "query": req.query,
                                  "headers": dict(req.headers)})
        platform = next((p for p in self.platforms.values() if p.claims(req)), None)
        if platform is None:
            return Reply(404, {"error": f"no fake platform serves {req.path}"})
        return platform.api(self, req, self.states[platform.name]).answer()

    def record(self, post: dict) -> None:
        """Keep an accepted post; ``at`` (epoch seconds) is when it was created."""
        post.setdefault("at", self.clock().timestamp())
        with self._lock:
            self.posts.append(post)

    def seed(self, platform: str, count: int, at: datetime, text: str = "Older story") -> None:
        """Record ``count`` posts the platform's default account made at ``at``
        (to fill a timeline without as many requests)."""
        self.platforms[platform].seed(self, self.states[platform], count, at, text)

    def posts_of(self, key: str, value: str) -> list[dict]:
        """Posts whose ``key`` is ``value``, newest first, as timelines list them."""
        with self._lock:
            mine = [p for p in self.posts if p.get(key) == value]
        return sorted(mine[::-1], key=lambda p: p["at"], reverse=True)   # ties: newest first

    def hang(self, seconds: float) -> bool:
        """Wait ``seconds``, less when the fake stops; True when it is stopping."""
        return self._stopping.wait(seconds)

    def log(self, req: Request, reply: Reply) -> None:
        if self._log and not self._log.closed:
            line = {"t": round(time.time(), 3), "method": req.method, "path": req.path,
                    "status": reply.status, "fault": reply.fault}
            with self._lock:
                self._log.write(json.dumps(line) + "\n")
                self._log.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False      # hanging answers must not hold up stop()
    fake: FakeApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        # Headers and body go out in separate writes; with Nagle on, each answer
        # waited ~40 ms for a delayed ACK.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_GET

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:   # the client died mid-request: a real server never handles it
            self.close_connection = True
            return
        req = Request(self.command, split.path, dict(parse_qsl(split.query)),
                       {k.lower(): v for k, v in self.headers.items()}, body,
                       self.headers.get("Host", ""))
        fake = self.server.fake
        reply = fake.handle(req)
        fake.log(req, reply)
        if reply.delay:
            fake.hang(reply.delay)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        data, kind = reply.encoded()
        # Odd answers close the connection: a body the client did not expect
        # (after a 204, say) must not be read as the next answer.
        closing = reply.raw is not None or reply.cut is not None or not reply.length
        try:
            self.send_response(reply.status)
            if kind:
                self.send_header("Content-Type", kind)
            if reply.length:
                self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if closing:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self._write(data if reply.cut is None else data[:reply.cut], reply.trickle)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the client gave up (a timeout test); nothing to tell it

    def _write(self, data: bytes, trickle: float) -> None:
        if not trickle:
            self.wfile.write(data)
            return
        fake = self.server.fake
        for n in range(len(data)):
            self.wfile.write(data[n:n + 1])
            if fake.hang(trickle):
                return

    def log_message(self, format, *args) -> None:
        pass        # tests read fake.requests; stderr stays quiet


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-5xx", type=float, default=0.0)
    p.add_argument("--rate-limit", type=float, default=0.0)
    p.add_argument("--slow-accept", type=float, default=0.0)
    p.add_argument("--slow-seconds", type=float, default=3.0)
    p.add_argument("--reset-seconds", type=int, default=60)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--log", default=None)
    for platform in platforms().values():
        if platform.flags:
            platform.flags(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the fake standalone; print the port when ready; stop on SIGTERM/SIGINT."""
    a = _arguments(argv)
    chaos = Chaos(a.fail_5xx, a.rate_limit, a.slow_accept, a.slow_seconds, a.reset_seconds, a.seed)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with FakeApi(port=a.port, chaos=chaos, log_file=a.log) as fake:
        for name, platform in fake.platforms.items():
            if platform.configure:
                platform.configure(fake.states[name], a)
        print(fake.port, flush=True)
        done.wait()


if __name__ == "__main__":
    main()
