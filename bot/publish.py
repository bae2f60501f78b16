"""The publish job: for each account, send what its schedule says is due.

A post is claimed (status ``sending``) in a committed transaction before the
platform is called, and marked sent only together with the platform's id. Each
(article, account) pair fails alone; an account that is paused or rate limited
waits without slowing the others.
"""
from __future__ import annotations

import hashlib
import logging
import random
import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import budget, schedule
from bot.adapters.base import Adapter
from bot.compose import Limits, compose, tracked, utm_params
from bot.config import AccountConfig, Style
from bot.errors import (AlreadyPosted, AuthFailed, PublishError, RateLimited, Rejected, Stopped,
                        StoreError, Suspended, Transient)
from bot.models import Article, Post, Receipt
from bot.store import Store

log = logging.getLogger(__name__)
MAX_PER_PASS = 50
BACKOFF_MAX = timedelta(hours=1)
CLAIM_LEASE = timedelta(minutes=15)
HOST_SKEW = timedelta(seconds=10)   # how far the workers' hosts' clocks may disagree (NTP)
# find_recent searches everything posted since a row's first try, less this
# margin: the platform's clock may run behind ours.
CLOCK_SKEW = timedelta(minutes=10)

HashtagMap = Callable[[str, str], Mapping[str, str]]
StyleOf = Callable[[str, str], Style]
# What one try did, as the pass's schedule.Backlog must hear it (Publisher._send).
SENT, ALREADY, SHOWN, GONE, WAITS = "sent", "already", "shown", "gone", "waits"
OVER_BUDGET = "over budget"   # the post would exceed the X budget: it waits for the reset


