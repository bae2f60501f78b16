"""bot/budget.py: an X account's monthly budget, and the schedule planning with it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budget import Quota, Spend, fits, month_after, month_start, price, quota, spend
from bot.configtypes import Budget, Schedule
from bot.schedule import Queued, Slot, due, plan

UTC = timezone.utc
NOW = datetime(2026, 12, 20, 15, 0, tzinfo=UTC)
JAN = datetime(2027, 1, 1, tzinfo=UTC)
X_PRICES = Budget(amount=Decimal("10"), price_per_post=Decimal("0.015"),
                  price_per_link_post=Decimal("0.200"))


def sends(n, link=True, at=NOW - timedelta(days=1)):
    return [(at, link)] * n


def test_the_month_is_the_utc_calendar_month():
    assert month_start(NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert month_after(NOW) == JAN
    assert month_after(datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)
    # 00:30 on 1 January in Berlin is still December in UTC
    berlin = datetime(2027, 1, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert month_start(berlin) == datetime(2026, 12, 1, tzinfo=UTC) and month_after(berlin) == JAN


def test_a_budget_in_posts_counts_this_months_sends_only():
    history = sends(3) + [(datetime(2026, 11, 30, 23, 59, tzinfo=UTC), True), (JAN, False)]
    assert spend(Budget(posts=5), history, NOW) == Spend("posts", 3, 2, JAN)
    assert spend(Budget(posts=2), history, NOW).left == 0, "never below zero"
    assert fits(Budget(posts=4), history, NOW, has_link=True)
    assert not fits(Budget(posts=3), history, NOW, has_link=False)


def test_a_budget_in_money_prices_a_link_higher():
    history = sends(40, link=True) + sends(100, link=False)
    month = spend(X_PRICES, history, NOW)
    assert month == Spend("money", Decimal("9.500"), Decimal("0.500"), JAN)
    assert fits(X_PRICES, history, NOW, has_link=True)
    more = history + sends(2, link=True)                     # 9.900 spent, 0.100 left
    assert not fits(X_PRICES, more, NOW, has_link=True)
    assert fits(X_PRICES, more, NOW, has_link=False)


def test_without_a_link_price_every_post_costs_the_same():
    flat = Budget(amount=Decimal("1"), price_per_post=Decimal("0.25"))
    assert price(flat, True) == price(flat, False) == Decimal("0.25")
    assert spend(flat, sends(3, link=True), NOW).left == Decimal("0.25")


def test_the_quota_counts_posts_at_the_dearer_price():
    assert quota(X_PRICES, sends(40), NOW) == Quota(left=10, resets=JAN, monthly=50)
    assert quota(Budget(posts=30), sends(30), NOW) == Quota(left=0, resets=JAN, monthly=30)


budgets = st.one_of(
    st.builds(Budget, posts=st.integers(1, 40)),
    st.builds(lambda amount, each, link: Budget(amount=Decimal(amount) / 100, price_per_post=Decimal(each) / 1000,
                                                price_per_link_post=None if link is None else Decimal(link) / 1000),
              st.integers(1, 500), st.integers(1, 300), st.none() | st.integers(1, 400)))


@settings(max_examples=200, deadline=None)
@given(budget=budgets, tries=st.lists(st.tuples(st.integers(0, 60 * 24 * 62), st.booleans()), max_size=120))
def test_sending_only_what_fits_never_exceeds_the_budget(budget, tries):
    """Posts offered at random times over two months, each sent only when
    ``fits`` says so: no month ever spends more than the budget."""
    start, history = datetime(2026, 11, 1, tzinfo=UTC), []
    for minute, link in sorted(tries):
        at = start + timedelta(minutes=minute)
        if fits(budget, history, at, link):
            history.append((at, link))
            assert spend(budget, history, at).left >= 0
    for month in {month_start(at) for at, _ in history}:
        within = [(at, link) for at, link in history if month_start(at) == month]
        total = budget.posts if budget.amount is None else budget.amount
        assert sum(price(budget, link) for _, link in within) <= total


@settings(max_examples=100, deadline=None)
@given(budget=budgets, spent=st.lists(st.booleans(), max_size=40), size=st.integers(1, 60),
       hours=st.integers(0, 24 * 20))
def test_a_plan_never_spends_more_than_its_quota(budget, spent, size, hours):
    """Planned over a month's end, the posts before the reset fit in what is
    left and each later month in its whole allowance, even if every one has a link."""
    now = NOW + timedelta(hours=hours)
    history = [(now - timedelta(minutes=i + 1), link) for i, link in enumerate(spent)]
    allowed = quota(budget, history, now)
    queue = [Queued(f"p{i}", now - timedelta(minutes=i), None) for i in range(size)]
    slots = plan(None, queue, [], now, horizon=timedelta(days=70), quota=allowed)
    times = [s.at for s in slots if s.at is not None]
    assert sum(t < allowed.resets for t in times) <= allowed.left
    for month in {month_start(t) for t in times if t >= allowed.resets}:
        assert sum(month_start(t) == month for t in times) <= allowed.monthly
    before = spend(budget, history, now).left
    each = max(price(budget, True), price(budget, False))
    assert sum(t < allowed.resets for t in times) * each <= before


def test_an_exhausted_budget_waits_for_the_reset_like_a_cap():
    queue = [Queued("a", NOW, None), Queued("b", NOW, None), Queued("c", NOW, None)]
    tight = Quota(left=1, resets=JAN, monthly=1)
    slots = plan(Schedule(), queue, [], NOW, horizon=timedelta(days=40), quota=tight)
    assert slots[:2] == [Slot("a", NOW, "due"), Slot("b", JAN, "budget")]
    assert slots[2] == Slot("c", datetime(2027, 2, 1, tzinfo=UTC), "budget")
    assert due(Schedule(), queue, [], NOW, quota=Quota(0, JAN, 5)) == ([], None)
    assert due(Schedule(), queue, [], JAN, quota=Quota(0, JAN, 5))[1] == Slot("a", JAN, "due")


def test_a_budget_that_buys_no_post_never_sends():
    queue = [Queued("a", NOW, None)]
    assert plan(None, queue, [], NOW, quota=Quota(0, JAN, 0)) == [Slot("a", None, "budget")]


def test_an_expiry_before_the_reset_gives_up_the_slot_not_the_post():
    rules = Schedule(expire_after=timedelta(days=3))
    queue = [Queued("a", NOW, None), Queued("b", NOW, None)]
    slots = plan(rules, queue, [], NOW, quota=Quota(1, JAN, 10))
    assert slots == [Slot("a", NOW, "due"), Slot("b", None, "budget")]
