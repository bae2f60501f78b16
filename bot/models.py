"""Value types that cross module boundaries. Plain frozen data, no behaviour."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Article:
    """One feed item in Herald's own shape, whatever the feed format.

    ``item_id`` is stable across polls: the guid/id, else the canonical link.
    ``summary`` is the feed's summary or content as HTML or text, untouched;
    ``lead`` is filled by ``bot.articles`` (empty until then, or when the
    article has no real lead and the post falls back to the headline)."""

    feed: str
    item_id: str
    url: str
    title: str
    summary: str = ""
    published: datetime | None = None
    categories: tuple[str, ...] = ()
    image: str | None = None
    author: str | None = None
    lead: str = ""


@dataclass(frozen=True)
class Post:
    """A composed post, ready for an adapter.

    ``key`` identifies the (article, account) pair and is stable across retries;
    ``link`` is the article URL (adapters that attach links separately use it);
    ``image_url`` is the article's image whenever it has one: each adapter
    decides whether to attach it (its ``attach_image`` option). ``title``,
    ``description`` (the article's lead, plain text) and ``language`` (a BCP 47
    tag, None when unknown) are for link cards and language tags."""

    key: str
    account: str
    text: str
    link: str
    image_url: str | None = None
    title: str = ""
    description: str = ""
    language: str | None = None


@dataclass(frozen=True)
class Receipt:
    """What the platform answered for a published post."""

    platform_id: str
    url: str | None = None
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Target:
    """One account an article goes to, and how: ``status`` "pending" (queued),
    "held" (waits for an editor's approval) or "filtered" (recorded, never
    sent; ``reason`` says which filter). ``priority`` orders the queue."""

    account: str
    priority: int = 0
    status: str = "pending"
    reason: str | None = None
