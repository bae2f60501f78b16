"""An X account's monthly budget (``accounts[].budget``): what this month's
sends cost, what is left, when it resets, and whether one more post fits.

Pure: no database, no clock. The publisher passes the month's sends as
(sent_at, has_link) pairs (``Store.sent_since``) and ``now``.

The month is the UTC calendar month: it resets on the first at 00:00 UTC.
That is our choice, not X's rule. X's pay-per-use API (since 2026-02) deducts
prepaid credits per request as they are made ("Content: Create" $0.015,
"Content: Create (with URL)" $0.200 in X's pricing page) and speaks of a
"monthly billing cycle" only for its cap on Post reads, without saying when
that cycle starts; its deduplication window is the UTC day. So a newsroom's
own budget is kept per UTC month, which anyone can check against the sends.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from bot.configtypes import Budget

UTC = timezone.utc
Send = tuple[datetime, bool]   # (sent_at, has_link)


@dataclass(frozen=True)
class Spend:
    """The month so far: ``spent`` and ``left`` in ``unit`` ("posts" or
    "money", the currency the config's amounts are in), and ``resets``, when
    the next month starts (aware UTC)."""

    unit: str
    spent: int | Decimal
    left: int | Decimal
    resets: datetime


@dataclass(frozen=True)
class Quota:
    """What the schedule needs of a budget, in posts: ``left`` more before
    ``resets`` (aware UTC, the first of a month), then ``monthly`` each UTC
    calendar month. Posts are counted at the price of a post with a link, the
    dearer kind (unless none can have one), so a plan never spends more than
    the budget."""

    left: int
    resets: datetime
    monthly: int


def month_start(at: datetime) -> datetime:
    """The first instant of ``at``'s UTC calendar month."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def month_after(at: datetime) -> datetime:
    """The first instant of the UTC calendar month after ``at``'s: the reset."""
    at = at.astimezone(UTC)
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


def price(budget: Budget, has_link: bool) -> int | Decimal:
    """What one post costs against ``budget``: 1 for a budget in posts, else
    its price (``price_per_link_post`` for a post with a link, when set)."""
    if budget.amount is None:
        return 1
    if has_link and budget.price_per_link_post is not None:
        return budget.price_per_link_post
    return budget.price_per_post or Decimal(0)


def spend(budget: Budget, sends: Sequence[Send], now: datetime) -> Spend:
    """This month's spend at ``now``; sends outside the month are ignored."""
    start, resets = month_start(now), month_after(now)
    month = [link for at, link in sends if start <= at.astimezone(UTC) < resets]
    if budget.amount is None:
        spent: int | Decimal = len(month)
        return Spend("posts", spent, max((budget.posts or 0) - spent, 0), resets)
    spent = sum((price(budget, link) for link in month), Decimal(0))
    return Spend("money", spent, max(budget.amount - spent, Decimal(0)), resets)


def fits(budget: Budget, sends: Sequence[Send], now: datetime, has_link: bool) -> bool:
    """Whether one more post (with or without a link) stays within the budget."""
    return price(budget, has_link) <= spend(budget, sends, now).left


def quota(budget: Budget, sends: Sequence[Send], now: datetime, *, links: bool = True) -> Quota:
    """The budget as the schedule plans with it, in posts at the dearer
    price; ``links=False`` when no post can have a link (its template has no
    {url}), so an account posting only text gets all the posts it pays for."""
    each = max(price(budget, True), price(budget, False)) if links else price(budget, False)
    left = spend(budget, sends, now).left
    whole = (budget.posts or 0) if budget.amount is None else budget.amount
    return Quota(left=_posts(left, each), resets=month_after(now), monthly=_posts(whole, each))


def _posts(money: int | Decimal, each: int | Decimal) -> int:
    """How many posts at ``each`` fit in ``money`` (a price of 0: any number)."""
    if each <= 0:
        return 1 << 62
    return int(money // each)
