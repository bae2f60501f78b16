"""Publishing with leases, against the fake X: a worker whose heartbeats fail
looks dead to the others once its lease runs out, so it must not start a call
after that, and the worker that takes its account must not look its post in
flight up (and, not finding it, send it again) while a call of it can still
land, nor leave it in sending for ever. Each test runs on SQLite and
PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from bot.adapters.twitter import TwitterAdapter
from bot.config import AccountConfig
from bot.leases import Leases
from bot.publish import CLAIM_LEASE, HOST_SKEW, Account, Publisher
from bot.secret import Secret
from fakes import X_ACCESS_SECRET, X_ACCESS_TOKEN, X_CONSUMER_KEY, X_CONSUMER_SECRET
from fakes.server import FakeApi
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from test_publish import clock, store  # noqa: F401  (fixtures: a store whose feed was seen)
from tests.helpers import T0, article

TTL = timedelta(seconds=20)
CONNECT, DEADLINE = timedelta(seconds=5), timedelta(seconds=30)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
X_CREDS = {"consumer_key": X_CONSUMER_KEY, "consumer_secret": X_CONSUMER_SECRET,
           "access_token": X_ACCESS_TOKEN, "access_token_secret": X_ACCESS_SECRET}


@pytest.fixture
def x(clock):
    with FakeApi(clock=clock) as fake:   # tweets carry the test's time, as the lookup asks
        yield fake


def worker(store, clock, x, name, fetch_media=lambda url: PNG, session=None):
    """A worker's leases and publisher, posting to the fake X (images on)."""
    config = AccountConfig(name="x", platform="twitter", template="{title} {url}",
                           credentials={k: Secret(v) for k, v in X_CREDS.items()})
    adapter = TwitterAdapter("x", {"api_base_url": x.url, "attach_image": True,
                                   "connect_timeout": CONNECT.total_seconds(),
                                   "deadline": DEADLINE.total_seconds()},
                             config.credentials, clock=clock, fetch_media=fetch_media,
                             session=session)
    leases = Leases(store, name, clock, TTL)
    publisher = Publisher(store, [Account(config, adapter)], clock, name, exclusive=False,
                          leases=leases, rng=lambda: 0.5)
    return leases, publisher


def beat(leases):
    leases.refresh(["world"], ["x"])


def calls(x, path_end):
    return [r for r in x.requests if r["path"].endswith(path_end)]


def test_a_worker_whose_lease_runs_out_before_its_first_call_sends_nothing_and_retries_plainly(
        store, clock, x, caplog):
    def stalled_image(url):
        # The image fetch (not a platform call) stalls past the lease; no refresh ran meanwhile.
        clock.advance(seconds=TTL.total_seconds() + 1)
        return PNG
    leases, publisher = worker(store, clock, x, "w1", fetch_media=stalled_image)
    beat(leases)
    store.ingest("world", [article(1, image="https://news.example.org/1.png")], [("x", 0)])
    publisher.run()
    assert x.requests == [], "no call once the lease ran out"
    assert "posting without image" not in caplog.text, "stopped, not sent without its image"
    (row,) = store.queue("x")
    state = store.account_row("x")
    assert row.attempts == 0 and (state is None or state.paused_until is None), \
        "Herald's own stop costs no attempt and no back-off"
    assert row.last_error is None, "nothing was sent: the retry need not look it up"

    publisher.accounts[0].adapter.fetch_media = lambda url: PNG
    beat(leases)
    publisher.run()
    assert [r["path"] for r in x.requests] == ["/2/media/upload", "/2/tweets"]
    assert store.outbox_counts()["x"] == {"sent": 1}


class StallAfterUpload(requests.adapters.HTTPAdapter):
    """The wiring's transport: once the image is uploaded, the clock jumps past
    the lease (the worker's refreshes fail meanwhile)."""

    def __init__(self, clock):
        super().__init__()
        self.clock, self.stalls = clock, 1

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        if request.url.endswith("/upload") and self.stalls:
            self.stalls -= 1
            self.clock.advance(seconds=TTL.total_seconds() + 1)
        return response


