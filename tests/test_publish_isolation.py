"""One bad row, answer or account state costs only itself: a post that cannot
be composed, an account whose credits are gone, a platform that keeps failing
(the account backs off as a whole), a database that fails mid-pass."""
from __future__ import annotations

import io

import pytest

from bot import report
from bot.errors import RateLimited, StoreError, Suspended, Transient
from bot.twittertext import weighted_length
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import T0, article
from tests.test_publish import clock, make, queue, statuses, store  # noqa: F401 (fixtures)


def test_a_post_that_cannot_be_composed_fails_alone(store, clock, monkeypatch):
    publisher, adapter = make(store, clock)
    queue(store, 1, 2, 3)
    account = publisher.accounts[0]
    real = type(account).text

    def poisoned(self, art, tags):
        if art.url.endswith("story-2"):
            raise MemoryError("title of 1 MB")
        return real(self, art, tags)

    monkeypatch.setattr(type(account), "text", poisoned)
    assert publisher.run() == 2
    assert statuses(store) == {"sent": 2, "failed": 1}
    (failed,) = store.recent(["failed"])
    assert failed.last_error.startswith("cannot compose the post: MemoryError: title of 1 MB")
    assert publisher.run() == 0, "the failed row is not tried on every pass"


def test_a_huge_title_is_composed_and_sent(store, clock):
    publisher, adapter = make(store, clock)
    store.ingest("world", [article(1, title="Big " * 250_000)], [("x", 0)])
    assert publisher.run() == 1
    assert weighted_length(adapter.posted[0].text) <= 280


def test_credits_depleted_pauses_the_account_until_resume(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1, 2)
    adapter.script = [Suspended("402 CreditsDepleted", action="top up the X API credits, then "
                                "run `run_bot.py resume x`")]
    assert publisher.run() == 0
    assert len(adapter.script) == 0 and adapter.posted == []
    assert statuses(store) == {"pending": 2}, "no post is failed for it"
    clock.advance(days=2)
    assert publisher.run() == 0, "paused until a person acts"
    out = io.StringIO()
    report.status(store, publisher, out)
    assert "402 CreditsDepleted; top up the X API credits" in out.getvalue()
    store.set_account("x", paused_reason=None)        # what `resume` does
    assert publisher.run() == 2


def test_a_failing_platform_makes_the_whole_account_back_off(store, clock):
    publisher, adapter = make(store, clock, max_attempts=5)
    queue(store, 1, 2, 3, 4)
    adapter.script = [Transient("HTTP 503")] * 10
    assert publisher.run() == 0
    assert len(adapter.script) == 9, "one request, then the account waits"
    state = store.account_row("x")
    assert state.paused_until > clock() and "backing off" in state.wait_reason
    clock.advance(hours=2)
    publisher.run()
    assert len(adapter.script) == 8


def test_the_monthly_cap_is_labelled_in_status(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    reset = T0.replace(month=12, day=1, hour=0)
    adapter.script = [RateLimited(reset, "X answered 429", reason="monthly usage cap reached")]
    publisher.run()
    out = io.StringIO()
    report.status(store, publisher, out)
    assert "[monthly usage cap reached until 2026-12-01 00:00" in out.getvalue()


def test_a_database_failing_mid_pass_stops_the_pass_quietly(store, clock, monkeypatch):
    publisher, _ = make(store, clock)
    queue(store, 1)

    def broken(*a, **k):
        raise StoreError("database h.db: the disk is full")

    monkeypatch.setattr(store, "queue", broken)
    assert publisher.run() == 0
    monkeypatch.setattr(store, "queue", lambda *a, **k: (_ for _ in ()).throw(
        StoreError("database h.db was deleted while Herald ran", fatal=True)))
    with pytest.raises(StoreError):
        publisher.run()


def test_one_post_that_keeps_failing_does_not_hold_its_account_for_hours(store, clock):
    publisher, adapter = make(store, clock, max_attempts=10)
    real = adapter.publish

    def fails_for_story_1(post):
        if post.link.endswith("/story-1"):
            raise Transient("HTTP 500 for this link")
        return real(post)

    adapter.publish = fails_for_story_1
    queue(store, 1)
    publisher.run()
    for n in range(2, 12):   # a new story every 10 minutes, while story 1 keeps failing
        clock.advance(minutes=10)
        queue(store, n)
        publisher.run()
    assert len(adapter.posted) == 10, "each healthy post waits one retry_backoff at most"


def test_a_post_whose_result_could_not_be_recorded_is_settled_next_pass(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    (row,) = store.queue("x")
    store.claim(row.id, publisher.worker, "text")   # ours, from a pass whose write failed
    adapter.on_platform[row.url] = adapter.publish(publisher._post(publisher.accounts[0], row))
    publisher.run()
    assert statuses(store) == {"sent": 1} and len(adapter.posted) == 1, "found, not sent again"
