"""Metrics: a real Poller and Publisher observed by Metrics, scraped over HTTP
from a real Listener and read back with prometheus_client's own parser."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from bot.adapters.base import Adapter
from bot.articles import LeadFinder
from bot.config import AccountConfig, FeedConfig, HttpSettings, Schedule
from bot.errors import AlreadyPosted, Rejected, Transient
from bot.http import HttpClient
from bot.listener import Listener, operator_routes
from bot.metrics import AccountGauges, Gauges, Metrics, gauges_from_store, label
from bot.models import Post, Receipt
from bot.poll import Poller
from bot.publish import Account, Publisher
from bot.secret import Secret
from bot.store import Store
from tests.helpers import T0, Clock, article

TOKEN = "tok-SECRET-0123456789"


def rss(*numbers: int) -> str:
    items = "".join(f"<item><title>Item {n}</title><link>https://e.example/{n}</link>"
                    f"<guid>g{n}</guid></item>" for n in numbers)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


class Platform(Adapter):
    """A fake platform answering from a script; remembers what it has."""

    platform = "scripted"
    max_length = 280
    url_length = 23
    counting = "twitter"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.script: list = []
        self.on_platform: dict[str, Receipt] = {}

    def publish(self, post: Post) -> Receipt:
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Exception):
            raise answer
        self.on_platform[post.link] = receipt = Receipt(platform_id=f"id-{len(self.on_platform)}")
        return receipt

    def find_recent(self, post: Post, since) -> Receipt | None:
        return self.on_platform.get(post.link)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def metrics(clock):
    return Metrics(version="9.9.9", clock=clock, feeds=["world"], accounts=[("x", "scripted")])


@pytest.fixture
def scrape(metrics):
    listener = Listener("127.0.0.1", 0, operator_routes(lambda: (True, ""), metrics.render))
    listener.start()
    yield lambda: _scrape(f"http://127.0.0.1:{listener.port}/metrics")
    listener.stop()


def _scrape(url: str) -> dict:
    """{(sample name, frozenset of labels): value} of one scrape."""
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def sample(metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"account": "x", "platform": "scripted"})


def publisher_for(store, clock, metrics, schedule=None, max_attempts=3):
    config = AccountConfig(name="x", platform="scripted", template="{title} {url}",
                           credentials={"token": Secret(TOKEN)}, schedule=schedule,
                           max_attempts=max_attempts)
    adapter = Platform("x", {}, config.credentials, clock=clock)
    return Publisher(store, [Account(config, adapter)], clock, "w1", rng=lambda: 0.5,
                     observer=metrics), adapter


def queue(store, *numbers):
    store.feed_row("world", "https://news.example.org/rss")
    if not store.feed_row("world", "https://news.example.org/rss").primed_at:
        store.ingest("world", [], [("x", 0)])  # first sight: nothing queued
    store.ingest("world", [article(n) for n in numbers], [("x", 0)])


# -- polls ----------------------------------------------------------------------

def test_polls_failures_and_new_items_per_feed(store, clock, metrics, scrape, httpserver):
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(1))
    httpserver.expect_ordered_request("/rss").respond_with_data(rss(3, 2, 1))
    httpserver.expect_ordered_request("/rss").respond_with_data("down", status=500)
    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    lambda feed: [("x", 0)], clock, observer=metrics)
    feed = FeedConfig(name="world", url=httpserver.url_for("/rss"), fetch_article="never")
    for _ in range(3):
        poller.poll(feed, force=True)
    samples = scrape()
    assert value(samples, "herald_polls_total", feed="world") == 3
    assert value(samples, "herald_poll_failures_total", feed="world") == 1
    assert value(samples, "herald_new_items_total", feed="world") == 3, "1 at first sight, then 2"
    assert not any(httpserver.url_for("/") in str(key) for key in samples), "no URL in a label"


def test_a_poll_skipped_while_backing_off_is_not_an_attempt(store, clock, metrics, httpserver):
    httpserver.expect_request("/rss").respond_with_data("down", status=503)
    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    lambda feed: [], clock, observer=metrics)
    feed = FeedConfig(name="world", url=httpserver.url_for("/rss"), fetch_article="never")
    poller.poll(feed)
    poller.poll(feed)  # within its back-off: not fetched
    assert metrics.registry.get_sample_value("herald_polls_total", {"feed": "world"}) == 1
    assert len(httpserver.log) == 1


# -- posts ------------------------------------------------------------------------

def test_sent_posts_and_their_latency_since_first_sight(store, clock, metrics, scrape):
    publisher, _ = publisher_for(store, clock, metrics)
    queue(store, 1, 2)
    clock.advance(seconds=90)
    assert publisher.run() == 2
    samples = scrape()
    labels = dict(account="x", platform="scripted")
    assert value(samples, "herald_posts_sent_total", **labels) == 2
    assert value(samples, "herald_first_seen_to_post_seconds_count", **labels) == 2
    assert value(samples, "herald_first_seen_to_post_seconds_sum", **labels) == 180
    assert value(samples, "herald_first_seen_to_post_seconds_bucket", le="60.0", **labels) == 0
    assert value(samples, "herald_first_seen_to_post_seconds_bucket", le="120.0", **labels) == 2


def test_failed_and_skipped_posts_are_counted(store, clock, metrics, scrape):
    publisher, adapter = publisher_for(store, clock, metrics,
                                       schedule=Schedule(expire_after=timedelta(hours=1)))
    queue(store, 1)
    adapter.script = [Rejected("too long")]
    publisher.run()
    queue(store, 2)
    clock.advance(hours=2)  # story 2 waited past expire_after
    publisher.run()
    samples = scrape()
    assert value(samples, "herald_posts_failed_total", account="x", platform="scripted") == 1
    assert value(samples, "herald_posts_skipped_total", account="x", platform="scripted") == 1
    assert value(samples, "herald_posts_sent_total", account="x", platform="scripted") == 0
    assert value(samples, "herald_first_seen_to_post_seconds_count",
                 account="x", platform="scripted") == 0, "only sent posts have a latency"


def test_transient_failures_count_once_when_the_post_gives_up(store, clock, metrics):
    publisher, adapter = publisher_for(store, clock, metrics, max_attempts=2)
    queue(store, 1)
    adapter.script = [Transient("503"), Transient("503")]
    publisher.run()
    assert sample(metrics, "herald_posts_failed_total") == 0, "a retry is not a failure"
    assert sample(metrics, "herald_posts_retried_total") == 1, "but it shows before it gives up"
    clock.advance(minutes=5)
    publisher.run()
    assert sample(metrics, "herald_posts_failed_total") == 1
    assert sample(metrics, "herald_posts_retried_total") == 1, "the last try is a failure"


def test_already_posted_and_found_after_a_restart_count_as_sent(store, clock, metrics):
    publisher, adapter = publisher_for(store, clock, metrics)
    queue(store, 1, 2)
    adapter.script = [AlreadyPosted("duplicate", platform_id="p-1")]
    (first, second) = store.queue("x")
    assert store.claim(second.id, "dead-worker", "text")  # a crash left it in sending
    adapter.on_platform[second.url] = Receipt(platform_id="p-2")
    publisher.run()
    assert store.outbox_counts()["x"] == {"sent": 2}
    assert sample(metrics, "herald_posts_sent_total") == 2


# -- gauges -----------------------------------------------------------------------

def test_gauges_come_from_the_callable_at_each_scrape(clock):
    state = {"depth": 3}
    metrics = Metrics(lambda: Gauges((
        AccountGauges("x", state["depth"], 42.5, False, 0.0),
        AccountGauges("fb", 0, 0.0, True, T0.timestamp()),)))
    listener = Listener(routes=operator_routes(lambda: (True, ""), metrics.render))
    listener.start()
    try:
        url = f"http://127.0.0.1:{listener.port}/metrics"
        samples = _scrape(url)
        assert value(samples, "herald_queue_depth", account="x") == 3
        assert value(samples, "herald_oldest_due_post_age_seconds", account="x") == 42.5
        assert value(samples, "herald_account_paused", account="x") == 0
        assert value(samples, "herald_account_paused", account="fb") == 1
        assert value(samples, "herald_account_rate_limited_until_seconds", account="fb") == T0.timestamp()
        state["depth"] = 7
        assert value(_scrape(url), "herald_queue_depth", account="x") == 7, "read per scrape"
    finally:
        listener.stop()


def test_a_failing_gauge_source_leaves_gauges_out_and_counters_in(caplog):
    def broken():
        raise RuntimeError(f"database down, password={TOKEN}")
    metrics = Metrics(broken, feeds=["world"])
    samples = {s.name for f in text_string_to_metric_families(metrics.render()[0].decode())
               for s in f.samples}
    assert "herald_polls_total" in samples and "herald_queue_depth" not in samples
    assert "gauges unavailable" in caplog.text and TOKEN not in caplog.text


def test_build_info_names_version_and_python(metrics):
    import platform
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(metrics.render()[0].decode()) for s in f.samples}
    assert value(samples, "herald_build_info", version="9.9.9", python=platform.python_version()) == 1


class StatsStore:
    """A real store's account rows with queue stats chosen by the test (an
    account removed from the config, a due time long ago)."""

    def __init__(self, store, stats):
        self.store, self.stats = store, stats

    def queue_stats(self, now):
        return self.stats

    def account_row(self, name):
        return self.store.account_row(name)


def test_gauges_from_store_reads_pause_wait_depth_and_age(store):
    store.set_account("paused", paused_reason="auth failed: 401")
    store.wait_until("limited", T0 + timedelta(minutes=15), "rate limited")
    store.wait_until("waited", T0 - timedelta(minutes=1), "rate limited")  # already over
    source = StatsStore(store, {"limited": (4, T0 - timedelta(minutes=10)), "gone": (9, None)})
    got = {g.account: g for g in gauges_from_store(source, ["paused", "limited", "waited", "new"], T0).accounts}
    assert set(got) == {"paused", "limited", "waited", "new"}, "configured accounts only"
    assert got["paused"] == AccountGauges("paused", 0, 0.0, True, 0.0)
    assert got["limited"] == AccountGauges("limited", 4, 600.0, False, (T0 + timedelta(minutes=15)).timestamp())
    assert got["waited"].rate_limited_until == 0.0
    assert got["new"] == AccountGauges("new", 0, 0.0, False, 0.0)


def test_gauges_from_a_real_store(store, clock):
    queue(store, 1, 2)
    clock.advance(minutes=10)
    (gauge,) = gauges_from_store(store, ["x"], clock()).accounts
    assert (gauge.depth, gauge.oldest_due_age) == (2, 600.0), "due since queued, 10 minutes ago"
    assert not gauge.paused and gauge.rate_limited_until == 0


# -- label values -------------------------------------------------------------------

# Hypothesis leaves lone surrogates out of text; a YAML escape can make one.
NAMES = st.text(st.characters() | st.sampled_from('"\\\n\r\t\x00{}=,# \ud800\udfff\u2028'),
                min_size=1, max_size=60)


@given(feed=NAMES, account=NAMES)
def test_any_name_renders_parseable_text_and_reads_back(feed, account):
    metrics = Metrics(lambda: Gauges((AccountGauges(account, 2, 1.0, False, 0.0),)))
    metrics.polled(feed, True, 1)
    metrics.settled(account, "x", "sent", T0)
    text = metrics.render()[0].decode("utf-8")
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert value(samples, "herald_polls_total", feed=label(feed)) == 1
    assert value(samples, "herald_posts_sent_total", account=label(account), platform="x") == 1
    assert value(samples, "herald_queue_depth", account=label(account)) == 2


def test_label_keeps_ordinary_names_and_mends_broken_ones():
    assert label("Le Monde — éco \"live\"\n") == "Le Monde — éco \"live\"\n"
    assert label("a\ud800b") == "a?b"
    assert len(label("n" * 1000)) == 200


def test_no_secret_url_or_article_text_in_the_exposition(store, clock, metrics):
    publisher, _ = publisher_for(store, clock, metrics)
    queue(store, 1)
    publisher.run()
    text = metrics.render()[0].decode()
    for secret in (TOKEN, "news.example.org", "Story number 1", "lead sentence"):
        assert secret not in text
    assert 'account="x"' in text
