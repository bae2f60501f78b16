"""Per-account posting schedules: when each queued post may go out.

The planner is pure: no database, no clock, no I/O. Each publish pass the
publisher hands over one account's queue, the times it already sent (from the
database, so a restart does not reset the caps) and ``now``; ``due`` answers
what to skip and what to send. ``plan`` is the same computation shown whole,
so ``herald status`` shows exactly the plan that will be executed.

Time is aware UTC at the boundary. Gaps and caps count elapsed time; windows
are wall-clock times in ``schedule.timezone``, so "07:00-22:00" means 07:00 to
22:00 local time on both sides of a daylight-saving change.
"""
from __future__ import annotations

import bisect
import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.budget import Quota, month_after, month_start
from bot.configtypes import Schedule, Window


UTC = timezone.utc
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
PLAN_HORIZON = timedelta(days=2)   # how far plan() simulates the queue by default
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
REASONS = ("due", "gap", "jitter", "pacing", "hourly cap", "daily cap", "window", "retry",
           "paused", "expired", "budget")


@dataclass(frozen=True)
class Queued:
    """A post waiting in one account's queue, as the planner needs to see it."""

    key: str                 # outbox id, stable
    queued_at: datetime      # when the post entered the queue (aware UTC)
    published: datetime | None  # the article's publication time, for order newest/oldest
    priority: int = 0
    not_before: datetime | None = None  # e.g. retry back-off for this post


@dataclass(frozen=True)
class Slot:
    """When a queued post goes out (``at``, aware UTC) and why not earlier.

    ``at`` is None when the post will not be sent by this plan; see ``plan``."""

    key: str
    at: datetime | None
    reason: str


# ---------------------------------------------------------------- planning


def plan(schedule: Schedule | None, queue: Sequence[Queued], sent: Sequence[datetime],
         now: datetime, *, paused_until: datetime | None = None,
         horizon: timedelta = PLAN_HORIZON, quota: Quota | None = None) -> list[Slot]:
    """Plan one account's queue; one Slot per queued post, in send order.

    The queue is ranked by priority (highest first), then by ``schedule.order``
    on ``published`` (``queued_at`` when unknown), then ``queued_at``, then key.
    Sending is simulated one post at a time, each at the earliest instant that
    is not before ``now``, ``paused_until`` or its ``not_before``, is at least
    ``min_gap`` plus the post's jitter (``jitter_for``) after the latest send
    (``sent`` first, then the simulated ones), keeps at most ``max_per_hour``
    sends in any trailing hour and ``max_per_day`` in any trailing 24 h
    (``sent`` included), lies in a window and fits the ``quota`` (reason
    "budget": it lifts when the month resets). ``reason`` names the constraint
    that set the time ("due": nothing held it back).

    Pacing: when more posts wait than ``max_per_day`` still allows in the
    trailing 24 h, the gap grows to the open window time of an average day
    divided by ``max_per_day``, so a burst is spread over the day instead of
    using up the daily cap in the morning (and leaving nothing for the news
    of the afternoon). With fewer posts waiting, ``min_gap`` alone applies.

    A post in retry back-off keeps its rank if its ``not_before`` ends before
    the next send could happen with the largest jitter; otherwise the next
    eligible post goes first. This choice does not depend on ``now`` up to the
    first planned send, so the plan holds between two passes; a send recorded
    later than planned shifts the rest. Gap and jitter apply only after a send.

    Expiry (``expire_after``, counted from ``queued_at``): a post already past
    its expiry at ``now`` gets ``at=None, reason="expired"`` (``due`` skips
    it). A post whose planned time would fall after its expiry gets ``at=None``
    and the reason that delays it; it takes no slot, so the posts behind it
    move up, and it turns "expired" once its expiry passes. Nothing is skipped
    before its expiry: a shorter queue or a new config may still reach it.

    The first post planned beyond ``now + horizon`` keeps its computed time;
    the rest get ``at=None`` and that post's reason. With no schedule (None)
    posts go as soon as they are due, with no gap, cap, window or expiry.
    Raises ValueError for naive datetimes or an unknown ``order``.
    """
    return Backlog(schedule, queue, sent, paused_until=paused_until, quota=quota).plan(now, horizon)


