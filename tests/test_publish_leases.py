"""Publishing with leases, against the fake X: a worker whose heartbeats fail
looks dead to the others once its lease runs out, so it must not start a call
after that, and the worker that takes its account must not look its post in
flight up (and, not finding it, send it again) while a call of it can still
land. Each test runs on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.adapters.twitter import TwitterAdapter
from bot.config import AccountConfig
from bot.leases import Leases
from bot.publish import Account, Publisher
from bot.secret import Secret
from fakes import X_ACCESS_SECRET, X_ACCESS_TOKEN, X_CONSUMER_KEY, X_CONSUMER_SECRET
from fakes.server import FakeApi
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from test_publish import clock, store  # noqa: F401  (fixtures: a store whose feed was seen)
from tests.helpers import article

TTL = timedelta(seconds=20)
DEADLINE = timedelta(seconds=30)
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
        store, clock, x):
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
    assert row.attempts == 1 and "lease on the account ran out" in row.last_error

    publisher.accounts[0].adapter.fetch_media = lambda url: PNG
    clock.advance(minutes=5)
    beat(leases)
    publisher.run()
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}
    assert calls(x, "/tweets")[0]["path"].startswith("/2/users/"), "looked up before the retry"


def test_the_post_in_flight_of_a_worker_that_looks_dead_waits_one_deadline_before_its_lookup(
        store, clock, x):
    first, _ = worker(store, clock, x, "w1")
    beat(first)
    store.ingest("world", [article(1)], [("x", 0)])
    (row,) = store.queue("x")
    assert store.claim(row.id, "w1", "Story number 1", guard=first.guard("x"))
    # w1's refreshes fail from here on; its send may go on until its lease ends.

    leases, taker = worker(store, clock, x, "w2")
    clock.advance(seconds=TTL.total_seconds() + 1)
    beat(leases)
    assert leases.holds("account", "x") and not leases.alive("w1")
    taker.run()
    assert x.requests == [], "looked up while a call of w1's could still land"
    assert store.outbox_counts()["x"] == {"sending": 1}

    clock.advance(seconds=DEADLINE.total_seconds())   # w1's last call has ended by now
    beat(leases)
    taker.run()
    assert calls(x, "/tweets")[0]["path"].startswith("/2/users/"), x.requests
    assert len(x.posts) == 1 and store.outbox_counts()["x"] == {"sent": 1}
