"""The desk's data and actions over a real store and publisher (bot.deskdata)."""
from __future__ import annotations

import pytest

from bot.deskdata import DeskBackend
from bot.errors import Rejected
from bot.models import Target
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import article
from tests.test_publish import clock, make, store  # noqa: F401 (fixtures)


def held(store, *numbers):
    store.ingest("world", [article(n) for n in numbers], lambda a: [Target("x", status="held")])
    return [r.id for r in store.held("x")]


@pytest.fixture
def desk(store, clock):
    publisher, adapter = make(store, clock)
    return DeskBackend(store, lambda: publisher, "Europe/Berlin", clock), publisher, adapter


def test_the_document_carries_held_posts_with_the_text_they_would_go_out_with(desk, store):
    backend, _, _ = desk
    (post,) = held(store, 1)
    doc = backend.doc()
    (shown,) = doc["held"]
    assert shown["id"] == post
    assert shown["text"].startswith("Story number 1: The lead sentence of story 1")
    assert doc["accounts"][0]["counts"] == {"held": 1}


def test_an_approved_post_is_sent_by_the_next_pass_with_the_edited_text(desk, store):
    backend, publisher, adapter = desk
    (post,) = held(store, 1)
    assert publisher.run() == 0, "a held post is not sent"
    message = backend.act("approve", post, "  Edited by the desk https://news.example.org/story-1 ")
    assert message.startswith(f"post {post} (x) approved")
    assert publisher.run() == 1
    assert adapter.posted[0].text == "Edited by the desk https://news.example.org/story-1"


def test_an_edited_text_over_the_limit_is_refused_and_the_post_stays_held(desk, store):
    backend, _, _ = desk
    (post,) = held(store, 1)
    with pytest.raises(ValueError, match="counts 281 on scripted; the limit is 280"):
        backend.act("approve", post, "a" * 281)
    assert [r.id for r in store.held("x")] == [post]
    # A link counts 23 whatever its length, as on X.
    assert backend.check_text(post, "b" * 250 + " https://example.org/" + "c" * 100) is None


def test_a_rejected_post_is_never_sent(desk, store):
    backend, publisher, adapter = desk
    (post,) = held(store, 1)
    backend.act("reject", post, None)
    assert publisher.run() == 0 and adapter.posted == []
    assert store.post(post).status == "rejected"
    with pytest.raises(ValueError, match="is rejected, not failed or skipped"):
        backend.act("retry", post, None)   # what an editor refused is never sent by a retry


def test_actions_refuse_posts_in_the_wrong_state_and_unknown_ids(desk, store):
    backend, publisher, adapter = desk
    (post,) = held(store, 1)
    with pytest.raises(ValueError, match=f"post {post} is held, not failed or skipped"):
        backend.act("retry", post, None)
    with pytest.raises(ValueError, match="post 9999 does not exist"):
        backend.act("approve", 9999, None)
    with pytest.raises(ValueError, match="unknown action"):
        backend.act("delete", post, None)


def test_a_failed_post_retried_from_the_desk_goes_out(desk, store):
    backend, publisher, adapter = desk
    store.ingest("world", [article(2)], [("x", 0)])
    adapter.script = [Rejected("400 nope")]
    publisher.run()
    (failed,) = [r.id for r in store.recent(["failed"])]
    assert "queued again" in backend.act("retry", failed, None)
    assert publisher.run() == 1


def test_an_edited_text_over_a_byte_cap_is_refused_naming_it(desk, store):
    backend, _, adapter = desk
    (post,) = held(store, 1)
    adapter.max_bytes = 100    # as Bluesky has 3,000 beside its 300 graphemes
    assert backend.check_text(post, "a" * 100) is None
    assert backend.check_text(post, "é" * 51) == ("the text is 102 bytes of UTF-8; "
                                                  "scripted takes at most 100")