def due(schedule: Schedule | None, queue: Sequence[Queued], sent: Sequence[datetime],
        now: datetime, *, paused_until: datetime | None = None,
        quota: Quota | None = None) -> tuple[list[Slot], Slot | None]:
    """What the publisher does at ``now``: (expired slots to skip now, the one
    slot to send now or None). Call again after each send to get the next;
    a pass sending many posts keeps one ``Backlog`` instead."""
    return Backlog(schedule, queue, sent, paused_until=paused_until, quota=quota).due(now)


class Backlog:
    """One account's queue ranked once, for a pass that sends many posts.

    ``due(now)`` gives what ``due()`` would for the same queue and sends, but
    simulates only up to the first post that gets a slot (the plan's first
    slot is the only one that can be due) and drops expired posts as ``now``
    passes their expiry, so each call costs O(log n) a post looked at, not a
    whole plan. Tell it of each outcome: ``sent(key, at)`` after a send,
    ``drop(key)`` for a post that left the queue otherwise. ``now`` must not
    go back between calls; anything else that changes (a back-off, a pause)
    needs a new Backlog."""

    def __init__(self, schedule: Schedule | None, queue: Sequence[Queued],
                 sent: Sequence[datetime], *, paused_until: datetime | None = None,
                 quota: Quota | None = None):
        self.schedule = _rules(schedule)
        self.posts = sorted((_normalised(q) for q in queue), key=_rank(self.schedule.order))
        self.where = {q.key: i for i, q in enumerate(self.posts)}
        self.base = [_micros(q.not_before) if q.not_before else READY for q in self.posts]
        self.tree = _MinTree(self.base)
        self.left = len(self.posts)
        self.history = sorted(_utc(s) for s in sent)
        self.paused = _utc(paused_until) if paused_until else None
        self.quota = quota
        self._expiry = sorted(range(len(self.posts)), key=lambda i: self.posts[i].queued_at)
        self._checked = 0     # posts of _expiry already looked at for expiry

    def due(self, now: datetime) -> tuple[list[Slot], Slot | None]:
        """(expired slots, to skip now and forgotten here; the slot to send now or None)."""
        now = _utc(now)
        skip = self._expire(now)
        sim = self._simulation(now, self.tree, list(self.history))   # a copy: cheap, and a query
        taken: list[int] = []
        try:
            while sim.left:
                index, at, reason = sim.next()
                taken.append(index)
                if at is not None:   # later slots are never earlier: only this one can be due
                    return skip, (Slot(self.posts[index].key, at, reason) if at <= now else None)
            return skip, None
        finally:
            for index in taken:   # a query: the posts stay queued
                self.tree.set(index, self.base[index])

    def plan(self, now: datetime, horizon: timedelta = PLAN_HORIZON) -> list[Slot]:
        """The whole plan at ``now`` (see ``plan()``); changes nothing here."""
        now = _utc(now)
        tree = self.tree.copy()
        expired = [i for i in range(len(self.posts))
                   if self.base[i] != GONE and _deadline(self.posts[i], self.schedule) < now]
        for index in expired:
            tree.set(index, GONE)
        sim = self._simulation(now, tree, list(self.history), self.left - len(expired))
        return [Slot(self.posts[i].key, None, "expired") for i in expired] + sim.run(now + horizon)

    def sent(self, key: str, at: datetime) -> None:
        """``key`` went out at ``at``: it leaves the queue and counts for gaps and caps."""
        if self._forget(key):
            bisect.insort(self.history, _utc(at))
            if self.quota is not None:
                self.quota = replace(self.quota, left=self.quota.left - 1)

    def drop(self, key: str) -> None:
        """``key`` left the queue without a send (failed, skipped, taken by another worker)."""
        self._forget(key)

    def _forget(self, key: str) -> bool:
        index = self.where.get(key)
        if index is None or self.base[index] == GONE:
            return False
        self.base[index] = GONE
        self.tree.set(index, GONE)
        self.left -= 1
        return True

    def _expire(self, now: datetime) -> list[Slot]:
        """The posts past their expiry at ``now`` not yet reported, in rank order."""
        gone: list[int] = []
        while (self._checked < len(self._expiry) and
               _deadline(self.posts[self._expiry[self._checked]], self.schedule) < now):
            index = self._expiry[self._checked]
            self._checked += 1
            if self.base[index] != GONE:
                gone.append(index)
        gone.sort()
        for index in gone:
            self._forget(self.posts[index].key)
        return [Slot(self.posts[i].key, None, "expired") for i in gone]

    def _simulation(self, now: datetime, tree: _MinTree, history: list[datetime],
                    left: int | None = None) -> _Simulation:
        return _Simulation(self.schedule, ZoneInfo(self.schedule.timezone), now, self.paused,
                           history, self.posts, tree, self.left if left is None else left,
                           self.quota)


