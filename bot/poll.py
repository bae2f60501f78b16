"""The poll job for one feed: fetch, parse, find leads for new items, store them.

A failing feed is recorded with its reason and polled again after a back-off;
it never raises into the scheduler, and other feeds are unaffected.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from bot.articles import LeadFinder, bounded
from bot.config import FeedConfig
from bot.errors import FeedError, StoreError
from bot.feeds import FeedState, FetchResult, fetch
from bot.http import HttpClient
from bot.models import Article
from bot.secret import seal, unseal
from bot.store import Ingested, Store, feed_state, newest, url_digest

log = logging.getLogger(__name__)
# A feed's row as its last poll left it, kept for each of up to 10,000 feeds:
# slots (~0.2 kB), not a namespace's dict (~1 kB).
FeedRow = dataclasses.make_dataclass("FeedRow", list(feed_state.c.keys()), slots=True)
MAX_BACKOFF = timedelta(hours=6)
MAX_CACHE_AGE = timedelta(hours=6)


class Poller:
    """Polls feeds into the store. ``accounts_for(feed_name)`` gives the
    (account, priority) pairs routed from that feed; ``observer`` (a
    bot.metrics.Observer) hears of every poll attempt; ``fetched(feed_name,
    hub, topic)`` of every 200 answer, with its WebSub hub and topic (the
    push subscriptions' hook)."""

    def __init__(self, store: Store, client: HttpClient, leads: LeadFinder,
                 accounts_for: Callable[[str], Sequence[tuple[str, int]]],
                 clock: Callable[[], datetime], observer=None,
                 fetched: Callable[[str, str | None, str | None], None] | None = None):
        self.store = store
        self.client = client
        self.leads = leads
        self.accounts_for = accounts_for
        self.clock = clock
        self.observer = observer
        self.fetched = fetched
        # Feeds whose last poll here succeeded, with their row as that poll
        # left it: the next poll asks the database nothing before it fetches.
        # Only this worker writes a feed's row while it holds the lease; a
        # feed whose lease was taken anew is ``forget``-ed (another worker
        # may have written it). A failure drops the row (read again next time).
        self._rows: dict[str, FeedRow] = {}
        # One poll of a feed at a time (a ping or a WebSub notice may come
        # while the scheduled poll runs): two polls of one feed from two
        # copies of its row would each write what the other did not see.
        self._busy: dict[str, threading.Lock] = {}
        self._busy_lock = threading.Lock()

    def forget(self, feeds: Iterable[str]) -> None:
        """Read these feeds' rows from the database at their next poll."""
        for name in feeds:
            self._rows.pop(name, None)

    def poll(self, feed: FeedConfig, *, force: bool = False) -> Ingested | None:
        """Poll ``feed`` once if it is due (or ``force``); None when skipped or
        failed. Not due: backing off, or fetched less than ``feed.every / 2``
        ago (workers sharing a feed: another one has just polled it). Never
        raises but a fatal StoreError: one feed's surprise (a bug, a field
        nobody foresaw) is recorded for that feed, which backs off. A second
        poll of a feed being polled waits for the first, then finds the feed
        as that one left it (fresh, unless forced)."""
        with self._lock(feed.name):
            try:
                return self._poll(feed, force)
            except StoreError as exc:  # the store logged it once
                self._observe(feed, False, 0)
                if exc.fatal:
                    raise
            except Exception as exc:
                self._crashed(feed, exc)
            return None

    def _lock(self, name: str) -> threading.Lock:
        with self._busy_lock:
            return self._busy.setdefault(name, threading.Lock())

    def _observe(self, feed: FeedConfig, ok: bool, new: int) -> None:
        # Not imported from bot.metrics: the poller needs no Prometheus.
        if self.observer is not None:
            self.observer.polled(feed.name, ok, new)

    def _poll(self, feed: FeedConfig, force: bool) -> Ingested | None:
        row, made = self._rows.pop(feed.name, None), False   # only a success puts it back
        if row is None or row.configured_url != url_digest(feed.url):
            found, made = self.store.open_feed(feed.name, feed.url)
            row = FeedRow(**found._asdict())
        if row.gone_reason:
            log.debug("feed %s: not polled, %s", feed.name, row.gone_reason, extra={"feed": feed.name})
            return None
        if not force and (self._waiting(row) or self._fresh(feed, row)):
            return None
        state = FeedState(url=row.url and unseal(row.url, feed.url), etag=row.etag,
                          last_modified=row.last_modified)
        primed = row.primed_at is not None
        try:
            result = fetch(self.client, feed, state, **self._skips(feed, primed))
        except FeedError as exc:
            self._failed(feed, row.error_streak or 0, exc)
            self._observe(feed, False, 0)
            return None
        return self._succeeded(feed, row, result, unseen=made)

    def _skips(self, feed: FeedConfig, primed: bool) -> dict:
        """What ``fetch`` may skip. Once primed, items the store knows (no per-item
        work for them). At first sight nothing is left out (the backfill is
        chosen over the whole document, see Store.ingest), but only the backfill
        may be posted, so only it needs a summary."""
        if primed:
            return {"known": lambda ids: self.store.known_items(feed.name, ids)}
        return {"wanted": lambda found: {a.item_id for a in _backfill(feed, found)}}

    def _waiting(self, row) -> bool:
        """True while the feed's back-off runs. A wall clock stepped back must
        not stop polling until it catches up: a last fetch "in the future"
        means the clock moved, and the feed is due."""
        now = self.clock()
        if not row.next_poll_at or now >= row.next_poll_at:
            return False
        return not (row.last_fetch_at and row.last_fetch_at > now)

    def _fresh(self, feed: FeedConfig, row) -> bool:
        """True when the feed was fetched less than half its interval ago (a
        last fetch in the future is a clock stepped back: not fresh)."""
        now = self.clock()
        last = row.last_fetch_at
        return bool(last) and now - feed.every / 2 < last <= now

    def _crashed(self, feed: FeedConfig, exc: Exception) -> None:
        log.debug("feed %s: traceback of the unexpected error", feed.name, exc_info=exc, extra={"feed": feed.name})
        reason = f"unexpected error {type(exc).__name__}: {str(exc)[:200]}"
        try:
            row = self.store.feed_row(feed.name, feed.url)
            self._failed(feed, row.error_streak or 0, FeedError(reason))
        except StoreError:
            pass  # logged by the store; the feed is tried again next time
        self._observe(feed, False, 0)

    def _succeeded(self, feed: FeedConfig, row, result: FetchResult, *,
                   unseen: bool) -> Ingested:
        now, primed = self.clock(), row.primed_at is not None
        values = dict(last_fetch_at=now, last_success_at=now, error_streak=0, last_error=None,
                      next_poll_at=self._next_poll(feed, result.max_age))
        if result.permanent_url:
            values["url"] = seal(result.permanent_url, feed.url)   # no token in the database
            log.info("feed %s: moved permanently, now polling its new address", feed.name,
                     extra={"feed": feed.name})
        if result.articles is None:
            self._unchanged(feed, row, values)
            log.debug("feed %s: not modified", feed.name, extra={"feed": feed.name})
            self._observe(feed, True, 0)
            return Ingested(new=0, queued=0, primed=False)
        values.update(etag=result.etag, last_modified=result.last_modified)
        self._tell_fetched(feed, result)
        if primed and not result.articles:  # a changed feed with nothing new: nothing to ingest
            ingested = Ingested(new=0, queued=0, primed=False)
            self.store.update_feed(feed.name, **values)
        else:   # the feed's new state is written with what it brought, in one transaction
            found, known = self._with_leads(feed, primed, result.articles, unseen)
            ingested = self.store.ingest(feed.name, found, self.accounts_for(feed.name),
                                         backfill=feed.backfill, max_age=feed.max_age,
                                         known=known, unseen=unseen, feed_values=values)
        if ingested.primed:   # the store's ingest marked the feed seen (primed_at)
            values["primed_at"] = row.primed_at or now
        self._remember(feed, row, values)
        self._log(feed, ingested)
        self._observe(feed, True, ingested.new)
        return ingested

    def _unchanged(self, feed: FeedConfig, row, values: dict) -> None:
        """A 304. When it changes nothing but the poll times (no redirect to
        remember, no back-off or cache age to set or clear), the store notes
        the times to write later with others'."""
        quiet = ("url" not in values and values["next_poll_at"] is None
                 and row.next_poll_at is None and not row.error_streak and row.last_error is None)
        if quiet:
            self.store.feed_unchanged(feed.name, values["last_fetch_at"])
        else:
            self.store.update_feed(feed.name, **values)
        self._remember(feed, row, values)

    def _remember(self, feed: FeedConfig, row, values: dict) -> None:
        """Keep the feed's row as this poll left it, for the next poll."""
        self._rows[feed.name] = dataclasses.replace(row, **values)

    def _tell_fetched(self, feed: FeedConfig, result: FetchResult) -> None:
        if self.fetched is None:
            return
        try:
            self.fetched(feed.name, result.hub, result.topic)
        except Exception as exc:  # the hook's trouble must not cost the poll
            log.warning("feed %s: the fetched hook failed (%s)", feed.name, type(exc).__name__,
                        extra={"feed": feed.name})

    def _with_leads(self, feed: FeedConfig, primed: bool, found: list[Article],
                    unseen: bool) -> tuple[list[Article], set[str] | None]:
        """Find leads only for items that may be posted: new ones, and at first
        sight only the backfill (a 200-item feed must not cost 200 page fetches).
        Once primed, ``fetch`` has already left the known items out. At first
        sight only the backfill is looked up here (an item a cut-short first
        sight recorded needs no lead); which of the rest the store knows,
        ``ingest`` reads under its write lock (for a feed whose row this poll
        made, ``unseen``, only if it is no longer as made). Returns the items
        for ``ingest`` and its ``known`` (None: ingest asks)."""
        if primed:
            return [bounded(self.leads.enrich(a, feed.fetch_article)) for a in found], set()
        backfill = _backfill(feed, found)
        known = () if unseen or not backfill else self.store.known_items(
            feed.name, [a.item_id for a in backfill])
        wanted = {a.item_id for a in backfill} - set(known)
        return [bounded(self.leads.enrich(a, feed.fetch_article) if a.item_id in wanted else a)
                for a in found], None

    def _next_poll(self, feed: FeedConfig, max_age: float | None) -> datetime | None:
        """Cache-Control max-age is a lower bound on the interval."""
        if max_age and timedelta(seconds=max_age) > feed.every:
            return self.clock() + min(timedelta(seconds=max_age), MAX_CACHE_AGE)
        return None

    def _failed(self, feed: FeedConfig, streak: int, exc: FeedError) -> None:
        now = self.clock()
        if exc.gone:
            self.store.update_feed(feed.name, last_fetch_at=now, last_error=exc.reason,
                                   gone_reason=f"gone ({exc.reason}) since {now:%Y-%m-%d %H:%M} UTC")
            log.error("feed %s: %s; polling stopped. Remove the feed or fix its url in the config",
                      feed.name, exc.reason, extra={"feed": feed.name})
            return
        delay = min(feed.every * (2 ** min(streak, 10)), MAX_BACKOFF)
        if exc.retry_after:
            delay = max(delay, timedelta(seconds=exc.retry_after))
        self.store.update_feed(feed.name, last_fetch_at=now, last_error=exc.reason,
                               error_streak=streak + 1, next_poll_at=now + delay)
        log.warning("feed %s: %s; next try in %s", feed.name, exc.reason, _human(delay), extra={"feed": feed.name})

    @staticmethod
    def _log(feed: FeedConfig, ingested: Ingested) -> None:
        if ingested.primed:
            log.info("feed %s: first sight, %d items recorded as seen, %d queued (backfill %d)",
                     feed.name, ingested.new, ingested.queued, feed.backfill, extra={"feed": feed.name})
        else:
            log.info("feed %s: polled, %d new, %d queued", feed.name, ingested.new, ingested.queued,
                     extra={"feed": feed.name})


def _backfill(feed: FeedConfig, found: list[Article]) -> list[Article]:
    """The items a first sight may post: the newest ``feed.backfill``, each
    item id once as the store ingests it (the first copy wins)."""
    first: dict[str, Article] = {}
    for article in found:
        first.setdefault(article.item_id, article)
    return newest(list(first.values()), feed.backfill)


def _human(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
