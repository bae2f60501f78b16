"""Retention: settled posts, and the stories no post refers to any more, are
deleted after a while in short transactions; what dedupe needs stays in
``seen_keys`` as digests, so an old item that reappears is never queued again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.schema import among, articles, item_digest, items, outbox, referenced, seen_keys, story_digest

SETTLED = ("sent", "failed", "skipped", "filtered", "rejected")   # only these are ever pruned
Transaction = Callable[[], AbstractContextManager[sa.Connection]]


def prune(tx: Transaction, before: datetime, limit: int = 5000, batch: int = 500) -> int:
    """Delete up to ``limit`` settled (sent, failed, skipped, filtered) outbox rows
    settled before ``before``, then the stories no outbox row references
    any more, with their items: those whose last post went now, and those
    first seen before ``before`` and never queued (up to ``limit`` too).
    What dedupe needs stays in ``seen_keys``. Pending, sending and held
    rows, and the stories they refer to, are never touched. Each ``batch``
    is one short transaction, so the service's writers wait little.
    Returns the outbox rows plus the stories deleted."""
    done = posts = 0
    while posts < limit:
        want = min(batch, limit - posts)
        n, stories, whole = _prune_posts(tx, before, want)
        posts, done = posts + n, done + n + stories
        if whole < want:
            break
    after: int | None = 0
    stories = 0
    while after is not None and stories < limit:
        n, after = _prune_unqueued(tx, before, min(batch, limit - stories), after)
        stories, done = stories + n, done + n
    return done

def _prune_posts(tx: Transaction, before: datetime, n: int) -> tuple[int, int, int]:
    """One batch of up to ``n`` stories whose posts are all settled before
    ``before``: their posts, then the stories and their dedupe digests.
    A story goes whole or not at all: while one account's post of it is
    kept, the others' must be too, or the story coming back under a new
    id would be queued again for them. Returns (posts, stories, stories
    chosen)."""
    other = outbox.alias("other")
    kept = sa.exists().where(other.c.article_id == outbox.c.article_id, sa.or_(
        other.c.status.not_in(SETTLED), other.c.updated_at >= before))
    ready = (sa.select(outbox.c.article_id).where(outbox.c.status.in_(SETTLED),
                                                  outbox.c.updated_at < before, ~kept)
             .group_by(outbox.c.article_id).limit(n))
    with tx() as conn:
        chosen = conn.execute(ready).scalars().all()
        if not chosen:
            return 0, 0, 0
        gone = conn.execute(outbox.delete().where(among(outbox.c.article_id, conn.dialect.name)),
                            {"ids": list(chosen)}).rowcount
        return gone, _forget(conn, sorted(chosen)), len(chosen)

def _prune_unqueued(tx: Transaction, before: datetime, n: int, after: int) -> tuple[int, int | None]:
    """One batch of stories first seen before ``before`` that no post
    refers to, from id ``after`` on. Returns (deleted, the id to go on
    from, None when no more)."""
    with tx() as conn:
        ids = conn.execute(sa.select(articles.c.id).where(
            articles.c.id > after, articles.c.first_seen_at < before, ~referenced())
            .order_by(articles.c.id).limit(n)).scalars().all()
        _forget(conn, ids)
    return len(ids), (ids[-1] if len(ids) == n else None)


def _forget(conn: sa.Connection, article_ids: Sequence[int]) -> int:
    """Delete those of ``article_ids`` no post refers to, with their items,
    keeping their dedupe digests. Returns the stories deleted."""
    if not article_ids:
        return 0
    dialect, ids = conn.dialect.name, {"ids": list(article_ids)}
    gone_items = conn.execute(items.delete().where(
        among(items.c.article_id, dialect), ~referenced(items, "article_id"))
        .returning(items.c.feed, items.c.item_id), ids).all()
    keys = conn.execute(articles.delete().where(among(articles.c.id, dialect), ~referenced())
                        .returning(articles.c.url_key), ids).scalars().all()
    digests = sorted({item_digest(f, i) for f, i in gone_items} | {story_digest(k) for k in keys})
    if digests and dialect == "postgresql":
        conn.execute(PG_REMEMBER, {"keys": digests})   # one statement, not one per key
    elif digests:
        conn.execute(sqlite.insert(seen_keys).on_conflict_do_nothing(), [{"key": d} for d in digests])
    return len(keys)


PG_REMEMBER = sa.text("INSERT INTO seen_keys (key) SELECT unnest(:keys) ON CONFLICT DO NOTHING") \
    .bindparams(sa.bindparam("keys", type_=postgresql.ARRAY(sa.LargeBinary)))
