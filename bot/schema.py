"""Herald's tables as SQLAlchemy Core sees them, and how keys are kept in them.

The migrations in bot/migrations make and change the schema; this is the
code's view of it, shared by bot.store and bot.retention. Key columns keep
long values as digests (``db_key``); the dedupe of pruned items and stories
keeps 128-bit digests (``item_digest``, ``story_digest``) in ``seen_keys``.
"""
from __future__ import annotations

import functools
import hashlib
from datetime import timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from bot.feedtext import normalise_url

# items.item_id is VARCHAR(1000) and PostgreSQL, unlike SQLite, enforces that
# and caps a b-tree entry near 2.7 kB; longer keys are stored as a digest.
KEY_BYTES = 1000


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in and out, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


meta = sa.MetaData()
TS = UTCDateTime
feed_state = sa.Table(
    "feed_state", meta,
    sa.Column("name", sa.String(200), primary_key=True), sa.Column("configured_url", sa.Text),
    sa.Column("url", sa.Text), sa.Column("etag", sa.Text), sa.Column("last_modified", sa.Text),
    sa.Column("primed_at", TS), sa.Column("last_fetch_at", TS), sa.Column("last_success_at", TS),
    sa.Column("error_streak", sa.Integer), sa.Column("last_error", sa.Text),
    sa.Column("next_poll_at", TS), sa.Column("gone_reason", sa.Text))
articles = sa.Table(
    "articles", meta,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("url_key", sa.Text),
    sa.Column("url", sa.Text), sa.Column("feed", sa.String(200)), sa.Column("title", sa.Text),
    sa.Column("lead", sa.Text), sa.Column("image", sa.Text), sa.Column("author", sa.Text),
    sa.Column("categories", sa.Text), sa.Column("published_at", TS), sa.Column("first_seen_at", TS))
items = sa.Table(
    "items", meta,
    sa.Column("feed", sa.String(200), primary_key=True),
    sa.Column("item_id", sa.String(1000), primary_key=True),
    sa.Column("article_id", sa.Integer), sa.Column("first_seen_at", TS))
outbox = sa.Table(
    "outbox", meta,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("article_id", sa.Integer),
    sa.Column("account", sa.String(200)), sa.Column("status", sa.String(16)),
    sa.Column("priority", sa.Integer), sa.Column("queued_at", TS), sa.Column("not_before", TS),
    sa.Column("attempts", sa.Integer), sa.Column("claimed_at", TS),
    sa.Column("claimed_by", sa.String(200)), sa.Column("sent_at", TS),
    sa.Column("platform_id", sa.String(200)), sa.Column("text", sa.Text),
    sa.Column("last_error", sa.Text), sa.Column("updated_at", TS),
    sa.Column("first_tried_at", TS),   # first claim; never cleared (0002)
    sa.Column("post_url", sa.Text))   # the receipt's permalink (0007)
account_state = sa.Table(
    "account_state", meta,
    sa.Column("name", sa.String(200), primary_key=True), sa.Column("paused_reason", sa.Text),
    sa.Column("paused_until", TS), sa.Column("auth_failed_fingerprint", sa.String(64)),
    sa.Column("updated_at", TS), sa.Column("wait_reason", sa.Text))   # 0004
workers = sa.Table(
    "workers", meta,   # 0005
    sa.Column("worker", sa.String(200), primary_key=True), sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer), sa.Column("started_at", TS), sa.Column("beat_at", TS))
seen_keys = sa.Table(
    "seen_keys", meta,   # 0006: digests of pruned items and stories (item_digest, story_digest)
    sa.Column("key", sa.LargeBinary(16), primary_key=True))


def db_key(value: str) -> str:
    """``value`` as kept in a key column: itself up to KEY_BYTES of UTF-8,
    else its first 200 characters and the SHA-256 of the whole."""
    value = db_text(value) or ""
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= KEY_BYTES:
        return value
    return f"{value[:200]} sha256:{hashlib.sha256(raw).hexdigest()}"


def story_key(url: str) -> str:
    """The key that makes one story of many links to it: the normalised URL
    without its scheme and a leading ``www.``, since a site that moved to https
    or gained ``www.`` still publishes the same article."""
    try:
        key = normalise_url(url)
    except ValueError:  # a link urlsplit refuses is kept as written
        return db_text(url)
    scheme, sep, rest = key.partition("://")
    if sep and scheme in ("http", "https"):
        key = rest.removeprefix("www.")
    return db_text(key)


def item_digest(feed: str, stored_id: str) -> bytes:
    """The seen_keys digest of an item as ``items`` keeps it (feed, db_key)."""
    return _digest(b"item", feed, stored_id)


def story_digest(url_key: str) -> bytes:
    """The seen_keys digest of a story key as ``articles.url_key`` keeps it."""
    return _digest(b"story", url_key)


def _digest(kind: bytes, *parts: str) -> bytes:
    # 128 bits: a false "seen" needs a collision among ~2^64 keys.
    raw = "\0".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(kind + b"\0" + raw).digest()[:16]


@functools.lru_cache(maxsize=65536)   # asked at every poll, for a few feeds' URLs
def url_digest(url: str) -> str:
    """What feed_state.configured_url keeps of a feed's configured URL: enough
    to see that the user changed it, not the URL itself, which may carry a
    token (``https://user:token@host/feed``, ``?key=...``)."""
    return "sha256:" + hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def referenced(table: sa.Table = articles, column: str = "id") -> sa.ColumnElement[bool]:
    """True for a story some outbox row (of any status) still refers to."""
    return sa.exists().where(outbox.c.article_id == table.c[column])


def among(column: sa.Column, dialect: str, kind=sa.Integer) -> sa.ColumnElement[bool]:
    """``column`` is one of the bound list ``ids``: an expanding IN on SQLite;
    on PostgreSQL one array parameter (``= ANY``), which psycopg neither parses
    nor plans anew for every length of the list."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(kind)))
    return column.in_(sa.bindparam("ids", expanding=True))


def db_text(value: str | None) -> str | None:
    """What every database takes: PostgreSQL refuses NUL in text."""
    return value.replace("\x00", "") if value else value
