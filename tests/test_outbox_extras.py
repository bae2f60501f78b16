"""The outbox as a person reads it: permalinks (``post_url``), the article's first
sight for the first-sight-to-post histogram, one post by id, and log lines that
say which feed, account and post they are about.

The permalink tests run a real adapter of every platform the fake server speaks,
on SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug import Response

from bot.adapters import UnavailablePlatform, adapter_class
from bot.articles import LeadFinder
from bot.config import AccountConfig, FeedConfig, HttpSettings
from bot.http import HttpClient
from bot.logs import JsonFormatter
from bot.models import Post
from bot.poll import Poller
from bot.publish import Account, Publisher
from bot.secret import Secret
from bot.store import Store
from fakes import FakeApi, platforms
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

CONTRACTS = {name: p.contract for name, p in sorted(platforms().items()) if p.contract}
DUPLICATES = sorted(n for n, c in CONTRACTS.items() if "403-duplicate" in c.faults)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(db_url, clock):
    store = Store(db_url, clock)
    store.migrate()
    store.feed_row("world", "https://news.example.org/rss")
    store.ingest("world", [], [("acct", 0)])  # first sight
    yield store
    store.close()


@pytest.fixture
def fake(clock):
    """The fake server on the test's clock, so lookups since a row's first try find posts."""
    with FakeApi(hang_seconds=3.0, clock=clock) as fake:
        yield fake


def account_for(name: str, fake: FakeApi, clock, **options) -> Account:
    """A real ``name`` adapter against ``fake``; skipped while it is being written."""
    try:
        cls = adapter_class(name)
    except UnavailablePlatform as exc:
        pytest.skip(str(exc))
    contract = CONTRACTS[name]
    secrets = {k: Secret(v) for k, v in contract.credentials.items()}
    adapter = cls("acct", {**contract.options(fake.url), **options}, secrets, clock=clock,
                  fetch_media=lambda url: PNG)
    config = AccountConfig(name="acct", platform=name, template="{title} {url}",
                           credentials=secrets, max_attempts=5)
    return Account(config, adapter)


def publisher(store, account, clock, worker="w1") -> Publisher:
    return Publisher(store, [account], clock, worker, rng=lambda: 0.5)


def the_row(store):
    [row] = store.recent(["sent"])
    return row


def assert_permalink(row, recorded: dict) -> None:
    """A page a person can open, naming the post the platform recorded."""
    assert row.post_url and row.post_url.startswith("https://")
    assert row.post_url.rstrip("/").rsplit("/", 1)[-1] in recorded["id"]
    assert row.platform_id == recorded["id"]


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_a_sent_post_keeps_its_permalink(store, clock, fake, name):
    account = account_for(name, fake, clock)
    store.ingest("world", [article(1)], [("acct", 0)])
    assert publisher(store, account, clock).run() == 1
    [recorded] = fake.posts
    assert_permalink(the_row(store), recorded)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_a_post_found_after_a_timeout_keeps_its_permalink(store, clock, fake, name):
    account = account_for(name, fake, clock, read_timeout=0.3)
    store.ingest("world", [article(1)], [("acct", 0)])
    posting = platforms()[name].posting[0]   # accepted, but the answer comes too late
    fake.script("slow-accept", path=posting, seconds=1.5)
    assert publisher(store, account, clock).run() == 0
    clock.advance(hours=2)
    assert publisher(store, account, clock).run() == 1
    [recorded] = fake.posts   # looked up, not sent again
    row = the_row(store)
    assert_permalink(row, recorded)
    assert row.last_error is None or "already" not in row.last_error


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_a_post_found_after_a_restart_keeps_its_permalink(store, clock, fake, name):
    account = account_for(name, fake, clock)
    store.ingest("world", [article(1)], [("acct", 0)])
    [row] = store.queue("acct")
    text = account.text(store.article(row.article_id), {})
    store.claim(row.id, "dead-worker", text)   # a worker that died after the platform took it
    account.adapter.publish(_post(row, account, store, text))
    assert publisher(store, account, clock).run() == 0   # settled, nothing new to send
    [recorded] = fake.posts
    row = the_row(store)
    assert_permalink(row, recorded)
    assert row.last_error == "found on the platform after a restart"


@pytest.mark.parametrize("name", DUPLICATES)
def test_a_duplicate_found_by_lookup_keeps_its_permalink(store, clock, fake, name):
    account = account_for(name, fake, clock)
    store.ingest("world", [article(1)], [("acct", 0)])
    [row] = store.queue("acct")
    text = account.text(store.article(row.article_id), {})
    account.adapter.publish(_post(row, account, store, text))   # already there
    fake.script("403-duplicate")
    assert publisher(store, account, clock).run() == 0
    [recorded] = fake.posts
    row = the_row(store)
    assert_permalink(row, recorded)
    assert row.last_error.startswith("already posted")


def _post(row, account, store, text):
    a = store.article(row.article_id)
    return Post(key=f"herald-{row.id}", account=account.name, text=text, link=a.url,
                image_url=a.image, title=a.title, description=a.lead)


def test_an_older_database_gains_an_empty_post_url(db_url, clock):
    store = Store(db_url, clock)
    store.migrate("0006")
    store.feed_row("world", "https://news.example.org/rss")
    store.ingest("world", [], [("acct", 0)])
    store.ingest("world", [article(1)], [("acct", 0)])
    with store.tx() as conn:   # sent by the Herald before this one
        conn.execute(sa.text("UPDATE outbox SET status = 'sent', platform_id = 'old-1'"))
    store.migrate()
    [row] = store.recent(["sent"])
    assert (row.platform_id, row.post_url) == ("old-1", None)
    store.close()


def listening(store, account, clock) -> tuple[Publisher, list]:
    """A publisher whose observer keeps what it heard: (account, platform, outcome, first_seen)."""
    heard: list = []

    class Observer:
        def settled(self, *args):
            heard.append(args)

    return Publisher(store, [account], clock, "w1", rng=lambda: 0.5, observer=Observer()), heard


def test_the_observer_hears_the_articles_first_sight_after_a_retry(store, clock, fake):
    account = account_for("twitter", fake, clock)
    first_sight = clock()
    store.ingest("world", [article(1)], [("acct", 0)])
    fake.script("400", path=platforms()["twitter"].posting[0])   # rejected: failed
    clock.advance(hours=1)
    pub, heard = listening(store, account, clock)
    assert pub.run() == 0
    [row] = store.queue("acct", ("failed",))
    clock.advance(hours=4)
    assert store.retry(row_id=row.id) == 1
    [again] = store.queue("acct")
    assert again.queued_at == clock() and again.first_seen_at == first_sight
    assert pub.run() == 1
    assert heard == [("acct", "twitter", "failed", first_sight),
                     ("acct", "twitter", "sent", first_sight)]


def test_one_post_by_id_says_what_it_is(store, clock):
    store.ingest("world", [article(1), article(2)], [("acct", 0)])
    first, second = store.queue("acct")
    store.mark_failed(first.id, "rejected: too long")
    store.mark_sent(second.id, "p-2", url="https://social.example/p-2")
    failed, sent = store.post(first.id), store.post(second.id)
    assert (failed.status, failed.account, failed.last_error) == ("failed", "acct", "rejected: too long")
    assert failed.title == "Story number 1" and failed.url == "https://news.example.org/story-1"
    assert (sent.status, sent.platform_id, sent.post_url) == ("sent", "p-2", "https://social.example/p-2")
    assert store.post(second.id + 1000) is None
    # retry and skip keep their counts: a sent post is neither retried nor skipped
    assert (store.retry(row_id=second.id), store.skip(second.id)) == (0, 0)
    assert store.retry(row_id=first.id) == 1 and store.post(first.id).status == "pending"


# -- log lines say what they are about ------------------------------------------

POST_IN_MESSAGE = re.compile(r"\bpost (\d+)\b")


def assert_fields(records, **fields) -> None:
    """Every record carries ``fields``; one that names a post carries its id."""
    assert records
    for record in records:
        assert {k: getattr(record, k, None) for k in fields} == fields, record.getMessage()
        named = POST_IN_MESSAGE.search(record.getMessage())
        if named:
            assert record.post == int(named.group(1)), record.getMessage()


def test_publish_log_lines_name_the_account_platform_and_post(store, clock, fake, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.publish")
    account = account_for("twitter", fake, clock)
    posting = platforms()["twitter"].posting[0]
    store.ingest("world", [article(n) for n in (1, 2, 3, 4)], [("acct", 0)])
    rows = store.queue("acct")
    store.claim(rows[3].id, "dead-worker", "never sent")   # reconciled: not on the platform
    pub = publisher(store, account, clock)
    fake.script("400", "500", path=posting)   # one rejected, one transient
    pub.run()
    clock.advance(hours=2)
    assert pub.run() == 3   # the reconciled one, the transient one and the last
    store.ingest("world", [article(5), article(6)], [("acct", 0)])
    fake.script("429", path=posting, reset=int(clock().timestamp()) + 600)
    pub.run()
    clock.advance(hours=2)
    fake.script("401", path=posting)
    pub.run()
    pub.run()   # paused: says so at DEBUG
    records = [r for r in caplog.records if r.name == "bot.publish"]
    assert_fields(records, account="acct", platform="twitter")
    about_posts = {r.post for r in records if hasattr(r, "post")}
    assert about_posts >= {r.id for r in rows}, about_posts
    assert [r for r in records if not hasattr(r, "post")], "account-only lines carry no post"
    sent = next(r for r in records if r.getMessage().startswith("post sent"))
    assert the_post_url(store, sent.post) in sent.getMessage()
    line = json.loads(JsonFormatter().format(sent))
    assert (line["account"], line["platform"], line["post"]) == ("acct", "twitter", sent.post)


def the_post_url(store, row_id: int) -> str:
    url = store.post(row_id).post_url
    assert url
    return url


def test_poll_log_lines_name_the_feed(tmp_path, clock, httpserver, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.poll")
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", clock)
    store.migrate()
    routes = {"calls": 0}

    def accounts_for(name):
        routes["calls"] += 1
        if routes["calls"] == 2:
            raise RuntimeError("a bug in routing")   # the poller's own surprise
        return [("acct", 0)]

    poller = Poller(store, HttpClient(HttpSettings(deadline=5, read_timeout=2)), LeadFinder(None),
                    accounts_for, clock)
    feed = FeedConfig(name="city", url=httpserver.url_for("/rss"), every=timedelta(minutes=5),
                      fetch_article="never")
    headers = {"ETag": '"v1"'}
    # Routing is asked only when there is something to ingest: the second
    # answer has a new item, the fourth only a known one.
    for answer in (Response(RSS_1, headers=headers), Response(RSS_2, headers=headers),
                   Response(status=304), Response(RSS_1), Response(status=500),
                   Response(status=410)):
        httpserver.expect_ordered_request("/rss").respond_with_response(answer)
    for _ in range(7):
        poller.poll(feed, force=True)
    records = [r for r in caplog.records if r.name == "bot.poll"]
    assert_fields(records, feed="city")
    said = " | ".join(r.getMessage() for r in records)
    for event in ("first sight", "polled", "not modified", "unexpected error", "next try",
                  "polling stopped", "not polled"):
        assert event in said
    store.close()


RSS_1 = ("<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item>"
         "<title>Item 1</title><link>https://e.example/1</link><guid>g1</guid></item>"
         "</channel></rss>")
RSS_2 = RSS_1.replace("<item>", "<item><title>Item 2</title><link>https://e.example/2</link>"
                      "<guid>g2</guid></item><item>", 1)
