"""Publishing with leases, against the fake X: a worker whose heartbeats fail
looks dead to the others once its lease runs out, so it must not start a call
after that, and the worker that takes its account must not look its post in
flight up (and, not finding it, send it again) while a call of it can still
land, nor leave it in sending for ever. Each test runs on SQLite and
PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.adapters.twitter import TwitterAdapter
from bot.config import AccountConfig
from bot.leases import Leases
from bot.publish import HOST_SKEW, Account, Publisher
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


def worker(store, clock, x, name, fetch_media=lambda url: PNG):
    """A worker's leases and publisher, posting to the fake X (images on)."""
    config = AccountConfig(name="x", platform="twitter", template="{title} {url}",
                           credentials={k: Secret(v) for k, v in X_CREDS.items()})
    adapter = TwitterAdapter("x", {"api_base_url": x.url, "attach_image": True,
                                   "connect_timeout": CONNECT.total_seconds(),
                                   "deadline": DEADLINE.total_seconds()},
                             config.credentials, clock=clock, fetch_media=fetch_media)
    leases = Leases(store, name, clock, TTL)
    publisher = Publisher(store, [Account(config, adapter)], clock, name, exclusive=False,
                          leases=leases, rng=lambda: 0.5)
    return leases, publisher


def beat(leases):
    leases.refresh(["world"], ["x"])


def calls(x, path_end):
    return [r for r in x.requests if r["path"].endswith(path_end)]


def test_a_worker_whose_lease_runs_out_mid_send_starts_no_call_and_posts_once_later(
        store, clock, x, caplog):
    def stalled_image(url):
        # The image fetch stalls past the lease; no refresh ran meanwhile.
        clock.advance(seconds=TTL.total_seconds() + 1)
        return PNG
    leases, publisher = worker(store, clock, x, "w1", fetch_media=stalled_image)
    beat(leases)
    store.ingest("world", [article(1, image="https://news.example.org/1.png")], [("x", 0)])
    publisher.run()
    assert calls(x, "/2/tweets") == [] and calls(x, "/upload") == [], x.requests
    (row,) = store.queue("x")
    assert "lease on the account ran out" in row.last_error
    assert "posting without image" not in caplog.text, "stopped, not sent without its image"
    state = store.account_row("x")
    assert row.attempts == 0 and (state is None or state.paused_until is None), \
        "Herald's own stop costs no attempt and no back-off"

    publisher.accounts[0].adapter.fetch_media = lambda url: PNG
    beat(leases)
    publisher.run()
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}
    assert calls(x, "/tweets")[0]["path"].startswith("/2/users/"), "looked up before the retry"
    assert calls(x, "/upload"), "and sent with its image"


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
