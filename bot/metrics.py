"""What a running Herald counts, in Prometheus terms.

The poller and the publisher tell an ``Observer`` what happened (they take
``observer=None`` and import nothing from here); ``Metrics`` is the observer
that keeps Prometheus counters and a histogram in its own registry, and asks a
``gauges`` callable for the state of the queue at each scrape. Label values are
feed and account names from the config, never URLs, tokens or article text.
"""
from __future__ import annotations

import logging
import platform as _platform
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

log = logging.getLogger(__name__)
OUTCOMES = ("sent", "failed", "skipped", "retried")
# From an item's first sight to its post: seconds when the queue is empty,
# hours when a schedule spreads a burst or a posting window is closed.
LATENCY_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
MAX_LABEL = 200  # names are String(200) in the store; longer ones are cut alike


class Observer:
    """What the poller and publisher report. The base observes nothing.
    Implementations must not raise: they run inside the jobs."""

    def polled(self, feed: str, ok: bool, new: int) -> None:
        """After every poll attempt of ``feed``: ``ok`` False when it failed,
        ``new`` the items never seen in it before."""

    def settled(self, account: str, platform: str, outcome: str,
                first_seen: datetime | None) -> None:
        """When a post of ``account`` became ``outcome`` (sent, failed or
        skipped), or a try of it failed for a while and waits (retried);
        ``first_seen`` is when Herald first saw its item."""


@dataclass(frozen=True)
class AccountGauges:
    """One account's state at a scrape. ``oldest_due_age`` is seconds since the
    oldest due post became due (0: none due); ``rate_limited_until`` a unix time
    before which the account sends nothing (0: it may send)."""

    account: str
    depth: int
    oldest_due_age: float
    paused: bool
    rate_limited_until: float


@dataclass(frozen=True)
class Gauges:
    """What the ``gauges`` callable returns at each scrape."""

    accounts: tuple[AccountGauges, ...] = ()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Metrics(Observer):
    """Prometheus metrics of one Herald process. ``feeds`` and ``accounts``
    ((name, platform) pairs) start their series at zero, so a rate is defined
    before the first event."""

    def __init__(self, gauges: Callable[[], Gauges] = Gauges, *, version: str = "unknown",
                 clock: Callable[[], datetime] = utcnow, feeds: Iterable[str] = (),
                 accounts: Iterable[tuple[str, str]] = ()):
        self.clock = clock
        self.registry = CollectorRegistry()
        self._counters()
        Info("herald_build", "Herald's version and the Python running it.",
             registry=self.registry).info({"version": version, "python": _platform.python_version()})
        self.registry.register(_GaugeCollector(gauges))
        self.feeds = _FeedCounters([label(feed) for feed in feeds])
        self.registry.register(self.feeds)
        for account, platform in accounts:
            for series in (*self.posts.values(), self.latency):
                series.labels(label(account), label(platform))

    def _counters(self) -> None:
        reg, per_account = self.registry, ["account", "platform"]
        self.posts = {outcome: Counter(f"herald_posts_{outcome}", f"Posts {outcome} per account.",
                                       per_account, registry=reg) for outcome in OUTCOMES}
        self.latency = Histogram("herald_first_seen_to_post_seconds",
                                 "Seconds from an item's first sight to its post being sent.",
                                 per_account, buckets=LATENCY_BUCKETS, registry=reg)

    def polled(self, feed: str, ok: bool, new: int) -> None:
        self.feeds.add(label(feed), ok, max(new, 0))

    def settled(self, account: str, platform: str, outcome: str,
                first_seen: datetime | None) -> None:
        if outcome not in self.posts:
            log.warning("metrics: unknown post outcome %r not counted", outcome)
            return
        account, platform = label(account), label(platform)
        self.posts[outcome].labels(account, platform).inc()
        if outcome == "sent" and first_seen is not None:
            seconds = (self.clock() - first_seen).total_seconds()
            self.latency.labels(account, platform).observe(max(seconds, 0.0))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type. The 0.0.4 text format, the
        one every Prometheus and agent reads (our names need nothing newer)."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE_PLAIN_0_0_4


