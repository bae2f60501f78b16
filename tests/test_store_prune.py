"""Retention: settled posts and their stories are deleted after a while in
small batches; what dedupe needs stays, so an old item that reappears in a
feed is never queued again; open posts and their stories are never touched."""
from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.store import Store, articles, items, outbox, seen_keys
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import T0, Clock, article

ACCOUNTS = [("x", 0), ("fb", 0)]
FEED = "world"


def open_store(url: str, clock=None) -> Store:
    store = Store(url, clock or Clock())
    store.migrate()
    return store


def poll(store: Store, found, accounts=ACCOUNTS, feed=FEED):
    store.feed_row(feed, "https://news.example.org/rss")
    return store.ingest(feed, found, accounts)


def count(store: Store, table: sa.Table) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def ids(store: Store, account="x") -> dict[str, str]:
    """title → status of the account's outbox rows."""
    with store.read() as conn:
        return dict(conn.execute(sa.select(articles.c.title, outbox.c.status)
                                 .join(articles, articles.c.id == outbox.c.article_id)
                                 .where(outbox.c.account == account)).all())


def settle(store: Store, clock: Clock, account: str, status: str) -> None:
    """Move every pending row of ``account`` to ``status`` now."""
    for row in store.queue(account):
        if status == "sent":
            store.claim(row.id, "w", "text")
            store.mark_sent(row.id, f"p{row.id}")
        elif status == "failed":
            store.mark_failed(row.id, "rejected")
        elif status == "skipped":
            store.mark_skipped(row.id, "expired")
        elif status == "sending":
            store.claim(row.id, "w", "text")
        elif status == "held":   # a status a later Herald may add: never pruned
            with store.tx() as conn:
                conn.execute(outbox.update().where(outbox.c.id == row.id).values(status="held"))