def jitter_for(key: str, jitter: timedelta) -> timedelta:
    """The extra gap for the post ``key``: whole seconds from 0 to ``jitter``,
    derived from a hash of the key, so every pass computes the same one."""
    span = int(jitter.total_seconds())
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (span + 1))


# A post's value in the tree: its back-off end in microseconds, READY when it
# has none, GONE once it left the queue (or, while simulating, took its turn).
READY = -math.inf
GONE = math.inf


class _MinTree:
    """The minimum of a list of numbers, kept as they change, and the first
    position holding at most a value: each in O(log n)."""

    def __init__(self, values: Sequence[float]):
        self.size = 1 << max(len(values) - 1, 0).bit_length()
        self.nodes = [GONE] * (2 * self.size)
        self.nodes[self.size:self.size + len(values)] = values
        for i in range(self.size - 1, 0, -1):
            self.nodes[i] = min(self.nodes[2 * i], self.nodes[2 * i + 1])

    def copy(self) -> _MinTree:
        other = _MinTree(())
        other.size, other.nodes = self.size, list(self.nodes)
        return other

    def set(self, position: int, value: float) -> None:
        i = position + self.size
        self.nodes[i] = value
        while i > 1:
            i //= 2
            self.nodes[i] = min(self.nodes[2 * i], self.nodes[2 * i + 1])

    def min(self) -> float:
        return self.nodes[1]

    def first_at_most(self, value: float) -> int:
        """The first position whose number is at most ``value`` (one must be)."""
        i = 1
        while i < self.size:
            i = 2 * i if self.nodes[2 * i] <= value else 2 * i + 1
        return i - self.size


