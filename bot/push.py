"""Push: the ways a newsroom tells Herald "this feed changed, look now".

``POST /ping/<feed>`` for CMS webhooks (a per-feed token), and the WebSub
callback of bot.websub. Both end in ``poll_now(feed)`` through one ``Gate``
per service, which lets at most one poll start per feed per ``gap``: a flood
of pings costs one poll a second, and a ping inside the gap is never lost (a
poll follows it at the gap's end, so an item published just after the
previous poll's fetch is still seen at once).
"""
from __future__ import annotations

import contextlib
import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bot.listener import TEXT, Handler, Request, Response
from bot.secret import Secret
from bot.websub import ClientPost, WebSub

log = logging.getLogger(__name__)
GAP = 1.0    # seconds between two polls a push starts for one feed
Feeds = Mapping[str, Secret | None]


class Gate:
    """Coalesces poll requests per feed: the first in a ``gap`` passes at
    once, later ones become one poll at the gap's end. ``later(delay, fn)``
    runs ``fn`` after ``delay`` seconds (a daemon timer by default)."""

    def __init__(self, poll_now: Callable[[str], bool], *, gap: float = GAP,
                 monotonic: Callable[[], float] = time.monotonic,
                 later: Callable[[float, Callable[[], None]], None] | None = None):
        self.poll_now, self.gap, self.monotonic = poll_now, gap, monotonic
        self.later = later if later is not None else _timer
        self.last: dict[str, float] = {}
        self.waiting: set[str] = set()
        self.lock = threading.Lock()

    def ask(self, feed: str) -> bool:
        """Ask for a poll of ``feed``; False when the service has no such feed
        (known only when the poll is asked at once: a deferred one says True)."""
        with self.lock:
            if feed in self.waiting:
                return True        # a poll after this ping is already set
            wait = self.last.get(feed, -self.gap) + self.gap - self.monotonic()
            if wait > 0:
                self.waiting.add(feed)
            else:
                self.last[feed] = self.monotonic()
        if wait > 0:
            self.later(wait, lambda: self._fire(feed))
            return True
        return self.poll_now(feed)

    def _fire(self, feed: str) -> None:
        with self.lock:
            self.waiting.discard(feed)
            self.last[feed] = self.monotonic()
        try:
            self.poll_now(feed)
        except Exception:   # a timer thread has nobody to raise to
            log.exception("feed %s: asking for a poll failed", feed, extra={"feed": feed})


