"""The desk's verbs in the store: routes that hold or filter a post at ingest,
approve and reject, and the counts X's budget needs; on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.models import Target
from bot.store import Store
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

FEED = "world"


def open_store(url: str, clock=None) -> Store:
    store = Store(url, clock or Clock())
    store.migrate()
    store.feed_row(FEED, "https://news.example.org/rss")
    store.ingest(FEED, [article(0)], [("x", 0)])   # first sight: the feed is primed
    return store


def routed(article_):
    """x gets everything, fb must approve, mastodon filters odd stories out."""
    odd = int(article_.item_id.rsplit("-", 1)[1]) % 2 == 1
    return [Target("x", 2), Target("fb", 0, "held"),
            Target("mastodon", 0, "filtered", "excluded keyword: odd") if odd
            else Target("mastodon", 1)]


def statuses(store: Store) -> dict[tuple[str, str], tuple[str, str | None]]:
    rows = store.queue("x", ("pending", "held", "filtered", "skipped")) \
        + store.queue("fb", ("pending", "held", "filtered", "skipped")) \
        + store.queue("mastodon", ("pending", "held", "filtered", "skipped"))
    return {(r.title.rsplit(" ", 1)[1], r.account): (r.status, r.last_error) for r in rows}


def test_a_callable_gives_each_article_its_targets(db_url):
    store = open_store(db_url)
    result = store.ingest(FEED, [article(1), article(2)], routed)
    assert (result.new, result.queued) == (2, 5)   # the filtered row is not counted
    assert statuses(store) == {
        ("1", "x"): ("pending", None), ("1", "fb"): ("held", None),
        ("1", "mastodon"): ("filtered", "excluded keyword: odd"),
        ("2", "x"): ("pending", None), ("2", "fb"): ("held", None),
        ("2", "mastodon"): ("pending", None)}
    assert [r.priority for r in store.queue("x")] == [2, 2]


def test_pairs_still_work_and_a_known_story_is_not_held_again(db_url):
    store = open_store(db_url)
    store.ingest(FEED, [article(1)], routed)
    again = store.ingest(FEED, [article(1, item_id="new-guid-1")], routed)
    assert (again.new, again.queued) == (1, 0)
    assert store.ingest(FEED, [article(3)], [("x", 0)]).queued == 1


def test_an_unknown_status_is_refused(db_url):
    store = open_store(db_url)
    with pytest.raises(ValueError, match="unknown target status"):
        store.ingest(FEED, [article(1)], lambda a: [Target("x", status="later")])


def test_held_lists_held_rows_per_account_or_all(db_url):
    store = open_store(db_url)
    store.ingest(FEED, [article(1), article(2)], lambda a: [Target("x", 0, "held"),
                                                          Target("fb", 0, "held")])
    assert [(r.account, r.title) for r in store.held("fb")] == \
        [("fb", "Story number 1"), ("fb", "Story number 2")]
    assert len(store.held()) == 4 and store.queue("x") == []
    assert [(r.account, r.title) for r in store.held(limit=3)] == \
        [("x", "Story number 1"), ("fb", "Story number 1"), ("x", "Story number 2")]
    assert store.held("mastodon") == []


def test_approve_queues_it_now_with_the_edited_text(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.ingest(FEED, [article(1), article(2)], lambda a: [Target("x", 0, "held")])
    first, second = store.held("x")
    clock.advance(hours=3)
    assert store.approve(first.id, text="Edited by the desk") == 1
    assert store.approve(second.id) == 1
    assert store.approve(first.id) == 0   # no longer held
    rows = {r.id: r for r in store.queue("x")}
    assert rows[first.id].text == "Edited by the desk" and rows[second.id].text is None
    assert rows[first.id].queued_at == clock.now   # expire_after counts from here
    assert rows[first.id].first_seen_at == clock.now - timedelta(hours=3)


def test_reject_skips_a_held_post_only(db_url):
    store = open_store(db_url)
    store.ingest(FEED, [article(1)], lambda a: [Target("x", 0, "held"), Target("fb")])
    held, = store.held("x")
    pending, = store.queue("fb")
    assert store.reject(pending.id) == 0
    assert store.reject(held.id) == 1 and store.reject(held.id) == 0
    row = store.post(held.id)
    assert (row.status, row.last_error) == ("rejected", "rejected by an editor")
    assert store.queue("fb")[0].status == "pending"


def test_prune_deletes_filtered_rows_and_never_held_ones(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.ingest(FEED, [article(1)], lambda a: [Target("x", 0, "filtered", "no")])
    store.ingest(FEED, [article(2)], lambda a: [Target("x", 0, "held")])
    clock.advance(days=40)
    store.prune(clock.now - timedelta(days=30))
    assert store.queue("x", ("filtered",)) == []
    assert [r.title for r in store.held("x")] == ["Story number 2"]
    # The filtered story is remembered: it never comes back as new.
    assert store.ingest(FEED, [article(1)], [("x", 0)]).new == 0


def send(store: Store, row_id: int, text: str) -> None:
    assert store.claim(row_id, "w1", text)
    store.mark_sent(row_id, f"p{row_id}")


def test_sent_count_and_sent_since_tell_link_posts_apart(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.ingest(FEED, [article(n) for n in (1, 2, 3)], [("x", 0), ("fb", 0)])
    one, two, three = store.queue("x")
    send(store, one.id, "Old post https://news.example.org/story-1")
    clock.advance(days=1)
    since = clock.now
    send(store, two.id, "A post https://news.example.org/story-2?utm_source=x")
    clock.advance(minutes=1)
    send(store, three.id, "Headline only")
    send(store, store.queue("fb")[0].id, "fb post https://news.example.org/story-1")
    assert store.sent_count("x", since) == 2 and store.sent_count("x", since - timedelta(days=2)) == 3
    assert store.sent_since("x", since) == [(since, True), (since + timedelta(minutes=1), False)]
    assert store.sent_count("nobody", since) == 0 and store.sent_since("nobody", since) == []


def test_a_link_with_a_fragment_counts_as_a_link_post_with_its_tracking(db_url):
    clock = Clock()
    store = open_store(db_url, clock)
    store.ingest(FEED, [article(1, url="https://news.example.org/live#update-3")], [("x", 0)])
    (row,) = store.queue("x")
    send(store, row.id, "Live https://news.example.org/live?utm_source=x#update-3")
    assert store.sent_since("x", clock.now) == [(clock.now, True)]