@dataclass
class _Simulation:
    """Sends one account's queue in simulated time; ``history`` grows as it goes.

    ``tree`` holds the posts still waiting (by rank position); taking a turn
    marks a post GONE in it, so the owner restores what it must keep."""

    schedule: Schedule
    tz: ZoneInfo
    now: datetime
    paused: datetime | None
    history: list[datetime]      # sorted send times, real then simulated
    posts: list[Queued]          # ranked
    tree: _MinTree
    left: int                    # posts still waiting
    quota: Quota | None = None
    planned: list[datetime] = field(default_factory=list)   # simulated sends, in order

    def run(self, limit: datetime) -> list[Slot]:
        """Every waiting post's slot, in send order (see ``plan()``)."""
        slots: list[Slot] = []
        while self.left:
            index, at, reason = self.next()
            slots.append(Slot(self.posts[index].key, at, reason))
            if at is not None and at > limit:
                rest = [i for i in range(len(self.posts)) if self.tree.nodes[i + self.tree.size] != GONE]
                return slots + [Slot(self.posts[i].key, None, reason) for i in rest]
        return slots

    def next(self) -> tuple[int, datetime | None, str]:
        """Take the next post's turn: (its rank position, its time, why). A
        time of None (never, or past its expiry) takes no slot."""
        index = self.choose()
        post, backlog = self.posts[index], self.left
        self.tree.set(index, GONE)
        self.left -= 1
        at, reason = self.earliest(post, backlog)
        if at is None or at > _deadline(post, self.schedule):
            return index, None, reason
        bisect.insort(self.history, at)
        self.planned.append(at)
        return index, at, reason

    def choose(self) -> int:
        """The best-ranked post whose back-off ends by the next possible send.

        That moment assumes the largest jitter, so it is never before the
        chosen post's own time: a later ``now``, up to that time, yields the
        same choice, and the plan shown is the plan executed."""
        lowest = self.tree.min()
        floor = None if lowest == READY else _from_micros(lowest)   # else someone is always ready
        bounds = [self.now, self.paused, floor, self.gap_end(self.schedule.jitter),
                  self.pace_end(self.left)]
        anchor, _ = self.fit(max(b for b in bounds if b is not None), "due")
        if anchor is None:   # nothing can ever be sent: the order is the rank
            return self.tree.first_at_most(sys.float_info.max)   # any post not GONE
        return self.tree.first_at_most(_micros(anchor))

    def earliest(self, post: Queued, backlog: int = 1) -> tuple[datetime | None, str]:
        """When ``post`` can go after the sends so far, with ``backlog`` posts
        (this one included) still to send, and why not sooner."""
        extra = jitter_for(post.key, self.schedule.jitter)
        bounds = [(self.now, "due"), (self.paused, "paused"), (post.not_before, "retry"),
                  (self.gap_end(timedelta(0)), "gap"), (self.gap_end(extra), "jitter"),
                  (self.pace_end(backlog), "pacing")]
        # max() keeps the first of equal times, so "due" wins a tie with "gap"
        at, reason = max(((t, r) for t, r in bounds if t is not None), key=lambda b: b[0])
        return self.fit(at, reason)

    def pace_end(self, backlog: int) -> datetime | None:
        """The paced gap's end when the backlog exceeds what today's cap allows."""
        cap = self.schedule.max_per_day
        if cap is None or cap <= 0 or not self.history:
            return None
        last = self.history[-1]
        used = len(self.history) - bisect.bisect_right(self.history, last - DAY)
        if backlog <= cap - used:
            return None
        pace = _open_time_per_day(self.schedule.windows) / cap
        return last + pace if pace > self.schedule.min_gap else None

    def gap_end(self, extra: timedelta) -> datetime | None:
        if not self.history:
            return None
        return self.history[-1] + self.schedule.min_gap + extra

    def fit(self, at: datetime, reason: str) -> tuple[datetime | None, str]:
        """Move ``at`` forward until the windows and both caps allow it.

        Returns (None, reason) when a constraint can never be met."""
        steps: list[tuple[str, Callable[[datetime], datetime | None]]] = [
            ("window", self.open_at),
            ("hourly cap", lambda t: _cap(self.history, t, HOUR, self.schedule.max_per_hour)),
            ("daily cap", lambda t: _cap(self.history, t, DAY, self.schedule.max_per_day)),
            ("budget", self.budget_at)]
        moved = True
        while moved:
            moved = False
            for name, step in steps:
                later = step(at)
                if later is None:
                    return None, name
                if later > at:
                    at, reason, moved = later, name, True
        return at, reason

    def open_at(self, at: datetime) -> datetime | None:
        """``at`` if a window is open then, else the next opening (None: never)."""
        windows = self.schedule.windows
        if window_contains(windows, self.tz, at):
            return at
        try:
            return next_window_start(windows, self.tz, at)
        except ValueError:
            return None

    def budget_at(self, at: datetime) -> datetime | None:
        """``at`` if the quota has room for one more send then, else when it
        does (a month's start; None: never)."""
        quota = self.quota
        if quota is None:
            return at
        while True:
            if at < quota.resets:
                used, room, ends = bisect.bisect_left(self.planned, quota.resets), quota.left, quota.resets
            else:
                start, ends = month_start(at), month_after(at)
                used = bisect.bisect_left(self.planned, ends) - bisect.bisect_left(self.planned, start)
                room = quota.monthly
            if used < room:
                return at
            if quota.monthly <= 0:
                return None
            at = ends


