"""The publish pass: claims, outcomes per error class, pauses, reconciliation."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.adapters.base import Adapter
from bot.config import AccountConfig, Schedule
from bot.errors import AlreadyPosted, AuthFailed, RateLimited, Rejected, Transient
from bot.models import Post, Receipt
from bot.publish import Account, Publisher
from bot.secret import Secret
from bot.store import Store
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article


class ScriptedAdapter(Adapter):
    """A fake platform: answers from a script, records what it was given."""

    platform = "scripted"
    max_length = 280
    url_length = 23
    counting = "twitter"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.script: list = []
        self.posted: list[Post] = []
        self.on_platform: dict[str, Receipt] = {}

    def publish(self, post: Post) -> Receipt:
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Exception):
            raise answer
        self.posted.append(post)
        receipt = Receipt(platform_id=f"id-{len(self.posted)}")
        self.on_platform[post.link] = receipt
        return receipt

    def find_recent(self, post: Post, since) -> Receipt | None:
        return self.on_platform.get(post.link)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(db_url, clock):
    store = Store(db_url, clock)
    store.migrate()
    store.feed_row("world", "https://news.example.org/rss")
    store.ingest("world", [], [("x", 0)])  # first sight
    yield store
    store.close()


def make(store, clock, schedule=None, max_attempts=3, token="tok-1", worker="w1"):
    config = AccountConfig(name="x", platform="scripted", template="{title}: {lead} {url}",
                           credentials={"token": Secret(token)}, schedule=schedule,
                           max_attempts=max_attempts)
    adapter = ScriptedAdapter("x", {}, config.credentials, clock=clock)
    account = Account(config, adapter)
    return Publisher(store, [account], clock, worker, rng=lambda: 0.5), adapter


def queue(store, *numbers):
    store.ingest("world", [article(n) for n in numbers], [("x", 0)])


def statuses(store):
    return store.outbox_counts().get("x", {})


def test_sends_due_posts_and_records_platform_ids(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1, 2)
    assert publisher.run() == 2
    assert statuses(store) == {"sent": 2}
    assert {r.platform_id for r in store.recent(["sent"])} == {"id-1", "id-2"}
    assert adapter.posted[0].text.startswith("Story number")
    assert publisher.run() == 0, "nothing is sent twice"


def test_transient_failure_retries_with_backoff_then_fails(store, clock):
    publisher, adapter = make(store, clock, max_attempts=3)
    queue(store, 1)
    adapter.script = [Transient("HTTP 503")] * 3
    publisher.run()
    (row,) = store.queue("x")
    assert row.attempts == 1 and row.not_before == clock() + timedelta(minutes=1)
    assert publisher.run() == 0, "waits for its back-off"
    clock.advance(minutes=1)
    publisher.run()
    clock.advance(minutes=2)
    publisher.run()
    assert statuses(store) == {"failed": 1}
    assert "gave up after 3 attempts: HTTP 503" in store.recent(["failed"])[0].last_error


def test_a_retry_sends_the_same_text(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    adapter.script = [Transient("timeout")]
    publisher.run()
    clock.advance(minutes=5)
    publisher.run()
    (row,) = store.recent(["sent"])
    assert adapter.posted[0].text == row.text


def test_rejected_fails_at_once_and_keeps_the_platform_message(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1, 2)
    adapter.script = [Rejected("Your Tweet text is too long.")]
    publisher.run()
    assert statuses(store) == {"failed": 1, "sent": 1}
    assert store.recent(["failed"])[0].last_error == "rejected: Your Tweet text is too long."


def test_duplicate_answer_counts_as_sent(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    adapter.script = [AlreadyPosted("duplicate content")]
    publisher.run()
    assert statuses(store) == {"sent": 1}


def test_auth_failure_pauses_the_account_until_resumed_or_credentials_change(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1, 2)
    adapter.script = [AuthFailed("401 Unauthorized")]
    publisher.run()
    assert statuses(store) == {"pending": 2} and adapter.posted == []
    assert publisher.run() == 0, "nothing is retried with that credential"
    fixed, adapter2 = make(store, clock, token="tok-2")
    assert fixed.run() == 2, "changed credentials lift the pause"


def test_rate_limit_waits_until_the_time_given(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    adapter.script = [RateLimited(clock() + timedelta(minutes=15))]
    publisher.run()
    clock.advance(minutes=14)
    assert publisher.run() == 0
    clock.advance(minutes=1)
    assert publisher.run() == 1


def test_unexpected_adapter_bug_keeps_the_post(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    adapter.script = [KeyError("oops")]
    publisher.run()
    assert statuses(store) == {"pending": 1}


def test_schedule_gap_is_honoured(store, clock):
    publisher, _ = make(store, clock, schedule=Schedule(min_gap=timedelta(minutes=10)))
    queue(store, 1, 2, 3)
    assert publisher.run() == 1
    clock.advance(minutes=9)
    assert publisher.run() == 0
    clock.advance(minutes=1)
    assert publisher.run() == 1


def test_crash_after_the_platform_accepted_is_reconciled_not_reposted(store, clock):
    publisher, adapter = make(store, clock, worker="dead")
    queue(store, 1)
    (row,) = store.queue("x")
    post = publisher._post(publisher.accounts[0], row)
    store.claim(row.id, "dead", post.text)
    adapter.publish(post)   # the platform has it; the process died before recording it
    survivor, _ = make(store, clock, worker="new")
    survivor.accounts[0].adapter.on_platform = adapter.on_platform
    survivor.run()
    assert statuses(store) == {"sent": 1}
    assert survivor.accounts[0].adapter.posted == []


def test_crash_before_the_platform_saw_it_sends_it(store, clock):
    publisher, _ = make(store, clock, worker="dead")
    queue(store, 1)
    (row,) = store.queue("x")
    store.claim(row.id, "dead", "text")
    survivor, adapter = make(store, clock, worker="new")
    assert survivor.run() == 1 and len(adapter.posted) == 1


def test_dry_run_prints_and_leaves_the_outbox(store, clock, capsys):
    from bot.adapters.console import ConsoleAdapter
    publisher, adapter = make(store, clock)
    publisher.dry_run = ConsoleAdapter("dry-run", {}, {})
    queue(store, 1)
    assert publisher.run() == 1 and publisher.run() == 0
    assert "Story number 1" in capsys.readouterr().out
    assert statuses(store) == {"pending": 1} and adapter.posted == []


def test_a_timeout_that_hid_a_success_is_found_before_sending_again(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)

    def accepted_then_timed_out(post):
        adapter.on_platform[post.link] = Receipt("id-accepted")
        raise Transient("no answer within 20 s")
    adapter.publish = accepted_then_timed_out
    publisher.run()
    clock.advance(minutes=5)
    publisher.run()
    (row,) = store.recent(["sent"])
    assert row.platform_id == "id-accepted"


def test_a_manually_retried_post_is_looked_up_before_it_is_sent_again(store, clock):
    publisher, adapter = make(store, clock, max_attempts=1)
    queue(store, 1)

    def accepted_then_timed_out(post):
        adapter.on_platform[post.link] = Receipt("id-accepted")
        raise Transient("no answer within 20 s")
    adapter.publish = accepted_then_timed_out
    publisher.run()
    (row,) = store.recent(["failed"])
    store.retry(row_id=row.id)
    publisher.run()
    assert store.recent(["sent"])[0].platform_id == "id-accepted"


def test_a_duplicate_answer_records_the_platform_id_when_it_can_be_found(store, clock):
    publisher, adapter = make(store, clock)
    queue(store, 1)
    adapter.on_platform["https://news.example.org/story-1"] = Receipt("id-earlier")
    adapter.script = [AlreadyPosted("duplicate content")]
    publisher.run()
    assert store.recent(["sent"])[0].platform_id == "id-earlier"


def test_a_rate_limited_lookup_keeps_the_orphan_and_pauses_the_account(store, clock):
    queue(store, 1, 2)
    row = store.queue("x")[0]
    store.claim(row.id, "dead", "text")
    survivor, adapter = make(store, clock, worker="new")

    def rate_limited(post, since):
        raise RateLimited(clock() + timedelta(minutes=10))
    adapter.find_recent = rate_limited
    assert survivor.run() == 0
    assert statuses(store) == {"sending": 1, "pending": 1}, "never guessed"
    assert store.account_row("x").paused_until == clock() + timedelta(minutes=10)


def test_an_orphan_recorded_by_its_stalled_worker_during_the_lookup_is_not_sent_again(store, clock):
    # The stalled claimer wakes, posts and records it while the survivor looks
    # the post up: the survivor's "not found" must not reopen the row.
    queue(store, 1)
    row = store.queue("x")[0]
    store.claim(row.id, "stalled", "text")
    survivor, adapter = make(store, clock, worker="new")

    def recorded_meanwhile(post, since):
        store.mark_sent(row.id, "id-stalled")
        return None
    adapter.find_recent = recorded_meanwhile
    survivor.run()
    clock.advance(minutes=5)
    survivor.run()
    assert adapter.posted == [], "posted twice"
    assert store.recent(["sent"])[0].platform_id == "id-stalled"


@pytest.mark.parametrize("failure", [lambda now: Transient("HTTP 503"),
                                     lambda now: Rejected("too long"),
                                     lambda now: RateLimited(now + timedelta(minutes=1))])
def test_a_failed_try_whose_claim_was_taken_over_leaves_the_other_workers_record(
        store, clock, failure, caplog):
    publisher, adapter = make(store, clock, worker="w1")
    queue(store, 1)

    def taken_over(post):
        # Another worker took the stalled claim over and found the post sent.
        store.mark_sent(store.queue("x", ("sending",))[0].id, "id-other")
        raise failure(clock())
    adapter.publish = taken_over
    publisher.run()
    assert statuses(store) == {"sent": 1}
    assert store.recent(["sent"])[0].platform_id == "id-other"
    assert "settled by another worker meanwhile" in caplog.text


def test_a_release_or_failure_is_fenced_by_the_claim(store, clock):
    queue(store, 1)
    row = store.queue("x")[0]
    store.claim(row.id, "w1", "text")
    assert not store.release(row.id, "timeout", claim="w2")
    assert not store.mark_failed(row.id, "rejected", claim="w2")
    assert statuses(store) == {"sending": 1}
    assert store.release(row.id, "timeout", claim="w1")
    assert not store.release(row.id, "timeout", claim="w1"), "a settled claim is not settled again"
    assert statuses(store) == {"pending": 1}
