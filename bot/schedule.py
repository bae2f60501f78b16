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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.configtypes import Schedule, Window


UTC = timezone.utc
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
REASONS = ("due", "gap", "jitter", "pacing", "hourly cap", "daily cap", "window", "retry",
           "paused", "expired")


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
         horizon: timedelta = timedelta(days=2)) -> list[Slot]:
    """Plan one account's queue; one Slot per queued post, in send order.

    The queue is ranked by priority (highest first), then by ``schedule.order``
    on ``published`` (``queued_at`` when unknown), then ``queued_at``, then key.
    Sending is simulated one post at a time, each at the earliest instant that
    is not before ``now``, ``paused_until`` or its ``not_before``, is at least
    ``min_gap`` plus the post's jitter (``jitter_for``) after the latest send
    (``sent`` first, then the simulated ones), keeps at most ``max_per_hour``
    sends in any trailing hour and ``max_per_day`` in any trailing 24 h
    (``sent`` included), and lies in a window. ``reason`` names the constraint
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
    schedule = _rules(schedule)
    now = _utc(now)
    ranked = sorted((_normalised(q) for q in queue), key=_rank(schedule.order))
    expired = [Slot(q.key, None, "expired") for q in ranked if _deadline(q, schedule) < now]
    waiting = [q for q in ranked if _deadline(q, schedule) >= now]
    sim = _Simulation(schedule, ZoneInfo(schedule.timezone), now,
                      _utc(paused_until) if paused_until else None,
                      sorted(_utc(s) for s in sent))
    return expired + sim.run(waiting, now + horizon)


def due(schedule: Schedule | None, queue: Sequence[Queued], sent: Sequence[datetime],
        now: datetime, *, paused_until: datetime | None = None) -> tuple[list[Slot], Slot | None]:
    """What the publisher does at ``now``: (expired slots to skip now, the one
    slot to send now or None). Call again after each send to get the next."""
    slots = plan(schedule, queue, sent, now, paused_until=paused_until)
    skip = [s for s in slots if s.reason == "expired"]
    send = next((s for s in slots if s.at is not None and s.at <= _utc(now)), None)
    return skip, send


def jitter_for(key: str, jitter: timedelta) -> timedelta:
    """The extra gap for the post ``key``: whole seconds from 0 to ``jitter``,
    derived from a hash of the key, so every pass computes the same one."""
    span = int(jitter.total_seconds())
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (span + 1))


@dataclass
class _Simulation:
    """Sends one account's queue in simulated time; ``history`` grows as it goes."""

    schedule: Schedule
    tz: ZoneInfo
    now: datetime
    paused: datetime | None
    history: list[datetime]      # sorted send times, real then simulated

    def run(self, waiting: list[Queued], limit: datetime) -> list[Slot]:
        slots: list[Slot] = []
        while waiting:
            post = self.choose(waiting)
            backlog = len(waiting)
            waiting.remove(post)
            at, reason = self.earliest(post, backlog)
            if at is None or at > _deadline(post, self.schedule):
                slots.append(Slot(post.key, None, reason))   # never, or too late: takes no slot
                continue
            slots.append(Slot(post.key, at, reason))
            bisect.insort(self.history, at)
            if at > limit:
                return slots + [Slot(q.key, None, reason) for q in waiting]
        return slots

    def choose(self, waiting: list[Queued]) -> Queued:
        """The best-ranked post whose back-off ends by the next possible send.

        That moment assumes the largest jitter, so it is never before the
        chosen post's own time: a later ``now``, up to that time, yields the
        same choice, and the plan shown is the plan executed."""
        backoffs = [q.not_before for q in waiting]
        floor = min(backoffs) if None not in backoffs else None   # someone is always ready
        bounds = [self.now, self.paused, floor, self.gap_end(self.schedule.jitter),
                  self.pace_end(len(waiting))]
        anchor, _ = self.fit(max(b for b in bounds if b is not None), "due")
        if anchor is None:
            return waiting[0]
        return next(q for q in waiting if q.not_before is None or q.not_before <= anchor)

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
            ("daily cap", lambda t: _cap(self.history, t, DAY, self.schedule.max_per_day))]
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
    return replace(post, queued_at=_utc(post.queued_at),
                   published=_utc(post.published) if post.published else None,
                   not_before=_utc(post.not_before) if post.not_before else None)


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
