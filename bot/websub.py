"""The WebSub subscriber (W3C Recommendation, 2018): hear from a feed's hub
the moment it publishes, and poll that feed at once.

Per feed that advertises a hub (``seen`` after each poll) Herald asks the hub
to call ``<public_url>/websub/<feed>``. The hub checks Herald's intent with a
GET carrying ``hub.challenge``, echoed only for a subscription Herald asked
for, on its topic (404 otherwise, as the spec says). Notifications are POSTs
signed with ``X-Hub-Signature: <sha1|sha256|sha384|sha512>=<hex HMAC of the
body>`` under a secret Herald drew for that subscription; one that does not
verify is answered 2xx and ignored (§7.1.2: no oracle for guessing), one that
does makes the feed due now. The body itself is never read as the feed: the
poll fetches it, so dedupe and leads stay one path, and a notification
carries no more trust than "look now".

Secrets live in memory only: after a restart the old ones are gone and Herald
subscribes again, which replaces the hub's subscription (same callback and
topic) and its secret. Polling on the interval goes on as the safety net.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from bot.errors import FeedError
from bot.listener import TEXT, Handler, Request, Response
from bot.secret import Secret, redact_url

log = logging.getLogger(__name__)
LEASE = timedelta(days=5)           # asked for; the hub's own answer wins
RENEW_AT = 0.8                      # share of the lease after which Herald renews
PENDING_FOR = timedelta(minutes=5)  # a hub silent this long after 2xx: ask again
RETRY = timedelta(minutes=5)        # after a refused or failed request, doubling
MAX_RETRY = timedelta(hours=6)
MAX_LEASE = timedelta(days=3650)    # caps a hostile hub.lease_seconds (no overflow)
MAX_CHALLENGE = 1024                # bytes echoed at most: a hub's nonce is short
ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256,
              "sha384": hashlib.sha384, "sha512": hashlib.sha512}
ClientPost = Callable[[str, Mapping[str, str]], int]   # (hub URL, form fields) -> status


@dataclass(frozen=True)
class Subscription:
    """One feed's subscription as Herald knows it. ``state``: "pending" (asked,
    not verified), "active" (verified; ``lease_until`` set), "failed" (refused
    or denied; asked again at ``retry_at``)."""

    hub: str
    topic: str
    secret: Secret
    state: str
    asked_at: datetime
    lease_until: datetime | None = None
    renew_at: datetime | None = None
    retry_at: datetime | None = None
    failures: int = 0

    def __repr__(self) -> str:   # the secret masks itself; the hub URL may hold a token
        return f"Subscription({redact_url(self.hub)!r}, {self.state})"


class WebSub:
    """Subscriptions for the feeds that name a hub; ``routes()`` for the listener.

    ``client_post(url, fields)`` sends the hub a form and returns the HTTP status
    (raising OSError or requests' errors when it cannot); ``clock()`` is aware
    UTC now; ``poll_now(feed) -> bool`` asks for a poll; ``token()`` draws a
    secret (< 200 bytes, the spec's limit). Thread-safe: polls, the listener's
    threads and the renewal job all call in."""

    def __init__(self, public_url: str, client_post: ClientPost, clock: Callable[[], datetime],
                 poll_now: Callable[[str], bool], *, token: Callable[[], str] = lambda: secrets.token_hex(32),
                 lease: timedelta = LEASE, wanted: Callable[[str], bool] = lambda feed: True):
        self.public_url = public_url.rstrip("/")
        self.client_post, self.clock, self.poll_now, self.token = client_post, clock, poll_now, token
        self.lease, self.wanted = lease, wanted
        self.subs: dict[str, Subscription] = {}
        self.leaving: dict[str, set[str]] = {}   # feed -> topics Herald asked to unsubscribe
        self.lock = threading.Lock()

    # ------------------------------------------------------------ subscribing

    def callback(self, feed: str) -> str:
        """The URL the hub calls for ``feed``."""
        return f"{self.public_url}/websub/{quote(feed, safe='')}"

    def seen(self, feed: str, hub: str | None, topic: str | None) -> bool:
        """After a poll of ``feed``: subscribe when it names a hub and no live
        subscription to that hub and topic exists. True when a request went out.
        A poll without hub (a 304 carries no body) changes nothing."""
        if not hub or not topic or not self.wanted(feed) or not usable_hub(hub):
            return False
        with self.lock:
            old = self.subs.get(feed)
            if old and (old.hub, old.topic) == (hub, topic):
                return False     # renew() looks after it from here
        if old:
            self._unsubscribe(feed, old)
        return self._subscribe(feed, hub, topic, None)

    def renew(self) -> int:
        """Ask again for what needs it: active ones past ``RENEW_AT`` of their
        lease, pending ones the hub never verified, failed ones whose retry is
        due. Feeds no longer wanted (a reload removed them or set ``websub:
        false``) are unsubscribed first. Call every minute or so; returns the
        subscription requests sent."""
        with self.lock:
            unwanted = [feed for feed in self.subs if not self.wanted(feed)]
        self.forget(unwanted)
        now = self.clock()
        with self.lock:
            due = [(feed, sub) for feed, sub in self.subs.items() if _due(sub, now)]
        return sum(self._subscribe(feed, sub.hub, sub.topic, sub) for feed, sub in due)

    def unsubscribe_all(self) -> int:
        """At stop: ask every hub to drop Herald's subscriptions (while the
        listener still answers their checks); returns the requests sent."""
        with self.lock:
            subs, self.subs = dict(self.subs), {}
        return sum(self._unsubscribe(feed, sub) for feed, sub in subs.items())

    def forget(self, feeds: Iterable[str]) -> None:
        """Unsubscribe feeds no longer configured or no longer wanted (a reload)."""
        dropped = set(feeds)
        with self.lock:
            gone = {feed: self.subs.pop(feed) for feed in list(self.subs) if feed in dropped}
        for feed, sub in gone.items():
            self._unsubscribe(feed, sub)

    def _subscribe(self, feed: str, hub: str, topic: str, old: Subscription | None) -> bool:
        # Asking again (renewal, retry) keeps the secret: notifications signed
        # with it may be in flight, and a hub that answers an earlier request
        # late stores that request's secret.
        secret = old.secret if old else Secret(self.token())
        sub = Subscription(hub, topic, secret, "pending", self.clock(),
                           old.lease_until if old else None, failures=old.failures if old else 0)
        with self.lock:
            self.subs[feed] = sub    # before the request: a hub may verify before it answers
        fields = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": self.callback(feed),
                  "hub.secret": secret.reveal(),
                  "hub.lease_seconds": str(int(self.lease.total_seconds()))}
        status = self._post(feed, hub, fields)
        if status is None or not 200 <= status < 300:
            self._failed(feed, sub, f"HTTP {status}" if status else "no answer")
        else:
            log.info("feed %s: asked %s for WebSub notifications", feed, redact_url(hub),
                     extra={"feed": feed})
        return True

    def _unsubscribe(self, feed: str, sub: Subscription) -> bool:
        with self.lock:
            self.leaving.setdefault(feed, set()).add(sub.topic)
        fields = {"hub.mode": "unsubscribe", "hub.topic": sub.topic, "hub.callback": self.callback(feed)}
        log.info("feed %s: asking %s to stop WebSub notifications", feed, redact_url(sub.hub),
                 extra={"feed": feed})
        return self._post(feed, sub.hub, fields) is not None

    def _post(self, feed: str, hub: str, fields: Mapping[str, str]) -> int | None:
        try:
            return self.client_post(hub, fields)
        except FeedError as exc:   # refused by the address guard, or no answer
            log.warning("feed %s: WebSub hub %s: %s", feed, redact_url(hub), exc.reason,
                        extra={"feed": feed})
            return None

    def _failed(self, feed: str, sub: Subscription, why: str) -> None:
        wait = min(RETRY * 2 ** min(sub.failures, 10), MAX_RETRY)
        with self.lock:
            if self.subs.get(feed) is not sub:
                return       # verified, replaced or dropped meanwhile
            self.subs[feed] = replace(sub, state="failed", retry_at=self.clock() + wait,
                                      failures=sub.failures + 1)
        log.warning("feed %s: WebSub hub %s refused the subscription (%s); polling on the "
                    "interval, asking again in %d min", feed, redact_url(sub.hub), why,
                    wait.total_seconds() // 60, extra={"feed": feed})

    # ------------------------------------------------------------ the callback

    def routes(self) -> dict[str, Handler]:
        """``GET /websub/<feed>`` (the hub's checks) and ``POST /websub/<feed>``
        (notifications), for bot.listener."""
        return {"GET /websub/<feed>": self.verify, "POST /websub/<feed>": self.notified}

    def verify(self, request: Request) -> Response:
        """The hub's verification of intent (§5.3) or denial (§5.2)."""
        feed = request.params.get("feed", "")
        mode, topic = _first(request.query, "hub.mode"), _first(request.query, "hub.topic")
        challenge = _first(request.query, "hub.challenge")
        if mode == "denied":
            return self._denied(feed, topic)
        echo = (challenge or "").encode("utf-8", "replace")
        if not echo or len(echo) > MAX_CHALLENGE or not topic:
            return _NOT_FOUND
        if mode == "subscribe" and self._verified(feed, topic, _first(request.query, "hub.lease_seconds")):
            return 200, TEXT, echo
        if mode == "unsubscribe" and self._left(feed, topic):
            return 200, TEXT, echo
        return _NOT_FOUND

    def _verified(self, feed: str, topic: str, lease: str | None) -> bool:
        now = self.clock()
        # Never longer than asked: anyone can send this GET, and a forged
        # ten-year lease would stop the renewals that keep push working.
        span = min(_lease(lease) or self.lease, self.lease)
        with self.lock:
            sub = self.subs.get(feed)
            if sub is None or sub.topic != topic or sub.state not in ("pending", "active"):
                return False
            self.subs[feed] = replace(sub, state="active", lease_until=now + span,
                                      renew_at=now + span * RENEW_AT, retry_at=None, failures=0)
        if sub.state == "pending":
            log.info("feed %s: WebSub subscription verified for %s", feed, _human(span),
                     extra={"feed": feed})
        return True

    def _left(self, feed: str, topic: str) -> bool:
        with self.lock:
            topics = self.leaving.get(feed, set())
            if topic not in topics:
                return False
            topics.discard(topic)
        return True

    def _denied(self, feed: str, topic: str | None) -> Response:
        # Anyone can send this GET: the secret is kept, so the hub's signed
        # notifications still count, and renew() asks again later.
        with self.lock:
            sub = self.subs.get(feed)
            if sub is None or sub.topic != topic:
                return _NOT_FOUND
        self._failed(feed, sub, "denied")
        return 200, TEXT, b"ok\n"

    def notified(self, request: Request) -> Response:
        """A content distribution request (§7): poll the feed when its
        signature verifies; 2xx either way for a feed Herald subscribed."""
        feed = request.params.get("feed", "")
        with self.lock:
            sub = self.subs.get(feed)
        if sub is None:
            return _NOT_FOUND
        if not signed(request.body, request.header("X-Hub-Signature"), sub.secret):
            log.debug("feed %s: a WebSub notification without a valid signature was ignored", feed,
                      extra={"feed": feed})
            return 202, TEXT, b"accepted\n"
        if self.poll_now(feed):
            log.debug("feed %s: WebSub notification; polling now", feed, extra={"feed": feed})
        return 202, TEXT, b"accepted\n"


_NOT_FOUND = (404, TEXT, b"not found\n")


def signed(body: bytes, header: str | None, secret: Secret) -> bool:
    """True when ``header`` is ``method=hex`` with a known method and the HMAC
    of ``body`` under ``secret``. Compared in constant time."""
    method, sep, given = (header or "").strip().partition("=")
    digest = ALGORITHMS.get(method.strip().lower())
    if not sep or digest is None:
        return False
    expected = hmac.new(secret.reveal().encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))


def usable_hub(url: str) -> bool:
    """An https hub, or an http one on this machine (tests, a local hub): the
    secret travels in the request and must not cross a network in clear."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(host)
    return parts.scheme == "http" and (host in ("localhost", "::1") or host.startswith("127."))


def _due(sub: Subscription, now: datetime) -> bool:
    if sub.state == "active":
        return sub.renew_at is not None and now >= sub.renew_at
    if sub.state == "pending":
        return now >= sub.asked_at + PENDING_FOR
    return sub.retry_at is not None and now >= sub.retry_at


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name) or [None]
    return values[0]


def _lease(text: str | None) -> timedelta | None:
    """The hub's ``hub.lease_seconds``, bounded; None when absent or not a number."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) == 0:
        return None
    return min(timedelta(seconds=int(text)), MAX_LEASE)


def _human(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} h"