@dataclass
class Account:
    """An account as the publisher needs it: its config and its adapter."""

    config: AccountConfig
    adapter: Adapter

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def limits(self) -> Limits:
        return Limits.for_adapter(self.adapter)   # an instance may know its server's limit

    def text(self, article: Article, hashtag_map: Mapping[str, str], style: Style | None = None) -> str:
        """The post text for ``article`` on this account (pure: no I/O): with
        ``style`` (Config.style of its feed), its template, hashtags and
        tracking parameters; else the account's template and ``hashtag_map``."""
        if style is None:
            return compose(article, self.config.template, self.limits, hashtag_map=hashtag_map,
                           max_hashtags=self.config.max_hashtags, source=article.feed)
        return compose(article, style.template, self.limits, hashtag_map=style.hashtags,
                       max_hashtags=self.config.max_hashtags, source=article.feed,
                       utm=self.utm(article, style) or None)

    def utm(self, article: Article, style: Style | None) -> dict[str, str]:
        """The tracking parameters of ``article``'s link on this account."""
        if style is None:
            return {}
        return utm_params(style.utm, self.name, self.config.platform, article.feed)

    def fingerprint(self) -> str:
        """A short hash of the credentials, so a pause for bad credentials lifts
        by itself when the user changes them. Not reversible; never the secret."""
        joined = "\0".join(f"{k}={v.reveal()}" for k, v in sorted(self.config.credentials.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


class Publisher:
    """Runs publish passes. ``hashtags(feed, account)`` gives the keyword map
    for a post (the account's merged with its routes'); ``style(feed,
    account)``, when given (Config.style), gives the template, hashtags and
    tracking parameters instead; ``observer`` (a bot.metrics.Observer) hears
    of every post that becomes sent, failed or skipped. An account with a
    ``budget`` (X) sends only what this month's budget still pays for."""

    def __init__(self, store: Store, accounts: Sequence[Account], clock: Callable[[], datetime],
                 worker: str, *, hashtags: HashtagMap = lambda f, a: {},
                 rng: Callable[[], float] = random.random, dry_run: Adapter | None = None,
                 exclusive: bool = True, observer=None, leases=None, style: StyleOf | None = None):
        self.store = store
        self.accounts = list(accounts)
        self.clock = clock
        self.worker = worker
        self.hashtags = hashtags
        self.style = style
        self.rng = rng
        # --dry-run: every post goes to this console adapter and the outbox is
        # left untouched, so a later real run still posts it.
        self.dry_run = dry_run
        self._shown: set[int] = set()
        # With the SQLite instance lock no other Herald is alive, so any claim not
        # ours is from a dead process. Sharing a server database, only claims
        # older than the lease are presumed dead.
        self.exclusive = exclusive
        self.stopping = threading.Event()
        # Failed tries in a row per account, across rows; a success resets it.
        self._failures: dict[str, int] = {}
        self.observer = observer
        # Several workers (bot.leases.Leases): publish only for the accounts
        # this worker holds, and claim only while holding them.
        self.leases = leases

    def stop(self) -> None:
        """Finish the post in flight, then send nothing more (for SIGTERM)."""
        self.stopping.set()

    def run(self, *, limit: int | None = MAX_PER_PASS) -> int:
        """One pass over every account this worker holds, sending up to
        ``limit`` posts each (None: all that are due); returns the posts sent."""
        sent = 0
        for account in self.accounts:
            if self.stopping.is_set():
                break
            try:
                sent += self._run_held(account, limit)
            except StoreError as exc:  # the store logged it; every account would meet it
                if exc.fatal:
                    raise
                break
            except Exception:  # one account's bug must not stop the others
                log.exception("account %s: publish pass failed", account.name, extra=_about(account))
        return sent

    def _run_held(self, account: Account, limit: int | None) -> int:
        """The account's pass if this worker holds its lease. Marked busy
        first, then asked: a heartbeat letting the lease go in between would
        otherwise leave a pass running without it."""
        if self.leases is None:
            return self.run_account(account, limit)
        with self.leases.using(account.name):
            if not self.leases.holds("account", account.name):
                return 0
            return self.run_account(account, limit)

    def run_account(self, account: Account, limit: int | None = MAX_PER_PASS) -> int:
        """Send what is due on ``account``, up to ``limit`` posts (None: all).

        The queue is read and ranked once a pass (schedule.Backlog) and each
        outcome told to it, so a pass costs the same with 100 or 3,000 posts
        waiting; whatever changes the plan otherwise (a back-off, a pause)
        ends the pass, and the next one reads the queue afresh."""
        if self._paused(account):
            return 0
        if not self.dry_run:
            self._reconcile(account)
        backlog, rows, month = self._backlog(account)
        sent = 0
        for _ in range(limit) if limit is not None else itertools.count():
            if self.stopping.is_set() or self._paused(account) or not self._holding(account):
                break
            row = self._next_due(account, backlog, rows)
            if row is None:
                break
            outcome = self._send(account, row, month)
            sent += outcome in (SENT, SHOWN)
            if outcome in (SENT, ALREADY):
                backlog.sent(str(row.id), self.clock())
            elif outcome in (SHOWN, GONE):
                backlog.drop(str(row.id))
            else:   # WAITS, OVER_BUDGET: the account (or this post) waits; the next pass replans
                break
        return sent

    # -- what is due -----------------------------------------------------------

    def plan(self, account: Account) -> tuple[list[schedule.Slot], dict]:
        """The account's plan now: a slot per pending post, and the rows by key."""
        backlog, rows, _ = self._backlog(account)
        return backlog.plan(self.clock()), rows

    def budget(self, account: Account) -> budget.Spend | None:
        """This month's spend of the account's budget (None: it has none)."""
        month = self._month(account, self.clock())
        return budget.spend(account.config.budget, month, self.clock()) if month is not None else None

    def _backlog(self, account: Account) -> tuple[schedule.Backlog, dict, list | None]:
        """The account's queue, ranked once for this pass, its rows by key,
        and this month's sends when it has a budget (the pass adds its own)."""
        now, rows, queued, sent, paused_until = self._inputs(account)
        month = self._month(account, now)
        quota = budget.quota(account.config.budget, month, now,
                             links=self.style is not None or "{url" in account.config.template) \
            if month is not None else None
        return schedule.Backlog(account.config.schedule, queued, sent, paused_until=paused_until,
                                quota=quota), rows, month

    def _month(self, account: Account, now: datetime) -> list[budget.Send] | None:
        if account.config.budget is None:
            return None
        return list(self.store.sent_since(account.name, budget.month_start(now)))

    def _next_due(self, account: Account, backlog: schedule.Backlog, rows: dict):
        expired, slot = backlog.due(self.clock())
        for gone in expired:
            self.store.mark_skipped(rows[gone.key].id, "expired: waited longer than expire_after")
            self._settled(account, rows[gone.key], "skipped")
            log.info("account %s: post %s skipped, waited longer than expire_after",
                     account.name, gone.key, extra=_about(account, rows[gone.key]))
        return rows[slot.key] if slot else None

    def _holding(self, account: Account) -> bool:
        """False once this worker lost the account's lease: every claim would fail."""
        return self.leases is None or self.leases.holds("account", account.name)

    def _inputs(self, account: Account):
        """What the schedule needs: now, pending rows by key, their queue
        entries, the sends of the last day and the account's pause."""
        now = self.clock()
        rows = {str(r.id): r for r in self.store.queue(account.name) if r.id not in self._shown}
        queued = [schedule.Queued(key=k, queued_at=r.queued_at, published=r.published_at,
                                  priority=r.priority, not_before=r.not_before)
                  for k, r in rows.items()]
        state = self.store.account_row(account.name)
        sent = self.store.sent_times(account.name, now - timedelta(days=1))
        return now, rows, queued, sent, (state.paused_until if state else None)

    def _paused(self, account: Account) -> bool:
        state = self.store.account_row(account.name)
        if not state or not state.paused_reason:
            return False
        if state.auth_failed_fingerprint and state.auth_failed_fingerprint != account.fingerprint():
            self.store.set_account(account.name, paused_reason=None, auth_failed_fingerprint=None)
            log.info("account %s: credentials changed since the auth failure; resuming", account.name,
                     extra=_about(account))
            return False
        log.debug("account %s: paused (%s)", account.name, state.paused_reason, extra=_about(account))
        return True

    # -- sending ---------------------------------------------------------------

    def _post(self, account: Account, row) -> Post:
        """The post for an outbox row. A retry reuses the text of the first try,
        so the platform's duplicate check sees the same post."""
        article = self.store.article(row.article_id)
        text = row.text or self._text(account, article)
        # The link a platform attaches (a Page's link preview) carries the tracking too.
        style = self.style(article.feed, account.name) if self.style else None
        link = tracked(article.url, account.utm(article, style))
        return Post(key=f"herald-{row.id}", account=account.name, text=text, link=link,
                    image_url=article.image, title=article.title, description=article.lead)

    def text_for(self, account: Account, row) -> str:
        """The text outbox row ``row`` goes out with (an editor's, or composed now)."""
        return self._post(account, row).text

    def _text(self, account: Account, article: Article) -> str:
        tags = self.hashtags(article.feed, account.name)
        if self.style is None:
            return account.text(article, tags)
        return account.text(article, tags, self.style(article.feed, account.name))

    def _send(self, account: Account, row, month: list | None = None) -> str:
        """Try one post; the outcome says what the pass's backlog must learn:
        SENT / ALREADY (on the platform now), SHOWN (dry run), GONE (it left
        the queue unsent), WAITS (it or its account waits: replan later),
        OVER_BUDGET (not tried: ``month``'s sends leave no room for it)."""
        try:
            post = self._post(account, row)
        except StoreError:   # the database, not the article: every post would meet it
            raise
        except Exception as exc:  # a poisoned article costs its own post, not the queue
            self._uncomposable(account, row, exc)
            return GONE
        if month is not None and not self._affordable(account, post, month):
            return OVER_BUDGET
        outcome = self._try(account, row, post)
        if month is not None and outcome in (SENT, ALREADY):
            month.append((self.clock(), _has_link(post)))
        return outcome

    def _affordable(self, account: Account, post: Post, month: list) -> bool:
        """The schedule plans every post at the price of one with a link; this
        is the check on the real post, so the budget holds whatever the plan."""
        if budget.fits(account.config.budget, month, self.clock(), _has_link(post)):
            return True
        left = budget.spend(account.config.budget, month, self.clock())
        log.info("account %s: post %s waits: this month's budget is spent (%s left; resets %s UTC)",
                 account.name, post.key, left.left, f"{left.resets:%Y-%m-%d %H:%M}",
                 extra=_about(account))
        return False

    def _try(self, account: Account, row, post: Post) -> str:
        if self.dry_run:
            self._shown.add(row.id)
            self.dry_run.publish(post)
            return SHOWN
        guard = self.leases.guard(account.name) if self.leases is not None else None
        if not self.store.claim(row.id, self.worker, post.text, guard=guard):
            return GONE   # another worker took it, or the lease went (checked each turn)
        receipt = self._call(account, row, post)
        if isinstance(receipt, PublishError):
            return self._failed(account, row, post, receipt)
        self.store.mark_sent(row.id, receipt.platform_id, url=receipt.url)
        self._settled(account, row, "sent")
        self._failures.pop(account.name, None)
        log.info("post sent: account %s, id %s, %r%s", account.name, receipt.platform_id,
                 post.title[:60], f" {receipt.url}" if receipt.url else "", extra=_about(account, row))
        return SENT

    def _call(self, account: Account, row, post: Post) -> Receipt | PublishError:
        """The platform's answer to a claimed post (looked up first after a
        failed try), as a receipt or the error; no call starts once this
        worker's lease on the account has run out (see ``_orphan``)."""
        try:
            with account.adapter.gated(self._lease_check(account)):
                return self._already_there(account, row, post) or account.adapter.publish(post)
        except PublishError as exc:
            return exc
        except Exception as exc:  # a bug in an adapter: keep the post, retry later
            log.exception("account %s: post %s: unexpected error", account.name, post.key, extra=_about(account, row))
            return Transient(f"unexpected error: {type(exc).__name__}")

    def _lease_check(self, account: Account) -> Callable[[], None] | None:
        """Stops a send's calls once this worker's lease on the account has
        run out (none with the instance lock: nobody else can take it)."""
        if self.leases is None or self.exclusive:
            return None
        holds = self.leases.holds

        def check() -> None:
            if not holds("account", account.name):
                raise Stopped("not sent: this worker's lease on the account ran out (its "
                              "heartbeats failed); looked up before it is sent again")
        return check

    def _uncomposable(self, account: Account, row, exc: Exception) -> None:
        reason = f"cannot compose the post: {type(exc).__name__}: {str(exc)[:200]}"
        log.error("account %s: post %s failed: %s", account.name, row.id, reason, extra=_about(account, row))
        log.debug("account %s: post %s: compose traceback", account.name, row.id, exc_info=exc,
                  extra=_about(account, row))
        if self.dry_run:
            self._shown.add(row.id)
        else:
            self.store.mark_failed(row.id, reason)
            self._settled(account, row, "failed")

    def _failed(self, account: Account, row, post: Post, exc: PublishError) -> str:
        """Record a failed try; returns the outcome (see ``_send``)."""
        name, message = account.name, exc.message or type(exc).__name__
        if isinstance(exc, AlreadyPosted):
            found = self._duplicate(account, row, post, exc)
            self.store.mark_sent(row.id, found.platform_id, note=f"already posted: {message}",
                                 url=found.url)
            self._settled(account, row, "sent")
            log.info("account %s: post %s was already posted; recorded as sent", name, row.id,
                     extra=_about(account, row))
            return ALREADY
        if label := _hold_label(exc):
            # About the account, not this post: the post waits with it, uncounted.
            if not self.store.release(row.id, f"{label}: {message}", count_attempt=False,
                                      claim=self.worker):
                self._taken_over(account, row)
            self._hold(account, exc)
            return WAITS
        if isinstance(exc, Rejected):
            if not self.store.mark_failed(row.id, f"rejected: {message}", claim=self.worker):
                return self._taken_over(account, row)
            self._settled(account, row, "failed")
            log.error("account %s: post %s rejected by the platform: %s", name, row.id, message,
                      extra=_about(account, row))
            return GONE
        if isinstance(exc, Stopped):
            return self._stopped(account, row, exc)
        return self._transient(account, row, message)

    def _stopped(self, account: Account, row, exc: Stopped) -> str:
        """Herald's own doing, not the platform's: no attempt counted, no
        back-off. After a call had started, the error it keeps makes the next
        try look the post up; stopped before any, the row keeps its own (an
        account that cannot look posts up is not made to)."""
        error = row.last_error if exc.first else exc.message
        if not self.store.release(row.id, error, count_attempt=False, claim=self.worker):
            return self._taken_over(account, row)
        log.warning("account %s: post %s: %s", account.name, row.id, exc.message,
                    extra=_about(account, row))
        return WAITS

    def _taken_over(self, account: Account, row) -> str:
        """The row changed hands while this worker settled it (its claim was
        taken over, or the stalled claimer recorded it during our lookup):
        what the other worker recorded stands, reopening it could post twice."""
        log.warning("account %s: post %s was settled by another worker meanwhile; left as it "
                    "recorded it", account.name, row.id, extra=_about(account, row))
        return GONE

    def _pause_for_auth(self, account: Account, message: str) -> None:
        self.store.set_account(account.name, paused_reason=f"auth failed: {message}",
                               auth_failed_fingerprint=account.fingerprint())
        log.error("account %s: paused, the platform rejected its credentials (%s). Fix them, "
                  "then run `run_bot.py resume %s` or restart with the changed config",
                  account.name, message, account.name, extra=_about(account))

    def _hold(self, account: Account, exc: PublishError) -> None:
        """Make the whole account wait as ``exc`` (one of HOLDS) says."""
        if isinstance(exc, AuthFailed):
            self._pause_for_auth(account, exc.message or type(exc).__name__)
        elif isinstance(exc, Suspended):
            self._suspend(account, exc)
        else:
            self._wait(account, exc)

    def _suspend(self, account: Account, exc: Suspended) -> None:
        action = exc.action or f"fix it on the platform, then run `run_bot.py resume {account.name}`"
        self.store.set_account(account.name, paused_reason=f"{exc.message or 'suspended'}; {action}")
        log.error("account %s: paused: %s; %s", account.name, exc.message or "suspended", action,
                  extra=_about(account))

    def _wait(self, account: Account, exc: RateLimited) -> None:
        self.store.wait_until(account.name, exc.until, exc.reason[:200])
        log.warning("account %s: %s until %s UTC (%s)", account.name, exc.reason,
                    f"{exc.until:%Y-%m-%d %H:%M:%S}", exc.message or "no details", extra=_about(account))

    def _transient(self, account: Account, row, message: str) -> str:
        attempts = (row.attempts or 0) + 1
        if attempts >= account.config.max_attempts:
            if not self.store.mark_failed(row.id, f"gave up after {attempts} attempts: {message}",
                                          claim=self.worker):
                return self._taken_over(account, row)
            self._settled(account, row, "failed")
            log.error("account %s: post %s failed after %d attempts: %s",
                      account.name, row.id, attempts, message, extra=_about(account, row))
            return GONE
        delay = self._backoff(account.config.retry_backoff, attempts)
        if not self.store.release(row.id, message, not_before=self.clock() + delay,
                                  claim=self.worker):
            return self._taken_over(account, row)
        self._settled(account, row, "retried")
        self._account_backoff(account)
        log.warning("account %s: post %s failed (%s); retry %d of %d in %ds", account.name,
                    row.id, message, attempts, account.config.max_attempts - 1, delay.total_seconds(),
                    extra=_about(account, row))
        return WAITS

    def _backoff(self, base: timedelta, n: int) -> timedelta:
        return min(base * 2 ** (n - 1), BACKOFF_MAX) * (0.5 + self.rng())

    def _account_backoff(self, account: Account) -> None:
        """A circuit breaker: while the platform fails for every post, the whole
        account waits, doubling with each failure in a row, or its other posts
        would each try in the same second. One bad post alone costs the account
        one ``retry_backoff`` at most: the next success resets the count."""
        n = self._failures[account.name] = self._failures.get(account.name, 0) + 1
        delay = self._backoff(account.config.retry_backoff, n)
        self.store.wait_until(account.name, self.clock() + delay, "backing off after failed attempts")

    @staticmethod
    def _duplicate(account: Account, row, post: Post, exc: AlreadyPosted) -> Receipt:
        """What the platform has for a post it called a duplicate: the id the
        error named (with its URL when the error carries one), else the one a
        lookup finds, else the id "duplicate" and no URL."""
        if exc.platform_id:
            return Receipt(platform_id=exc.platform_id, url=getattr(exc, "url", None))
        try:
            receipt = account.adapter.find_recent(post, _since(row))
        except PublishError:
            receipt = None
        return receipt or Receipt(platform_id="duplicate")

    @staticmethod
    def _already_there(account: Account, row, post: Post) -> Receipt | None:
        """Before sending again a post whose earlier try failed, look for it on
        the platform: a timeout may have hidden a success. Raises PublishError."""
        if not (row.attempts or row.last_error):  # a manual retry resets attempts, not the error
            return None
        receipt = account.adapter.find_recent(post, _since(row))
        if receipt:
            log.info("account %s: post %s was already on the platform (id %s); not sent again",
                     account.name, row.id, receipt.platform_id, extra=_about(account, row))
        return receipt

    def _settled(self, account: Account, row, outcome: str) -> None:
        """Tell the observer (not imported: the publisher needs no Prometheus).
        First sight is the article's ``first_seen_at`` when the row carries it,
        else its queue time, which is the item's first sight until a retry."""
        if self.observer is not None:
            first_seen = getattr(row, "first_seen_at", None) or row.queued_at
            self.observer.settled(account.name, account.config.platform, outcome, first_seen)

    # -- after a crash -----------------------------------------------------------

    def _reconcile(self, account: Account) -> None:
        """Settle posts another process left in ``sending``: the platform may or
        may not have them. Found on the platform → sent; not found → pending.
        One that cannot be looked up now stays ``sending`` until a later pass;
        the account's other posts go on meanwhile, since the lookup searches
        everything posted since the orphan's first try, however much that is."""
        for row in self.store.queue(account.name, ("sending",)):
            if self._orphan(account, row):
                self._settle(account, row)

    def _orphan(self, account: Account, row) -> bool:
        """Whether nobody will record this claim's outcome, and no call of its
        claimer can still land. Our own claims are from earlier passes (one
        pass runs at a time): the database failed to record them. With the
        instance lock every other claimer is dead. Sharing a database without
        leases (a read-only command), a claim older than CLAIM_LEASE is.

        With leases, a claimer starts no call once its lease has run out
        (``_call``), so its calls have ended one call (plus the clocks'
        disagreement) after that: after this worker took the account (the
        claim is older, fenced by the lease), or after the claimer's last beat
        plus ``ttl`` (a ``once`` run takes its leases anew each time)."""
        if row.claimed_by == self.worker or self.exclusive:
            return True
        if self.leases is None:
            return row.claimed_at <= self.clock() - CLAIM_LEASE
        now = self.clock()
        ended = now - account.adapter.longest_call() - HOST_SKEW
        taken = self.leases.taken_at(account.name)
        if taken is not None and taken <= ended:
            return True
        beat, ttl = self.leases.last_beat(row.claimed_by), self.leases.ttl
        if beat is None:   # its row is gone: a stop (a fatal one need not wait for its
            # pass) or dead for an hour; judged as without leases
            return row.claimed_at <= min(now - CLAIM_LEASE, ended - ttl)
        return row.claimed_at <= ended - ttl and beat <= ended - ttl

    def _settle(self, account: Account, row) -> None:
        """Look one orphan up on the platform and record what that showed."""
        try:
            receipt = account.adapter.find_recent(self._post(account, row), _since(row))
        except Rejected as exc:
            # The lookup is unavailable (an X tier without timelines): never guess.
            if not self.store.mark_failed(row.id, f"outcome unknown after a restart, and the "
                                          f"platform cannot be asked ({exc.message}); check it, "
                                          "then retry or skip", claim=row.claimed_by):
                self._taken_over(account, row)
                return
            self._settled(account, row, "failed")
            log.error("account %s: post %s may or may not be on the platform; marked failed",
                      account.name, row.id, extra=_about(account, row))
            return
        except PublishError as exc:
            self._lookup_failed(account, row, exc)
            return
        self._record_lookup(account, row, receipt)

    def _lookup_failed(self, account: Account, row, exc: PublishError) -> None:
        """The orphan stays ``sending`` (never guess); pause the account when the
        platform said so, since its other sends would meet the same answer."""
        if _hold_label(exc):
            self._hold(account, exc)
        log.warning("account %s: cannot check post %s after a restart (%s); will retry",
                    account.name, row.id, exc.message or type(exc).__name__, extra=_about(account, row))

    def _record_lookup(self, account: Account, row, receipt: Receipt | None) -> None:
        if receipt:
            self.store.mark_sent(row.id, receipt.platform_id, url=receipt.url,
                                 note="found on the platform after a restart")
            self._settled(account, row, "sent")
            log.info("account %s: post %s found on the platform after a restart, id %s",
                     account.name, row.id, receipt.platform_id, extra=_about(account, row))
        else:
            if not self.store.release(row.id, "outcome unknown after a restart; not on the "
                                      "platform", count_attempt=False, claim=row.claimed_by):
                self._taken_over(account, row)
                return
            log.info("account %s: post %s not on the platform after a restart; will send it",
                     account.name, row.id, extra=_about(account, row))


# Answers about the account rather than one post, and how a held post says so.
HOLDS = ((AuthFailed, "auth failed"), (Suspended, "account suspended"), (RateLimited, "rate limited"))


def _about(account: Account, row=None) -> dict:
    """A log record's fields (bot.logs.CONTEXT): the account and its platform, and
    the outbox id when the line is about one post, so JSON lines can be searched."""
    fields = {"account": account.name, "platform": account.config.platform}
    if row is not None:
        fields["post"] = row.id
    return fields


def _hold_label(exc: PublishError) -> str | None:
    return next((label for kind, label in HOLDS if isinstance(exc, kind)), None)


def _has_link(post: Post) -> bool:
    """Whether X bills ``post`` as a post with a link (as Store.sent_since reads it)."""
    return bool(post.link and post.link in post.text)


def _since(row) -> datetime:
    """How far back find_recent must search for a row: its first try (the
    post cannot be on the platform before), less CLOCK_SKEW. A row never
    claimed has no first try; its queue time is then as early."""
    return (row.first_tried_at or row.queued_at) - CLOCK_SKEW
