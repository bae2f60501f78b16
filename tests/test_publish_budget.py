"""The publish pass with an X budget, a feed's style, held posts, and no limit."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from bot.budget import Spend
from bot.config import Budget, Schedule, Style, Utm
from bot.models import Target
from bot.publish import MAX_PER_PASS
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import article
from tests.test_publish import clock, make, queue, statuses, store  # noqa: F401 (fixtures)

UTC = timezone.utc


def with_budget(publisher, budget, template=None):
    account = publisher.accounts[0]
    changes = {"budget": budget} | ({"template": template} if template else {})
    account.config = replace(account.config, **changes)
    return account


def next_month(clock) -> datetime:
    now = clock()
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


def test_a_budget_in_posts_stops_sending_until_the_month_resets(store, clock):
    publisher, adapter = make(store, clock)
    account = with_budget(publisher, Budget(posts=2))
    queue(store, 1, 2, 3, 4)
    assert publisher.run(limit=None) == 2
    reset = next_month(clock)
    assert publisher.budget(account) == Spend("posts", 2, 0, reset)
    slots, _ = publisher.plan(account)
    # the reset is beyond the plan's two days: the rest waits with the first
    assert [(s.at, s.reason) for s in slots] == [(reset, "budget"), (None, "budget")]
    assert publisher.run(limit=None) == 0, "the budget holds on the next pass"
    clock.now = reset
    assert publisher.run(limit=None) == 2
    assert statuses(store) == {"sent": 4}
    assert publisher.budget(account).spent == 2, "a new month counts from zero"


def test_a_budget_in_money_prices_posts_with_and_without_a_link(store, clock):
    prices = Budget(amount=Decimal("1"), price_per_post=Decimal("0.25"),
                    price_per_link_post=Decimal("0.50"))
    publisher, adapter = make(store, clock)
    account = with_budget(publisher, prices)                   # "{title}: {lead} {url}"
    queue(store, *range(1, 7))
    assert publisher.run(limit=None) == 2
    assert publisher.budget(account) == Spend("money", Decimal("1.00"), Decimal("0"), next_month(clock))
    clock.now = next_month(clock)
    with_budget(publisher, prices, template="{title}: {lead}")   # text only: half the price
    assert publisher.run(limit=None) == 4
    assert all("https://" not in p.text for p in adapter.posted[2:])
    assert publisher.budget(account).spent == Decimal("1.00")


def test_the_send_checks_the_real_post_against_the_budget(store, clock):
    """The plan prices a text-only account's posts without a link; an editor's
    text with the link costs more, and the check on each real post keeps the
    month within the budget where the plan alone would not."""
    prices = Budget(amount=Decimal("0.60"), price_per_post=Decimal("0.25"),
                    price_per_link_post=Decimal("0.50"))
    publisher, adapter = make(store, clock)
    account = with_budget(publisher, prices, template="{title}")
    store.ingest("world", [article(1)], lambda a: [Target("x", priority=5, status="held")])
    queue(store, 2)
    (held,) = store.held("x")
    store.approve(held.id, text=f"Read this: {article(1).url}")
    assert publisher.plan(account)[0][1].reason == "due", "the plan has room for both"
    assert publisher.run(limit=None) == 1
    assert adapter.posted[0].text == f"Read this: {article(1).url}"
    assert publisher.budget(account) == Spend("money", Decimal("0.50"), Decimal("0.10"),
                                              next_month(clock))
    assert statuses(store) == {"sent": 1, "pending": 1}


def test_once_sends_everything_due_beyond_the_pass_limit(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, *range(MAX_PER_PASS + 10))
    assert publisher.run() == MAX_PER_PASS
    assert publisher.run(limit=None) == 10
    assert statuses(store) == {"sent": MAX_PER_PASS + 10}


def test_no_limit_still_keeps_the_schedule(store, clock):
    publisher, adapter = make(store, clock, schedule=Schedule(min_gap=timedelta(minutes=10)))
    queue(store, 1, 2, 3)
    assert publisher.run(limit=None) == 1, "the gap holds within one pass"
    clock.advance(minutes=10)
    assert publisher.run(limit=None) == 1


def test_a_style_gives_the_template_hashtags_and_tracking(store, clock):
    publisher, adapter = make(store, clock)
    publisher.style = lambda feed, name: Style(
        template="{title} {hashtags} {url}", hashtags={"number": "#Numbers"},
        utm=Utm(source="{platform}", campaign="{feed}-{account}"))
    queue(store, 1)
    assert publisher.run() == 1
    text = adapter.posted[0].text
    assert text.startswith("Story number 1 #Numbers ")
    assert "story-1?utm_source=scripted&utm_campaign=world-x" in text


def test_held_posts_count_toward_nothing_until_approved(store, clock):
    publisher, adapter = make(store, clock, schedule=Schedule(expire_after=timedelta(hours=1)))
    account = with_budget(publisher, Budget(posts=1))
    store.ingest("world", [article(1)], lambda a: [Target("x", status="held")])
    assert publisher.run(limit=None) == 0
    assert publisher.budget(account).spent == 0 and publisher.plan(account)[0] == []
    clock.advance(hours=3)                      # longer than expire_after, while held
    (held,) = store.held("x")
    assert store.approve(held.id) == 1
    assert publisher.run(limit=None) == 1, "expire_after counts from the approval"
    assert publisher.budget(account).spent == 1
