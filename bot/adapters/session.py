"""The requests Session an HTTP adapter hands its platform library.

tweepy and facebook-sdk hard-code their hosts and send no timeout, and a read
timeout alone restarts with every byte: a server that trickles its body one
byte at a time would hold a publishing job for ever. ``PlatformSession``

- sends the library's host to the configured base URL;
- bounds each call by a total deadline: connect and read timeouts are capped
  by it, and the body is read chunk by chunk with every socket read bounded by
  the time left (as ``bot.http`` does for feeds), so the whole answer is in
  memory before the library looks at it;
- never follows a redirect (it could replay a POST elsewhere);
- turns network failures into Transient, and hands every complete answer to
  ``check`` (the adapter's error table) before the library sees it, so no
  library ever parses an error answer;
- lets its ``Gate`` stop a call before it starts (``Adapter.gated``).

Known limit: headers trickled byte by byte are bounded only per read, since
http.client reads them before the body's socket is within reach.
"""
from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
import urllib3

from bot.errors import HeraldError, Stopped, Transient
from bot.secret import mask

CHUNK = 64 * 1024
Check = Callable[[requests.Response], None]
PARSING = (ValueError, KeyError, TypeError, AttributeError)


def call_library(platform: str, library_errors: tuple[type[Exception], ...], method,
                 *args, **kwargs):
    """Call a platform library's ``method``; whatever it raises is one of Herald's errors.

    Error answers never reach the library (the session raises the table's
    verdict first), so anything else it raises is its reading of a success it
    did not expect (JSON sent as text/html, a field missing): the post may
    exist, which is Transient."""
    try:
        return method(*args, **kwargs)
    except HeraldError:
        raise
    except (*library_errors, requests.RequestException, *PARSING) as exc:
        raise Transient(mask(f"unexpected answer from {platform}: {type(exc).__name__}: {exc}")
                        ) from exc


@dataclass(frozen=True)
class Limits:
    """Seconds for connecting, for each read, and for the whole call; bytes for the body."""

    connect: float = 5.0
    read: float = 20.0
    deadline: float = 30.0
    max_bytes: int = 8_000_000

    @classmethod
    def of(cls, opts) -> Limits:
        """The limits in an adapter's options."""
        return cls(float(opts["connect_timeout"]), float(opts["read_timeout"]),
                   float(opts["deadline"]))


class Gate:
    """A check every call to the platform this thread starts must pass first
    (it raises ``Stopped`` to stop the call), and the block once on entry;
    none outside ``checked_by``.

    Why: a worker whose heartbeats fail looks dead to the others once its lease
    runs out, and the one that takes its account looks the post it had in
    flight up and, not finding it, sends it again. A publish therefore starts
    no call once its lease has run out, so its last call ends within one call
    (``Adapter.longest_call``) of that, and the taker waits as long before it
    looks."""

    def __init__(self) -> None:
        self._local = threading.local()   # a lookup from another thread is not gated

    @contextmanager
    def checked_by(self, check: Callable[[], None] | None) -> Iterator[None]:
        before = getattr(self._local, "check", None), getattr(self._local, "calls", 0)
        self._local.check, self._local.calls = check, 0
        try:
            self._check()
            yield
        finally:
            self._local.check, self._local.calls = before

    def __call__(self) -> None:
        """Before one call: the check, then count the call as started."""
        self._check()
        self._local.calls = getattr(self._local, "calls", 0) + 1

    def _check(self) -> None:
        check = getattr(self._local, "check", None)
        if check is None:
            return
        try:
            check()
        except Stopped as exc:
            exc.first = not getattr(self._local, "calls", 0)
            raise


class PlatformSession(requests.Session):
    """Sends ``library_host`` requests to ``base_url`` within ``limits``; see the module."""

    def __init__(self, library_host: str, base_url: str, limits: Limits, check: Check, *,
                 monotonic: Callable[[], float] = time.monotonic):
        super().__init__()
        self.library_host = library_host.rstrip("/")
        self.base_url = base_url.rstrip("/")
        self.limits = limits
        self.check = check
        self._monotonic = monotonic
        self.gate: Callable[[], None] = lambda: None

    def adopt(self, wiring: requests.Session | None, gate: Gate | None = None) -> PlatformSession:
        """Mount the wiring session's transports (retries, proxies) on this one,
        and pass every call through the adapter's ``gate``."""
        if wiring is not None:
            for prefix, transport in wiring.adapters.items():
                self.mount(prefix, transport)
        if gate is not None:
            self.gate = gate
        return self

    def request(self, method, url, *args, **kwargs):
        self.gate()
        if url.startswith(self.library_host):
            url = self.base_url + url[len(self.library_host):]
        start = self._monotonic()
        kwargs.update(stream=True, allow_redirects=False,
                      timeout=(min(self.limits.connect, self.limits.deadline),
                               min(self.limits.read, self.limits.deadline)))
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            raise Transient(self._reason(exc, start)) from exc
        self._read_body(response, start)
        self.check(response)
        return response

    # --- the body, within the deadline

    def _read_body(self, response: requests.Response, start: float) -> None:
        if response._content is not False:      # a transport that built its own body
            return
        chunks, total = [], 0
        try:
            while chunk := self._read_chunk(response, start):
                total += len(chunk)
                if total > self.limits.max_bytes:
                    raise Transient(f"answer larger than {self.limits.max_bytes} bytes")
                chunks.append(chunk)
        except Transient:
            response.close()        # drop the connection: its stream is mid-body
            raise
        # What requests does itself once a body is read: .content and .json() use it.
        response._content = b"".join(chunks)
        response._content_consumed = True

    def _read_chunk(self, response: requests.Response, start: float) -> bytes:
        left = self.limits.deadline - (self._monotonic() - start)
        if left <= 0:
            raise Transient(self._late())
        # The read timeout alone restarts with every byte; bound each read by the time left.
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(0.01, min(self.limits.read, left)))
        try:
            return response.raw.read1(CHUNK, decode_content=True)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise Transient(self._reason(exc, start)) from exc

    # --- reasons

    def _late(self) -> str:
        return f"no complete answer within {self.limits.deadline:g} s: outcome unknown"

    def _reason(self, exc: BaseException, start: float) -> str:
        # Reads are bounded by the time left: a timeout near the end is the deadline's.
        if self._monotonic() - start >= self.limits.deadline - 0.05:
            return self._late()
        if isinstance(exc, requests.ConnectTimeout):
            return f"connection timed out after {self.limits.connect:g} s"
        if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            return f"no answer within {self.limits.read:g} s: outcome unknown"
        return mask(f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"