class _WithoutCreated:
    """The registry without the ``*_created`` series prometheus_client adds to
    every counter and histogram: they double the series for a start time that
    Prometheus does not need, and switching them off is process-wide."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterator:
        for family in self.registry.collect():
            created = family.name + "_created"
            family.samples = [s for s in family.samples if s.name != created]
            yield family


class _FeedCounters:
    """The per-feed counters as plain integers, made into counter families at
    scrape time: prometheus_client's labelled children cost ~1.5 kB a feed for
    three counters (15 MB at 10,000 feeds), these ~0.2 kB."""

    FAMILIES = (("herald_polls", "Poll attempts per feed."),
                ("herald_poll_failures", "Poll attempts that failed."),
                ("herald_new_items", "Items seen for the first time in a feed."))

    def __init__(self, feeds: Iterable[str]):
        self.lock = threading.Lock()
        self.counts: dict[str, list[int]] = {feed: [0, 0, 0] for feed in feeds}

    def add(self, feed: str, ok: bool, new: int) -> None:
        with self.lock:
            counts = self.counts.setdefault(feed, [0, 0, 0])
            counts[0] += 1
            counts[1] += not ok
            counts[2] += new

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self.lock:
            counts = {feed: tuple(values) for feed, values in self.counts.items()}
        for i, (name, doc) in enumerate(self.FAMILIES):
            family = CounterMetricFamily(name, doc, labels=["feed"])
            for feed, values in counts.items():
                family.add_metric([feed], values[i])
            yield family


class _GaugeCollector:
    """Asks for the queue's state at scrape time, so the numbers are never
    stale. When the store cannot answer, the gauges are left out of that
    scrape (absent, not a false zero) and the counters still go out."""

    def __init__(self, gauges: Callable[[], Gauges]):
        self.gauges = gauges

    def describe(self) -> list:
        return []  # nothing fixed to describe; never call the store at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            accounts = self.gauges().accounts
        except Exception as exc:
            log.warning("metrics: queue gauges unavailable this scrape: %s", type(exc).__name__)
            return
        families = [
            ("herald_queue_depth", "Pending posts per account.", lambda a: a.depth),
            ("herald_oldest_due_post_age_seconds", "Seconds the oldest due post has waited.",
             lambda a: a.oldest_due_age),
            ("herald_account_paused", "1 while the account is paused until a person acts.",
             lambda a: 1 if a.paused else 0),
            ("herald_account_rate_limited_until_seconds",
             "Unix time before which the account sends nothing (rate limit, cap or back-off); 0 if none.",
             lambda a: a.rate_limited_until),
        ]
        for name, doc, value in families:
            family = GaugeMetricFamily(name, doc, labels=["account"])
            for gauge in accounts:
                family.add_metric([label(gauge.account)], float(value(gauge)))
            yield family


def label(value: str) -> str:
    """A label value any scraper reads: valid UTF-8 (a lone surrogate from a
    YAML escape would break the whole page), at most MAX_LABEL characters."""
    return str(value)[:MAX_LABEL].encode("utf-8", "replace").decode("utf-8")


def gauges_from_store(store, accounts: Iterable[str], now: datetime) -> Gauges:
    """The gauges of the configured ``accounts`` from ``store.queue_stats(now)``
    and each ``store.account_row(name)``. An account without rows has zeros."""
    stats = store.queue_stats(now)
    return Gauges(tuple(_account_gauges(store, name, stats.get(name, (0, None)), now)
                        for name in accounts))


def _account_gauges(store, name: str, stat: tuple[int, datetime | None],
                    now: datetime) -> AccountGauges:
    depth, due_since = stat
    row = store.account_row(name)
    until = row.paused_until if row is not None else None
    return AccountGauges(
        account=name, depth=depth,
        oldest_due_age=max((now - due_since).total_seconds(), 0.0) if due_since else 0.0,
        paused=bool(row is not None and row.paused_reason),
        rate_limited_until=until.timestamp() if until and until > now else 0.0)
