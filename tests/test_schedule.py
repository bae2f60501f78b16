"""bot/schedule.py: the pure posting planner. Every time is injected; the real
clock is never read."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budget import Quota
from bot.config import Schedule, Window, parse_window
from bot.schedule import (Backlog, Queued, Slot, due, jitter_for, next_window_start,
                          plan, window_contains)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
MIN = timedelta(minutes=1)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)   # a Wednesday


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def q(key, queued=NOW, published=None, **kw) -> Queued:
    return Queued(key=key, queued_at=queued, published=published, **kw)


def burst(n, queued=NOW) -> list[Queued]:
    """``n`` posts queued a minute apart up to ``queued``; post-00 is the oldest."""
    return [q(f"post-{i:02d}", queued - (n - 1 - i) * MIN) for i in range(n)]


def times(slots):
    return [s.at for s in slots]


# ---------------------------------------------------------------- no schedule


def test_no_schedule_sends_everything_now_in_rank_order():
    slots = plan(None, [q("b", NOW - MIN), q("a", NOW - 2 * MIN)], [NOW - MIN], NOW)
    assert slots == [Slot("a", NOW, "due"), Slot("b", NOW, "due")]
    assert due(None, [q("b", NOW - MIN), q("a", NOW - 2 * MIN)], [], NOW) == ([], slots[0])


def test_empty_queue():
    assert plan(Schedule(), [], [], NOW) == []
    assert due(Schedule(), [], [], NOW) == ([], None)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        plan(None, [], [], datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        plan(None, [q("a", datetime(2026, 1, 1))], [], NOW)


def test_other_time_zones_come_back_as_utc():
    slots = plan(None, [q("a")], [], NOW.astimezone(BERLIN))
    assert slots[0].at == NOW and slots[0].at.tzinfo is UTC


# ---------------------------------------------------------------- gap and jitter


def test_min_gap_counts_from_the_last_real_send():
    rules = Schedule(min_gap=10 * MIN)
    slots = plan(rules, burst(3), [NOW - 4 * MIN], NOW)
    assert times(slots) == [NOW + 6 * MIN, NOW + 16 * MIN, NOW + 26 * MIN]
    assert {s.reason for s in slots} == {"gap"}


def test_gap_already_over_means_due_now():
    slots = plan(Schedule(min_gap=10 * MIN), burst(1), [NOW - 10 * MIN], NOW)
    assert slots == [Slot("post-00", NOW, "due")]


def test_jitter_bounds_and_stability():
    jitter = 5 * MIN
    values = [jitter_for(f"outbox-{i}", jitter) for i in range(500)]
    assert all(timedelta(0) <= v <= jitter for v in values)
    assert values == [jitter_for(f"outbox-{i}", jitter) for i in range(500)]
    assert len(set(values)) > 100           # spread out, not a constant
    assert max(values) > 4 * MIN and min(values) < MIN
    assert jitter_for("outbox-1", timedelta(0)) == timedelta(0)


def test_plan_gaps_lie_between_gap_and_gap_plus_jitter():
    rules = Schedule(min_gap=10 * MIN, jitter=5 * MIN)
    slots = plan(rules, burst(20), [NOW - MIN], NOW)
    sends = [NOW - MIN] + times(slots)
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert all(10 * MIN <= g <= 15 * MIN for g in gaps)
    for slot, gap in zip(slots, gaps):      # each post's own jitter, derived from its key
        assert gap == 10 * MIN + jitter_for(slot.key, 5 * MIN)
        assert slot.reason == ("jitter" if gap > 10 * MIN else "gap")


def test_plan_does_not_change_while_waiting_for_the_first_send():
    rules = Schedule(min_gap=10 * MIN, jitter=5 * MIN, max_per_hour=4)
    queue = burst(8) + [q("retry", priority=5, not_before=NOW + 12 * MIN)]
    sent = [NOW - 2 * MIN]
    first = plan(rules, queue, sent, NOW)
    for later in (NOW + MIN, NOW + 9 * MIN, first[0].at - timedelta(seconds=1)):
        assert plan(rules, queue, sent, later) == first
    # at its own time the first post is simply "due"; nothing else moves
    assert plan(rules, queue, sent, first[0].at) == [replace(first[0], reason="due"), *first[1:]]


# ---------------------------------------------------------------- caps


def test_hourly_cap_continues_across_a_restart():
    rules = Schedule(max_per_hour=3)
    sent = [NOW - 50 * MIN, NOW - 30 * MIN, NOW - 10 * MIN]
    assert plan(rules, burst(1), [], NOW)[0] == Slot("post-00", NOW, "due")
    slots = plan(rules, burst(4), sent, NOW)
    assert slots[0] == Slot("post-00", NOW + 10 * MIN, "hourly cap")
    assert times(slots) == [NOW + 10 * MIN, NOW + 30 * MIN, NOW + 50 * MIN, NOW + 70 * MIN]


def test_daily_cap_continues_across_a_restart():
    rules = Schedule(max_per_day=17)
    first = NOW - timedelta(hours=20)
    sent = [first + i * 10 * MIN for i in range(17)]
    assert due(rules, burst(1), sent, NOW) == ([], None)
    lifts = first + timedelta(days=1)                # the oldest of the 17 leaves the 24 h
    assert plan(rules, burst(1), sent, NOW) == [Slot("post-00", lifts, "daily cap")]
    assert plan(rules, burst(1), sent[1:], NOW) == [Slot("post-00", NOW, "due")]


def test_a_cap_of_zero_never_sends():
    slots = plan(Schedule(max_per_day=0), burst(2), [], NOW)
    assert slots == [Slot("post-00", None, "daily cap"), Slot("post-01", None, "daily cap")]


# ---------------------------------------------------------------- windows


DAY_WINDOW = Window(days=frozenset(range(7)), start=time(7), end=time(22))


def test_window_edges_start_in_end_out():
    windows = (DAY_WINDOW,)
    assert window_contains(windows, UTC, at(2026, 11, 25, 7, 0))
    assert not window_contains(windows, UTC, at(2026, 11, 25, 6, 59, 59))
    assert window_contains(windows, UTC, at(2026, 11, 25, 21, 59, 59))
    assert not window_contains(windows, UTC, at(2026, 11, 25, 22, 0))
    assert window_contains((), UTC, at(2026, 11, 25, 3, 0))     # no windows: any time


def test_window_days_are_local_days():
    weekdays = (parse_window("mon-fri 07:00-22:00"),)
    assert window_contains(weekdays, UTC, at(2026, 11, 27, 12))      # Friday
    assert not window_contains(weekdays, UTC, at(2026, 11, 28, 12))  # Saturday
    # Friday 23:30 UTC is already Saturday 00:30 in Berlin
    late = (parse_window("fri 20:00-24:00"),)
    assert window_contains(late, UTC, at(2026, 11, 27, 23, 30))
    assert not window_contains(late, BERLIN, at(2026, 11, 27, 23, 30))


def test_window_crossing_midnight():
    night = (parse_window("fri 22:00-02:00"),)
    assert window_contains(night, UTC, at(2026, 11, 27, 22, 0))     # Friday 22:00
    assert window_contains(night, UTC, at(2026, 11, 28, 1, 59))     # Saturday 01:59
    assert not window_contains(night, UTC, at(2026, 11, 28, 2, 0))
    assert not window_contains(night, UTC, at(2026, 11, 27, 1, 0))  # Friday early: Thursday's
    assert not window_contains(night, UTC, at(2026, 11, 28, 23, 0))
    assert next_window_start(night, UTC, at(2026, 11, 28, 1, 0)) == at(2026, 12, 4, 22, 0)


def test_next_window_start_is_strictly_after():
    windows = (DAY_WINDOW,)
    assert next_window_start(windows, UTC, at(2026, 11, 25, 6, 0)) == at(2026, 11, 25, 7)
    assert next_window_start(windows, UTC, at(2026, 11, 25, 7, 0)) == at(2026, 11, 26, 7)
    with pytest.raises(ValueError, match="no posting window ever opens"):
        next_window_start((Window(frozenset(), time(7), time(8)),), UTC, NOW)


def test_plan_waits_for_the_window():
    rules = Schedule(windows=(DAY_WINDOW,), min_gap=10 * MIN)
    slots = plan(rules, burst(2), [], at(2026, 11, 25, 21, 55))
    assert slots == [Slot("post-00", at(2026, 11, 25, 21, 55), "due"),
                     Slot("post-01", at(2026, 11, 26, 7, 0), "window")]


# ---------------------------------------------------------------- DST (Europe/Berlin, 2026)


@pytest.mark.parametrize("before, opens, closes", [
    # spring forward on Sunday 29 March: 07:00 is 06:00 UTC on Saturday, 05:00 UTC on Sunday
    (at(2026, 3, 28, 21, 30), at(2026, 3, 29, 5, 0), at(2026, 3, 29, 20, 0)),
    (at(2026, 3, 27, 21, 30), at(2026, 3, 28, 6, 0), at(2026, 3, 28, 21, 0)),
    # fall back on Sunday 25 October: 07:00 is 05:00 UTC on Saturday, 06:00 UTC on Sunday
    (at(2026, 10, 24, 20, 30), at(2026, 10, 25, 6, 0), at(2026, 10, 25, 21, 0)),
    (at(2026, 10, 23, 20, 30), at(2026, 10, 24, 5, 0), at(2026, 10, 24, 20, 0)),
])
def test_dst_keeps_wall_clock_windows(before, opens, closes):
    windows = (parse_window("daily 07:00-22:00"),)
    assert next_window_start(windows, BERLIN, before) == opens
    assert opens.astimezone(BERLIN).time() == time(7)
    assert not window_contains(windows, BERLIN, opens - timedelta(seconds=1))
    assert window_contains(windows, BERLIN, opens)
    assert window_contains(windows, BERLIN, closes - timedelta(seconds=1))
    assert not window_contains(windows, BERLIN, closes)
    rules = Schedule(windows=windows, timezone="Europe/Berlin")
    assert plan(rules, burst(1, before), [], before) == [Slot("post-00", opens, "window")]


def test_dst_start_inside_the_skipped_hour_opens_at_the_jump():
    skipped = (parse_window("daily 02:30-04:00"),)
    opens = next_window_start(skipped, BERLIN, at(2026, 3, 28, 23, 0))
    assert opens == at(2026, 3, 29, 1, 0)                   # 03:00 CEST, when the clock jumps
    assert window_contains(skipped, BERLIN, opens)
    assert not window_contains(skipped, BERLIN, opens - timedelta(seconds=1))
    inside = (parse_window("sun 02:10-02:40"),)             # wholly skipped that Sunday
    assert next_window_start(inside, BERLIN, at(2026, 3, 28, 23, 0)) == berlin(2026, 4, 5, 2, 10)


def test_dst_repeated_start_opens_at_its_first_occurrence():
    repeated = (parse_window("daily 02:30-04:00"),)
    opens = next_window_start(repeated, BERLIN, at(2026, 10, 24, 22, 0))
    assert opens == at(2026, 10, 25, 0, 30)                 # 02:30 CEST, the first of two
    assert window_contains(repeated, BERLIN, at(2026, 10, 25, 1, 45))   # 02:45 CET, the second


def test_gaps_count_elapsed_time_across_dst():
    rules = Schedule(min_gap=timedelta(hours=1), timezone="Europe/Berlin",
                     windows=(parse_window("daily 00:00-24:00"),))
    start = at(2026, 3, 29, 0, 30)                           # 01:30 CET
    slots = plan(rules, burst(3, start), [], start)
    assert times(slots) == [start, start + timedelta(hours=1), start + timedelta(hours=2)]


# ---------------------------------------------------------------- order, priority, pause, retry


def test_order_oldest_and_newest_by_published_then_queued():
    queue = [q("mid", NOW - 3 * MIN, published=NOW - timedelta(hours=2)),
             q("old", NOW - 1 * MIN, published=NOW - timedelta(hours=3)),
             q("undated", NOW - 90 * MIN),                  # falls back to queued_at
             q("new", NOW - 2 * MIN, published=NOW - timedelta(hours=1))]
    keys = lambda order: [s.key for s in plan(Schedule(order=order), queue, [], NOW)]
    assert keys("oldest") == ["old", "mid", "undated", "new"]
    assert keys("newest") == ["new", "undated", "mid", "old"]
    with pytest.raises(ValueError, match="order"):
        plan(Schedule(order="random"), queue, [], NOW)


def test_priority_goes_first_when_the_queue_is_longer_than_what_fits():
    rules = Schedule(min_gap=10 * MIN, max_per_day=3)
    queue = burst(5) + [q("breaking", NOW, priority=10)]
    slots = plan(rules, queue, [], NOW, horizon=timedelta(days=3))
    assert slots[0] == Slot("breaking", NOW, "due")
    assert [s.key for s in slots[:3]] == ["breaking", "post-00", "post-01"]
    # six posts, three a day: the day's budget is spread, 24 h / 3 apart
    assert slots[1] == Slot("post-00", NOW + timedelta(hours=8), "pacing")
    assert slots[3].at == NOW + timedelta(days=1)


def test_paused_until_holds_every_post():
    rules = Schedule(min_gap=10 * MIN)
    until = NOW + timedelta(hours=2)
    slots = plan(rules, burst(2), [NOW - 5 * MIN], NOW, paused_until=until)
    assert slots == [Slot("post-00", until, "paused"), Slot("post-01", until + 10 * MIN, "gap")]
    assert due(rules, burst(2), [], NOW, paused_until=until) == ([], None)


def test_retry_backoff_lets_others_go_first_without_losing_rank():
    rules = Schedule(min_gap=10 * MIN, jitter=2 * MIN)
    far = [q("urgent", priority=5, not_before=NOW + 25 * MIN)] + burst(5)
    slots = plan(rules, far, [NOW - 20 * MIN], NOW)
    # sends near 12:00, 12:11 and 12:22 cannot wait for 12:25; then urgent jumps the queue
    assert [s.key for s in slots] == ["post-00", "post-01", "post-02", "urgent",
                                      "post-03", "post-04"]
    assert slots[0] == Slot("post-00", NOW, "due")
    assert slots[2].at < NOW + 25 * MIN < slots[3].at
    assert slots[3].at == slots[2].at + 10 * MIN + jitter_for("urgent", 2 * MIN)
    # a back-off that ends before the next send could happen keeps the rank
    near = [q("urgent", priority=5, not_before=NOW + 5 * MIN)] + burst(3)
    slots = plan(rules, near, [NOW - MIN], NOW)
    assert slots[0].key == "urgent" and slots[0].at >= NOW + 9 * MIN
    only = plan(rules, [q("urgent", not_before=NOW + 30 * MIN)], [NOW - MIN], NOW)
    assert only == [Slot("urgent", NOW + 30 * MIN, "retry")]


# ---------------------------------------------------------------- expiry


def test_expired_posts_are_skipped_now():
    rules = Schedule(expire_after=timedelta(hours=1))
    queue = [q("stale", NOW - 61 * MIN), q("fresh", NOW - 59 * MIN)]
    skip, send = due(rules, queue, [], NOW)
    assert skip == [Slot("stale", None, "expired")]
    assert send == Slot("fresh", NOW, "due")


def test_a_post_that_will_expire_takes_no_slot_and_is_not_skipped_early():
    rules = Schedule(expire_after=timedelta(hours=6), windows=(DAY_WINDOW,), min_gap=10 * MIN)
    night = at(2026, 11, 25, 3, 0)                       # window opens at 07:00
    queue = [q("doomed", night - timedelta(hours=5)), q("fresh", night)]
    slots = plan(rules, queue, [], night)
    assert slots == [Slot("doomed", None, "window"), Slot("fresh", at(2026, 11, 25, 7), "window")]
    assert due(rules, queue, [], night) == ([], None)    # not expired yet: nothing skipped
    later = night + timedelta(hours=2)                   # doomed's expiry has passed
    assert plan(rules, queue, [], later) == [Slot("doomed", None, "expired"), slots[1]]
    assert due(rules, queue, [], later)[0] == [Slot("doomed", None, "expired")]


def test_posting_exactly_at_expiry_is_still_in_time():
    rules = Schedule(expire_after=timedelta(hours=1), min_gap=timedelta(hours=1))
    queue = burst(1)
    assert plan(rules, queue, [NOW], NOW) == [Slot("post-00", NOW + timedelta(hours=1), "gap")]


# ---------------------------------------------------------------- horizon


def test_posts_beyond_the_horizon():
    rules = Schedule(max_per_day=2)
    slots = plan(rules, burst(8), [], NOW, horizon=timedelta(days=1))
    half = timedelta(hours=12)   # paced: two a day, spread over the day
    assert times(slots[:3]) == [NOW, NOW + half, NOW + 2 * half]
    assert slots[3] == Slot(slots[3].key, NOW + 3 * half, "pacing")   # first beyond
    assert all(s.at is None and s.reason == "pacing" for s in slots[4:])
    assert len({s.key for s in slots}) == 8


# ---------------------------------------------------------------- the overnight burst


def test_a_burst_larger_than_the_daily_cap_is_spread_over_the_window():
    rules = Schedule(min_gap=10 * MIN, max_per_day=17, timezone="Europe/Berlin",
                     windows=(parse_window("mon-sun 07:00-22:00"),))
    slots = plan(rules, burst(30), [], NOW, horizon=timedelta(days=7))
    berlin = ZoneInfo("Europe/Berlin")
    same_day = [(a.at, b.at) for a, b in zip(slots, slots[1:])
                if a.at.astimezone(berlin).date() == b.at.astimezone(berlin).date()]
    pace = timedelta(hours=15) / 17   # 15 open hours shared by 17 posts
    assert min(b - a for a, b in same_day) == pace
    first_day = [(a, b) for a, b in same_day if a.date() == NOW.date()]
    assert first_day and all(b - a == pace for a, b in first_day)
    assert slots[1].reason == "pacing"


def test_a_burst_within_the_cap_keeps_the_short_gap():
    rules = Schedule(min_gap=10 * MIN, max_per_day=17)
    slots = plan(rules, burst(5), [], NOW)
    assert times(slots) == [NOW + i * 10 * MIN for i in range(5)]


def assert_respects(rules: Schedule, slots, sent=()):
    """Every gap, every trailing hour and 24 h, every window."""
    tz = ZoneInfo(rules.timezone)
    planned = [s.at for s in slots if s.at is not None]
    sends = sorted([*sent, *planned])
    assert all(b - a >= rules.min_gap for a, b in zip(sends, sends[1:]) if b in planned)
    for end in planned:
        if rules.max_per_hour is not None:
            assert sum(end - timedelta(hours=1) < s <= end for s in sends) <= rules.max_per_hour
        if rules.max_per_day is not None:
            assert sum(end - timedelta(days=1) < s <= end for s in sends) <= rules.max_per_day
    assert all(window_contains(rules.windows, tz, t) for t in planned)


def test_burst_of_30_respects_gap_daily_cap_and_window():
    rules = Schedule(min_gap=10 * MIN, max_per_day=17, timezone="Europe/Berlin",
                     windows=(parse_window("mon-sun 07:00-22:00"),))
    morning = berlin(2026, 11, 25, 6, 0).astimezone(UTC)   # the overnight feed refilled
    slots = plan(rules, burst(30, morning), [], morning, horizon=timedelta(days=7))
    assert [s.at is not None for s in slots].count(True) == 30
    assert_respects(rules, slots)
    local = [s.at.astimezone(BERLIN) for s in slots]
    assert local[0] == berlin(2026, 11, 25, 7, 0) and slots[0].reason == "window"
    assert sum(t.day == 25 for t in local) == 17
    assert local[17] == berlin(2026, 11, 26, 7, 0) and slots[17].reason == "daily cap"


def test_executing_due_pass_by_pass_follows_the_plan():
    rules = Schedule(min_gap=10 * MIN, jitter=3 * MIN, max_per_hour=4, max_per_day=17,
                     windows=(parse_window("mon-sun 07:00-22:00"),), timezone="Europe/Berlin")
    queue = burst(24, NOW) + [q("retry", NOW, priority=3, not_before=NOW + 35 * MIN)]
    sent = [NOW - timedelta(hours=3)]
    shown = plan(rules, queue, sent, NOW, horizon=timedelta(days=7))
    clock, executed = NOW, []
    while queue:
        skip, send = due(rules, queue, sent, clock)
        assert not skip
        if send is None:     # the publisher wakes each pass; jump between passes here
            nxt = plan(rules, queue, sent, clock, horizon=timedelta(days=7))[0].at
            halfway = clock + (nxt - clock) / 2
            assert due(rules, queue, sent, halfway) == ([], None)
            clock = nxt
            continue
        executed.append(send)
        sent.append(send.at)
        queue = [p for p in queue if p.key != send.key]
    assert [(s.key, s.at) for s in executed] == [(s.key, s.at) for s in shown]


@settings(max_examples=60, deadline=None)
@given(gap=st.integers(0, 90), jitter=st.integers(0, 30), hourly=st.none() | st.integers(1, 6),
       daily=st.none() | st.integers(1, 20), start=st.integers(0, 23), length=st.integers(1, 23),
       history=st.lists(st.integers(1, 36 * 60), max_size=12), size=st.integers(1, 25))
def test_any_plan_respects_its_schedule(gap, jitter, hourly, daily, start, length, history, size):
    window = Window(frozenset(range(7)), time(start), time((start + length) % 24))
    rules = Schedule(min_gap=gap * MIN, jitter=jitter * MIN, max_per_hour=hourly,
                     max_per_day=daily, windows=(window,), timezone="Europe/Berlin")
    sent = sorted(NOW - m * MIN for m in history)
    slots = plan(rules, burst(size), sent, NOW, horizon=timedelta(days=30))
    assert len(slots) == size and all(s.at is not None and s.at >= NOW for s in slots)
    assert_respects(rules, slots, sent)


# ---------------------------------------------------------------- one Backlog for a whole pass


def test_a_backlog_answers_like_due_and_forgets_what_went():
    rules = Schedule(min_gap=10 * MIN, expire_after=timedelta(hours=1))
    queue = [q("stale", NOW - 61 * MIN), *burst(3)]
    backlog = Backlog(rules, queue, [NOW - 20 * MIN])
    assert backlog.due(NOW) == due(rules, queue, [NOW - 20 * MIN], NOW)
    assert backlog.due(NOW) == ([], Slot("post-00", NOW, "due")), "expired once, then forgotten"
    backlog.sent("post-00", NOW)
    assert backlog.due(NOW + 5 * MIN) == ([], None), "the gap counts the send"
    backlog.drop("post-01")
    assert backlog.due(NOW + 10 * MIN) == ([], Slot("post-02", NOW + 10 * MIN, "due"))
    backlog.sent("post-01", NOW)          # dropped already: no send is counted
    assert backlog.due(NOW + 10 * MIN)[1] == Slot("post-02", NOW + 10 * MIN, "due")


def test_a_backlog_asked_twice_changes_nothing():
    rules = Schedule(expire_after=timedelta(hours=6), windows=(DAY_WINDOW,), min_gap=10 * MIN)
    night = at(2026, 11, 25, 3, 0)
    queue = [q("doomed", night - timedelta(hours=5)), q("fresh", night)]
    backlog = Backlog(rules, queue, [])
    assert backlog.due(night) == backlog.due(night) == ([], None)
    assert backlog.plan(night) == plan(rules, queue, [], night)
    assert backlog.plan(night) == plan(rules, queue, [], night), "plan copies what it simulates"


@settings(max_examples=80, deadline=None)
@given(gap=st.integers(0, 30), jitter=st.integers(0, 10), hourly=st.none() | st.integers(0, 5),
       daily=st.none() | st.integers(1, 12), start=st.integers(0, 23), length=st.integers(1, 24),
       expire=st.none() | st.integers(20, 600),
       posts=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 300), st.none() | st.integers(-30, 90)),
                      max_size=25),
       history=st.lists(st.integers(1, 30 * 60), max_size=8),
       steps=st.lists(st.tuples(st.integers(0, 90), st.integers(0, 9)), min_size=1, max_size=40),
       budget=st.none() | st.tuples(st.integers(0, 6), st.integers(1, 40 * 24), st.integers(0, 6)))
def test_a_backlog_follows_due_pass_after_pass(gap, jitter, hourly, daily, start, length, expire,
                                               posts, history, steps, budget):
    """One Backlog kept across sends, drops and a clock moving on answers
    exactly what due() answers from scratch with the queue and sends of then."""
    window = Window(frozenset(range(7)), time(start), time((start + length) % 24))
    rules = Schedule(min_gap=gap * MIN, jitter=jitter * MIN, max_per_hour=hourly, max_per_day=daily,
                     windows=(window,), timezone="Europe/Berlin",
                     expire_after=expire * MIN if expire else None)
    queue = [q(f"p{i}", NOW - age * MIN, priority=prio,
               not_before=NOW + back * MIN if back is not None else None)
             for i, (prio, age, back) in enumerate(posts)]
    sent = sorted(NOW - m * MIN for m in history)
    quota = Quota(budget[0], NOW + budget[1] * timedelta(hours=1), budget[2]) if budget else None
    backlog, clock = Backlog(rules, queue, sent, quota=quota), NOW
    for advance, action in steps:
        clock += advance * MIN
        expected = due(rules, queue, sent, clock, quota=quota)
        assert backlog.due(clock) == expected
        gone = {s.key for s in expected[0]}
        queue = [p for p in queue if p.key not in gone]
        if expected[1] is not None and action < 7:      # sent
            backlog.sent(expected[1].key, clock)
            sent = sorted([*sent, clock])
            queue = [p for p in queue if p.key != expected[1].key]
            quota = replace(quota, left=quota.left - 1) if quota else None
        elif queue and action == 9:                     # failed, skipped, taken elsewhere
            backlog.drop(queue[-1].key)
            queue = queue[:-1]


# ---------------------------------------------------------------- parse_window


@pytest.mark.parametrize("text, days, start, end", [
    ("mon-fri 07:00-22:00", {0, 1, 2, 3, 4}, time(7), time(22)),
    ("sat,sun 09:00-20:00", {5, 6}, time(9), time(20)),
    ("mon-sun 22:00-02:00", set(range(7)), time(22), time(2)),
    ("daily 07:00-22:00", set(range(7)), time(7), time(22)),
    ("fri-mon 7:30-24:00", {4, 5, 6, 0}, time(7, 30), time(0)),
    ("  Sat, Sunday  06:00 - 23:59 ", {5, 6}, time(6), time(23, 59)),
    ("mon,wed-thu 00:00-00:00", {0, 2, 3}, time(0), time(0)),
])
def test_parse_window_good(text, days, start, end):
    assert parse_window(text) == Window(frozenset(days), start, end)


@pytest.mark.parametrize("text, detail", [
    ("", None),
    ("mon-fri", None),
    ("mon-fri 7-22", None),
    ("mon-fri 07:00", None),
    (42, None),
    ("07:00-22:00", "missing days"),
    ("mon-fry 07:00-22:00", "unknown day 'fry'"),
    ("mon-fri-sun 07:00-22:00", "unknown day 'fri-sun'"),
    ("weekdays 07:00-22:00", "unknown day 'weekdays'"),
    ("mon-fri 25:00-26:00", "no such time '25:00'"),
    ("mon-fri 24:00-22:00", "no such time '24:00'"),
    ("mon-fri 07:60-22:00", "no such time '07:60'"),
])
def test_parse_window_bad(text, detail):
    with pytest.raises(ValueError) as caught:
        parse_window(text)
    message = str(caught.value)
    assert 'expected a window like "mon-fri 07:00-22:00"' in message
    assert repr(text) in message
    if detail:
        assert detail in message