def test_old_settled_posts_go_with_their_stories_and_never_come_back(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    poll(store, [article(n) for n in range(6)])
    settle(store, clock, "x", "sent")
    settle(store, clock, "fb", "skipped")
    clock.advance(days=100)
    assert store.prune(clock() - timedelta(days=90)) == 12 + 6   # 12 posts, 6 stories
    assert (count(store, outbox), count(store, articles), count(store, items)) == (0, 0, 0)
    assert count(store, seen_keys) == 12   # one per item, one per story
    again = poll(store, [article(n) for n in range(6)])
    assert (again.new, again.queued) == (0, 0)
    assert store.known_items(FEED, ["guid-1", "guid-99"]) == {"guid-1"}


def test_a_pruned_story_under_a_new_guid_or_scheme_is_not_queued(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    poll(store, [article(1)])
    settle(store, clock, "x", "sent")
    settle(store, clock, "fb", "failed")
    clock.advance(days=100)
    store.prune(clock() - timedelta(days=90))
    moved = article(1, item_id="new-guid", url="http://www.news.example.org/story-1")
    first = poll(store, [moved])
    assert (first.new, first.queued) == (1, 0)
    assert (poll(store, [moved]).new, count(store, outbox), count(store, articles)) == (0, 0, 0)
    other = poll(store, [article(1, feed="other")], feed="other")   # a feed that never had it
    assert other.queued == 0


def test_recent_and_open_posts_and_their_stories_stay(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    poll(store, [article(1)])
    settle(store, clock, "x", "sent")           # old and settled: goes
    poll(store, [article(2)], accounts=[("x", 0)])
    settle(store, clock, "x", "held")           # old, held: stays
    poll(store, [article(3)], accounts=[("x", 0)])
    settle(store, clock, "x", "sending")        # old, in flight: stays
    clock.advance(days=100)
    poll(store, [article(4)], accounts=[("x", 0)])
    settle(store, clock, "x", "failed")         # settled but recent: stays
    # story 1 still has fb's pending row, so x's sent post of it stays too
    assert store.prune(clock() - timedelta(days=90)) == 0
    assert ids(store, "x") == {"Story number 1": "sent", "Story number 2": "held",
                               "Story number 3": "sending", "Story number 4": "failed"}
    assert ids(store, "fb") == {"Story number 1": "pending"}
    (row,) = store.queue("fb")
    assert store.article(row.article_id).title == "Story number 1"   # fb can still post it
    assert store.prune(clock() - timedelta(days=90)) == 0


def test_never_queued_stories_of_a_first_sight_go_after_the_retention(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [article(n) for n in range(5)])   # first sight: nothing queued
    clock.advance(days=30)
    poll(store, [article(9)], accounts=[])          # a feed routed to no account
    clock.advance(days=70)
    assert store.prune(clock() - timedelta(days=90)) == 5
    assert count(store, articles) == 1
    assert poll(store, [article(n) for n in (0, 1, 2, 3, 4, 9, 10)]).new == 1   # story 10 only


def test_limit_and_batch_bound_the_work(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    poll(store, [article(n) for n in range(10)], accounts=[("x", 0)])
    settle(store, clock, "x", "sent")
    clock.advance(days=100)
    before = clock() - timedelta(days=90)
    assert store.prune(before, limit=7, batch=3) == 7 + 7
    assert count(store, outbox) == 3
    assert store.prune(before, limit=7, batch=3) == 3 + 3
    assert count(store, articles) == 0


def test_100k_settled_rows_are_pruned_in_batches_and_never_requeued(db_url, record_property):
    clock = Clock()
    store = open_store(db_url, clock)
    n = 100_000
    bulk_settled(store, n)
    clock.advance(days=100)
    start = time.perf_counter()
    deleted = store.prune(clock() - timedelta(days=90), limit=n)
    elapsed = time.perf_counter() - start
    record_property("prune_100k_seconds", round(elapsed, 2))
    print(f"\nprune of {n} posts and {n} stories on {store.engine.dialect.name}: {elapsed:.2f} s")
    assert deleted == 2 * n
    assert (count(store, outbox), count(store, articles), count(store, items)) == (0, 0, 0)
    assert count(store, seen_keys) == 2 * n
    again = poll(store, [article(k) for k in range(0, n, 7)] + [article(n + 1)], accounts=[("x", 0)])
    assert (again.new, again.queued) == (1, 1)


def bulk_settled(store: Store, n: int) -> None:
    """``n`` stories, each sent to x at T0: written in bulk, as ingest and
    mark_sent would leave them (the store's own path takes minutes for this)."""
    poll(store, [])
    step = 5000
    with store.tx() as conn:
        for lo in range(0, n, step):
            span = range(lo, min(lo + step, n))
            conn.execute(articles.insert(), [
                {"id": k + 1, "url_key": f"news.example.org/story-{k}",
                 "url": f"https://news.example.org/story-{k}", "feed": FEED,
                 "title": f"Story number {k}", "lead": "", "categories": "[]",
                 "first_seen_at": T0} for k in span])
            conn.execute(items.insert(), [
                {"feed": FEED, "item_id": f"guid-{k}", "article_id": k + 1, "first_seen_at": T0}
                for k in span])
            conn.execute(outbox.insert(), [
                {"article_id": k + 1, "account": "x", "status": "sent", "priority": 0,
                 "queued_at": T0, "attempts": 1, "sent_at": T0, "platform_id": f"p{k}",
                 "updated_at": T0} for k in span])
        if conn.dialect.name == "postgresql":   # explicit ids leave the sequence behind
            conn.execute(sa.text("select setval('articles_id_seq', (select max(id) from articles))"))


# -- properties ----------------------------------------------------------------

STATUSES = ["pending", "sending", "held", "sent", "failed", "skipped"]
post = st.tuples(st.sampled_from(STATUSES), st.integers(0, 200))       # (status, age in days)
story = st.lists(post, min_size=0, max_size=2)                          # posts of x, fb


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories=st.lists(story, min_size=1, max_size=12), retention=st.integers(1, 150),
       batch=st.integers(1, 5))
def test_prune_keeps_exactly_what_it_must(stories, retention, batch):
    with tempfile.TemporaryDirectory() as folder:
        clock = Clock(T0 - timedelta(days=300))
        store = open_store(f"sqlite:///{Path(folder) / 'h.db'}", clock)
        expect = build(store, clock, stories)
        clock.now = T0
        before = T0 - timedelta(days=retention)
        store.prune(before, limit=10_000, batch=batch)
        kept = {(r.article_id, r.account): r.status for r in rows(store)}

        def prunable(status, at):
            return status in ("sent", "failed", "skipped") and at < before

        # a story goes whole: its posts go only when every one of them may
        whole = {story for story, _ in expect
                 if all(prunable(*v) for (s, _), v in expect.items() if s == story)}
        assert kept == {key: status for key, (status, at) in expect.items() if key[0] not in whole}
        with store.read() as conn:
            alive = set(conn.execute(sa.select(articles.c.id)).scalars())
        assert {a for a, _ in kept} <= alive   # an open post keeps its story
        again = poll(store, [article(k) for k in range(len(stories))])
        assert (again.new, again.queued) == (0, 0)
        store.close()


def build(store: Store, clock: Clock, stories) -> dict:
    """Queue one story per entry for the accounts it has posts for, settle
    each post ``age`` days before T0; returns (article_id, account) →
    (status, settled at)."""
    poll(store, [article(k) for k in range(len(stories))], accounts=[])   # first sight
    expect = {}
    for k, posts in enumerate(stories):
        names = ["x", "fb"][:len(posts)]
        poll(store, [article(k, item_id=f"q{k}")], accounts=[(a, 0) for a in names])
        for name, (status, age) in zip(names, posts):
            clock.now = T0 - timedelta(days=age)
            row = max(store.queue(name), key=lambda r: r.id)   # the one just queued
            settle_one(store, row.id, status)
            expect[(row.article_id, name)] = (status, clock.now)
    return expect


def settle_one(store: Store, row_id: int, status: str) -> None:
    if status in ("sent", "sending"):
        store.claim(row_id, "w", "text")
    if status == "sent":
        store.mark_sent(row_id, "p")
    elif status == "failed":
        store.mark_failed(row_id, "rejected")
    elif status == "skipped":
        store.mark_skipped(row_id, "expired")
    elif status in ("held", "pending"):
        with store.tx() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(
                status=status, updated_at=store.clock()))


def rows(store: Store) -> list:
    with store.read() as conn:
        return conn.execute(sa.select(outbox)).all()


def test_a_story_is_pruned_whole_so_no_account_gets_it_again(db_url):
    """One account sent on day 0, the other on day 30; on day 100 (retention
    90d) neither row goes while the newer one is kept, and the story coming back
    under a new guid is queued for nobody."""
    clock = Clock()
    store = open_store(db_url, clock)
    poll(store, [])
    poll(store, [article(1)])
    settle(store, clock, "x", "sent")
    clock.advance(days=30)
    settle(store, clock, "fb", "sent")
    clock.advance(days=70)
    assert store.prune(clock() - timedelta(days=90)) == 0, "fb's post is newer than the cut"
    assert poll(store, [article(1, item_id="republished")]).queued == 0
    clock.advance(days=30)
    assert store.prune(clock() - timedelta(days=90)) == 3, "both posts and the story"
    assert poll(store, [article(1, item_id="republished-again")]).queued == 0
    assert store.queue("x") == [] and store.queue("fb") == []