def _cap(history: list[datetime], at: datetime, span: timedelta,
         cap: int | None) -> datetime | None:
    """Earliest time from ``at`` with fewer than ``cap`` sends in the trailing ``span``."""
    if cap is None:
        return at
    if cap <= 0:
        return None
    first = bisect.bisect_right(history, at - span)
    count = len(history) - first
    if count < cap:
        return at
    # the oldest (count - cap + 1) sends in the span must age out of it
    return history[first + count - cap] + span


def _open_time_per_day(windows: Sequence[Window]) -> timedelta:
    """Average open time per day over a week (24 h with no windows)."""
    if not windows:
        return DAY
    total = timedelta(0)
    for window in windows:
        start = timedelta(hours=window.start.hour, minutes=window.start.minute)
        end = timedelta(hours=window.end.hour, minutes=window.end.minute)
        total += ((end - start) % DAY or DAY) * len(window.days)
    return min(total / 7, DAY)


def _rank(order: str) -> Callable[[Queued], tuple]:
    if order not in ("newest", "oldest"):
        raise ValueError(f"unknown order {order!r} (expected newest or oldest)")
    sign = -1 if order == "newest" else 1
    return lambda q: (-q.priority, sign * (q.published or q.queued_at).timestamp(),
                      q.queued_at, q.key)


def _deadline(post: Queued, schedule: Schedule) -> datetime:
    if schedule.expire_after is None:
        return datetime.max.replace(tzinfo=UTC)
    return post.queued_at + schedule.expire_after


def _rules(schedule: Schedule | None) -> Schedule:
    if schedule is not None:
        return schedule
    # Imported here: bot.config may import this module for parse_window.
    return Schedule()


def _normalised(post: Queued) -> Queued:
    times = (post.queued_at, post.published, post.not_before)
    if all(t is None or t.tzinfo is UTC for t in times):   # the store's: a copy costs more than the check
        return post
    return replace(post, queued_at=_utc(post.queued_at),
                   published=_utc(post.published) if post.published else None,
                   not_before=_utc(post.not_before) if post.not_before else None)


def _micros(at: datetime) -> int:
    """Exact microseconds since the epoch (floats would round at the edges)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: float) -> datetime:
    return EPOCH + timedelta(microseconds=int(micros))


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


# ---------------------------------------------------------------- windows


def window_contains(windows: Sequence[Window], tz: ZoneInfo, at: datetime) -> bool:
    """Whether ``at`` falls in one of ``windows``, read as wall-clock times in ``tz``.

    Start is inside, end is outside (07:00-22:00 holds 07:00, not 22:00). A
    window with ``end <= start`` runs past midnight into the next day, which
    need not be one of its days. No windows at all means any time (True)."""
    if not windows:
        return True
    local = at.astimezone(tz)
    return any(_holds(w, local.weekday(), local.time()) for w in windows)


def _holds(window: Window, day: int, clock: time) -> bool:
    if window.start < window.end:
        return day in window.days and window.start <= clock < window.end
    # crosses midnight: the early hours belong to the window of the day before
    return ((day in window.days and clock >= window.start)
            or ((day - 1) % 7 in window.days and clock < window.end))


def next_window_start(windows: Sequence[Window], tz: ZoneInfo, after: datetime) -> datetime:
    """The first instant strictly after ``after`` at which a window opens (aware UTC).

    A start on a repeated local time (clocks going back) is its first
    occurrence; a start skipped by clocks going forward opens when the clock
    jumps (03:00 CEST for a 02:30 start on the March change in Berlin); a
    window lying wholly inside the skipped hour does not open that day.
    Raises ValueError when no window ever opens."""
    after = _utc(after)
    today = after.astimezone(tz).date()
    starts = (_local_to_utc(datetime.combine(today + timedelta(days=n), w.start), tz)
              for n in range(9) for w in windows if (today + timedelta(days=n)).weekday() in w.days)
    opening = [s for s in starts if s > after and window_contains(windows, tz, s)]
    if not opening:
        raise ValueError("no posting window ever opens (a window needs at least one day)")
    return min(opening)


def _local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall-clock time in ``tz`` reaches naive ``wall``."""
    first = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the earlier of a repeated time
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # ``wall`` was skipped by a forward change: find the jump, to the second
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