def test_a_worker_whose_lease_runs_out_mid_send_posts_nothing_more_and_looks_it_up_first(
        store, clock, x):
    wiring = requests.Session()
    wiring.mount("http://", StallAfterUpload(clock))
    leases, publisher = worker(store, clock, x, "w1", session=wiring)
    beat(leases)
    store.ingest("world", [article(1, image="https://news.example.org/1.png")], [("x", 0)])
    publisher.run()
    assert [r["path"] for r in x.requests] == ["/2/media/upload"], "the post itself not sent"
    (row,) = store.queue("x")
    assert row.attempts == 0 and "lease on the account ran out" in row.last_error

    beat(leases)
    publisher.run()
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}
    assert x.requests[1]["path"].startswith("/2/users/"), "looked up before the retry"


def in_flight(store, clock, x):
    """w1 beats, holds the account and claims its post; then its refreshes fail."""
    first, _ = worker(store, clock, x, "w1")
    beat(first)
    store.ingest("world", [article(1)], [("x", 0)])
    (row,) = store.queue("x")
    assert store.claim(row.id, "w1", "Story number 1", guard=first.guard("x"))
    return first


def test_a_dead_workers_post_in_flight_is_looked_up_only_once_its_last_call_has_ended(
        store, clock, x):
    in_flight(store, clock, x)
    leases, taker = worker(store, clock, x, "w2")
    clock.advance(seconds=TTL.total_seconds() + 1)
    beat(leases)
    assert leases.holds("account", "x")
    taker.run()
    assert x.requests == [], "looked up while a call of w1's could still land"
    assert store.outbox_counts()["x"] == {"sending": 1}

    # A run that takes the account anew each time (``once`` from cron) judges
    # by w1's last beat: its lease ran out at beat + ttl, its last call ended
    # one call (connect + deadline) and the clocks' margin later.
    ended = TTL + CONNECT + DEADLINE + HOST_SKEW
    clock.now = T0 + ended - timedelta(seconds=1)
    leases, run = worker(store, clock, x, "once/1")
    beat(leases)
    run.run()
    leases.release_all()                # as a ``once`` run ends
    assert x.requests == [] and store.outbox_counts()["x"] == {"sending": 1}
    clock.now = T0 + ended
    leases, run = worker(store, clock, x, "once/2")
    beat(leases)
    run.run()
    assert calls(x, "/tweets")[0]["path"].startswith("/2/users/"), x.requests
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}


def test_a_worker_back_from_a_lost_lease_leaves_its_post_in_flight_to_the_new_holder(
        store, clock, x):
    first = in_flight(store, clock, x)
    leases, taker = worker(store, clock, x, "w0")   # first by id: its share keeps the account
    clock.advance(seconds=TTL.total_seconds() + 1)
    beat(leases)                        # w0 takes the account at T0 + ttl + 1 s
    taken = clock()
    for _ in range(12):                 # w1's refreshes work again: it beats, alive,
        clock.advance(seconds=5)        # but holds the account no more
        beat(first)
        beat(leases)
        taker.run()
        if clock() < taken + CONNECT + DEADLINE + HOST_SKEW:
            assert x.requests == [], f"looked up at {clock() - taken} after the take"
    assert not first.holds("account", "x")
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}, "not left in sending"


def test_the_post_in_flight_of_a_worker_whose_row_is_gone_waits_as_without_leases(
        store, clock, x):
    in_flight(store, clock, x)
    with store.tx() as conn:   # a stop deletes the row, a fatal one without waiting for its pass
        conn.execute(sa.text("DELETE FROM workers WHERE worker = 'w1'"))
    for n, (after, looked) in enumerate([(CLAIM_LEASE - timedelta(seconds=1), False),
                                         (CLAIM_LEASE, True)]):
        clock.now = T0 + after
        leases, run = worker(store, clock, x, f"once/{n}")   # takes the account anew
        beat(leases)
        run.run()
        leases.release_all()
        assert bool(x.requests) == looked, (after, x.requests)
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}