def _timer(delay: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()


def ping_routes(feeds: Feeds | Callable[[], Feeds], poll_now: Callable[[str], bool]) -> dict[str, Handler]:
    """``POST /ping/<feed>``: 202 when a poll was asked; 404 for an unknown
    feed and for a feed without ``ping_token`` (never open); 401 without a
    token, 403 with a wrong one. The token comes as ``Authorization: Bearer
    <token>`` or ``?token=``. ``feeds`` maps names to tokens, or is a callable
    giving that map now (a reload changes it); ``poll_now`` is best a Gate's ask."""
    current = feeds if callable(feeds) else (lambda: feeds)

    def handle(request: Request) -> Response:
        name = request.params.get("feed", "")
        token = current().get(name)
        if token is None or not token.reveal():
            return 404, TEXT, b"not found\n"
        given = presented(request)
        if given is None:
            return 401, TEXT, b"a token is needed\n", {"WWW-Authenticate": 'Bearer realm="herald"'}
        if not hmac.compare_digest(given.encode("utf-8", "replace"), token.reveal().encode("utf-8", "replace")):
            return 403, TEXT, b"wrong token\n"
        if not poll_now(name):
            return 404, TEXT, b"not found\n"
        log.debug("feed %s: pinged; polling now", name, extra={"feed": name})
        return 202, TEXT, b"polling\n"
    return {"POST /ping/<feed>": handle}


def presented(request: Request) -> str | None:
    """The token a ping carries: the bearer credentials, else ``?token=``."""
    scheme, _, credentials = (request.header("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    values = request.query.get("token") or []
    return values[0] if values and values[0] else None


def routes_for(config: Callable[[], object], poll_now: Callable[[str], bool],
               websub: WebSub | None) -> dict[str, Handler]:
    """Every push route for the listener. ``config()`` gives the running
    bot.config.Config (read at each ping, so a reload's tokens count);
    ``poll_now`` is the Gate's ``ask``; ``websub`` None: no WebSub routes."""
    tokens = per_config(config, lambda c: {f.name: f.ping_token for f in c.feeds})
    return {**ping_routes(tokens, poll_now), **(websub.routes() if websub else {})}


def per_config(config: Callable[[], object], derive: Callable[[object], object]) -> Callable[[], object]:
    """``derive(config())``, computed again only when ``config()`` is another
    object (a reload): at 10,000 feeds, not a scan of them all per request."""
    memo: list = [None, None]

    def current():
        now = config()
        if memo[0] is not now:
            memo[:] = [now, derive(now)]
        return memo[1]
    return current


def websub_for(config: Callable[[], object], poll_now: Callable[[str], bool], *,
               client_post: ClientPost, owns: Callable[[str], bool] = lambda feed: True,
               clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> WebSub | None:
    """The subscriber for ``config().public_url``, or None when it is not set.
    Only feeds with ``websub: true`` (the default) that this worker ``owns``
    (its lease: two workers subscribing one callback would overwrite each
    other's secret at the hub) are subscribed."""
    public_url = config().public_url
    if not public_url:
        return None

    subscribed = per_config(config, lambda c: frozenset(f.name for f in c.feeds if f.websub))

    def wanted(feed: str) -> bool:
        return feed in subscribed() and owns(feed)
    return WebSub(public_url, client_post, clock, poll_now, wanted=wanted)


RENEW_EVERY = 60.0   # seconds between two looks at the leases
QUEUED = 10_000      # polls' hub sightings waiting for the subscriber thread


@dataclass
class Push:
    """What the service wires: the routes, the subscriber (or None) and the
    gate. ``start()`` runs the subscriber's thread: the hub requests that
    ``seen`` queues, and renewals every ``every`` seconds, so a slow hub never
    holds a poll. ``stop()`` ends it and unsubscribes (call it while the
    listener still answers the hubs' checks)."""

    routes: dict[str, Handler]
    websub: WebSub | None
    gate: Gate
    sightings: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUED))
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def seen(self, feed: str, hub: str | None, topic: str | None) -> None:
        """After each poll of ``feed`` (FetchResult.hub, .topic): queued for
        the subscriber thread; never blocks or raises. A sighting dropped
        from a full queue comes again at the feed's next poll."""
        if self.websub is not None and hub and topic:
            with contextlib.suppress(queue.Full):
                self.sightings.put_nowait((feed, hub, topic))

    def start(self, every: float = RENEW_EVERY) -> None:
        if self.websub is None or self.thread is not None:
            return
        self.thread = threading.Thread(target=self._work, args=(every,), name="herald-websub", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
        if self.websub is not None:
            self._guarded(self.websub.unsubscribe_all)

    def _work(self, every: float) -> None:
        next_renewal = time.monotonic() + every
        while not self.stopping.is_set():
            try:
                sighting = self.sightings.get(timeout=max(0.0, min(1.0, next_renewal - time.monotonic())))
                self._guarded(self.websub.seen, *sighting)
            except queue.Empty:
                pass
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + every
                self._guarded(self.websub.renew)

    @staticmethod
    def _guarded(work: Callable, *args) -> None:
        try:
            work(*args)
        except Exception:   # a bug in one request must not end the thread or the stop
            log.exception("WebSub: subscribing or renewing failed")


def build(config: Callable[[], object], poll_now: Callable[[str], bool], *,
          client_post: ClientPost, owns: Callable[[str], bool] = lambda feed: True) -> Push:
    """One call for cli: a Gate over ``poll_now`` (Service.poll_now), the
    subscriber and every route, sharing that gate. ``client_post`` sends a
    hub its form (HttpClient.post_form: guarded). ``owns(feed)``: this
    worker holds the feed's lease (Leases.holds("feed", name))."""
    gate = Gate(poll_now)
    websub = websub_for(config, gate.ask, client_post=client_post, owns=owns)
    return Push(routes_for(config, gate.ask, websub), websub, gate)
