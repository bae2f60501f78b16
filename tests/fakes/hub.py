"""A WebSub hub on 127.0.0.1 for tests and benchmarks, speaking HTTP for real.

``POST /`` takes a subscriber's form (hub.mode, hub.topic, hub.callback,
hub.secret, hub.lease_seconds), answers 202 and then verifies the intent as
the spec says: a GET to the callback with hub.mode, hub.topic, a random
hub.challenge and hub.lease_seconds; the subscription counts only when the
answer is 2xx with the challenge as its body. ``publish(topic, body)`` then
POSTs ``body`` to every verified callback, signed ``X-Hub-Signature:
sha256=<hex HMAC>`` with its secret. ``refuse`` makes it answer 4xx to
subscription requests; ``verify_first`` verifies before it answers (some hubs do).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import requests


@dataclass
class Sub:
    callback: str
    topic: str
    secret: str | None
    lease_seconds: int


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.url`` is where to subscribe."""

    def __init__(self, *, lease_seconds: int | None = None, verify_first: bool = False,
                 algorithm: str = "sha256"):
        self.lease_seconds, self.verify_first, self.algorithm = lease_seconds, verify_first, algorithm
        self.refuse: int | None = None          # a status to answer subscription requests with
        self.subs: dict[tuple[str, str], Sub] = {}   # (callback, topic) -> verified sub
        self.requests: list[dict[str, str]] = []   # every form received, in order
        self.checks: list[tuple[str, int, str]] = []  # (mode, status, body) of each verification
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.hub = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- subscribers ---------------------------------------------------------

    def received(self, form: dict[str, str]) -> int:
        """A subscription request: the status to answer (verification follows)."""
        with self.changed:
            self.requests.append(form)
            self.changed.notify_all()
        if self.refuse:
            return self.refuse
        if form.get("hub.mode") not in ("subscribe", "unsubscribe") or not form.get("hub.callback"):
            return 400
        if self.verify_first:
            self.verify(form)
        else:
            threading.Thread(target=self.verify, args=(form,), daemon=True).start()
        return 202

    def verify(self, form: dict[str, str]) -> bool:
        """The verification of intent (§5.3) for one request; True when it held."""
        mode, topic, callback = form["hub.mode"], form.get("hub.topic", ""), form["hub.callback"]
        lease = self.lease_seconds or int(form.get("hub.lease_seconds") or 864000)
        challenge = secrets.token_urlsafe(24)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            query["hub.lease_seconds"] = str(lease)
        try:
            answer = requests.get(_with_query(callback, query), timeout=5)
            status, body = answer.status_code, answer.text
        except requests.RequestException:
            status, body = 0, ""
        held = 200 <= status < 300 and body == challenge
        with self.changed:
            self.checks.append((mode, status, body))
            if held and mode == "subscribe":
                self.subs[(callback, topic)] = Sub(callback, topic, form.get("hub.secret"), lease)
            elif held:
                self.subs.pop((callback, topic), None)
            self.changed.notify_all()
        return held

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(hub)`` holds (checked at every change)."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def deny(self, callback: str, topic: str, reason: str = "no") -> int:
        """The hub's denial (§5.2): a GET to ``callback``; its status."""
        query = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": reason}
        return requests.get(_with_query(callback, query), timeout=5).status_code

    # -- publishing ----------------------------------------------------------

    def publish(self, topic: str, body: bytes, *, secret: str | None = None,
                content_type: str = "application/rss+xml") -> list[int]:
        """Deliver ``body`` to every verified subscriber of ``topic``, signed with
        its secret (or ``secret``, to sign wrongly); the statuses answered."""
        with self.lock:
            subs = [s for s in self.subs.values() if s.topic == topic]
        statuses = []
        for sub in subs:
            headers = {"Content-Type": content_type,
                       "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"'}
            key = secret if secret is not None else sub.secret
            if key is not None:
                mac = hmac.new(key.encode(), body, getattr(hashlib, self.algorithm)).hexdigest()
                headers["X-Hub-Signature"] = f"{self.algorithm}={mac}"
            statuses.append(requests.post(sub.callback, data=body, headers=headers, timeout=5).status_code)
        return statuses


def _with_query(url: str, query: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(query)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        status = self.server.hub.received(form)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass
