"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/) to Articles.

``read_json_feed`` raises FeedError for a body that is not a JSON Feed of a
version we read; inside the feed one bad item costs only that item and one
bad field only that field, as for RSS and Atom (bot/feeds.py)."""
from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from bot.errors import FeedError
from bot.feedtext import (articles_from, as_str, clip, codec, first_url, mostly_utf8,
                          no_link, plain_text, short, strip_controls, unique, web_url)
from bot.models import Article

log = logging.getLogger(__name__)

JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


def read_json_feed(body: bytes, feed_name: str, base_url: str,
                   charset: str | None) -> tuple[list[Article], str | None, str | None]:
    """Articles from a JSON Feed body, with its WebSub hub (the first ``hubs[]``
    of type WebSub) and topic (``feed_url``), each None unless a usable http(s)
    URL; ``charset`` is the Content-Type's, if any."""
    doc = _load_json(body, charset, feed_name)
    items = _json_items(doc)
    byline = _json_author(doc)  # the feed's author(s), for items that name none
    articles = articles_from(
        items, lambda item: _from_json_item(item, feed_name, base_url, byline), feed_name)
    return articles, _json_hub(doc.get("hubs"), base_url), (
        web_url(base_url, doc.get("feed_url")) or None)


def _json_hub(hubs, base_url: str) -> str | None:
    for hub in hubs if isinstance(hubs, list) else ():
        if isinstance(hub, dict) and as_str(hub.get("type")).strip().lower() == "websub":
            url = web_url(base_url, hub.get("url"))
            if url:
                return url
    return None


def _load_json(body: bytes, charset: str | None, feed_name: str):
    try:
        return json.loads(_decode_json(body, charset, feed_name), parse_int=_json_int)
    except RecursionError as exc:  # nesting deeper than the interpreter's stack
        raise FeedError("not a feed: JSON nested too deeply") from exc
    except ValueError as exc:
        raise FeedError(f"not a feed: malformed JSON ({short(exc)})") from exc


def _decode_json(body: bytes, charset: str | None, feed_name: str) -> str:
    # JSON is UTF-8 by RFC 8259, but feeds in the wild send Windows-1252 too;
    # json.loads on bytes would only guess between the UTF encodings.
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16")
    text = mostly_utf8(body, feed_name)
    if text is not None:
        return text.removeprefix("\ufeff")
    try:
        return body.decode(codec(charset) or "cp1252", errors="replace")
    except LookupError:  # a codec that is not a text encoding (rot13)
        return body.decode("cp1252", errors="replace")


def _json_int(text: str) -> int | str:
    # Past Python's digit limit int() raises, which would cost the whole feed.
    try:
        return int(text)
    except ValueError:
        return text


def _json_items(doc) -> list:
    version = as_str(doc.get("version")) if isinstance(doc, dict) else ""
    if "jsonfeed.org/" not in version and not (
            isinstance(doc, dict) and "version" in doc and isinstance(doc.get("items"), list)):
        raise FeedError("not a feed: JSON but not a JSON Feed")
    if version not in JSON_FEED_VERSIONS:
        found = clip(version) if version else clip(doc["version"])
        raise FeedError(f"not a feed: JSON Feed version {found}; Herald reads 1 and 1.1")
    if not isinstance(doc.get("items"), list):
        raise FeedError("not a feed: JSON Feed without an items list")
    return doc["items"]


def _from_json_item(item, feed_name: str, base_url: str, byline: str | None) -> Article | None:
    item_id = _json_id(item.get("id")) if isinstance(item, dict) else ""
    if not item_id:  # the spec requires one; without it the item cannot be told apart
        log.warning("feed %s: skipped an item without a usable id", feed_name)
        return None
    raw_link = item.get("url") or item.get("external_url")
    link = web_url(base_url, item.get("url")) or web_url(base_url, item.get("external_url"))
    if not link:
        no_link(feed_name, item_id, raw_link)
        return None
    texts = [as_str(item.get(k)) for k in ("content_html", "content_text", "summary")]
    images = (item.get("image"), item.get("banner_image"))
    return Article(
        feed=feed_name, item_id=item_id, url=link,
        title=plain_text(as_str(item.get("title"))),  # plain text by the spec
        summary=strip_controls(max(texts, key=len)).strip(),
        published=_json_date(item, feed_name, item_id),
        categories=_json_tags(item.get("tags")),
        image=first_url((as_str(i) for i in images), base_url, feed_name, item_id),
        author=_json_author(item) or byline,
    )


def _json_id(raw) -> str:
    # The spec coerces numbers to strings: 1 and "1" are one item, 1 and 2 two,
    # and 1.0 stays "1.0". Booleans, null, objects and NaN are no id.
    if isinstance(raw, bool):
        return ""
    if isinstance(raw, int | str):
        return strip_controls(str(raw)).strip()
    if isinstance(raw, float) and math.isfinite(raw):
        return repr(raw)
    return ""


def _json_date(item: dict, feed_name: str, item_id: str) -> datetime | None:
    """Publication date, else modification date; an unreadable one is logged."""
    for key in ("date_published", "date_modified"):
        text = as_str(item.get(key)).strip()
        if not text:
            continue
        when = parse_date(text)
        if when is not None:
            return when
        log.info("feed %s: item %s: ignored %s %s (not a date in range)",
                 feed_name, clip(item_id), key, clip(text))
    return None


def _json_tags(tags) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = [tags]  # one tag, not one per letter
    if not isinstance(tags, list):
        return ()
    return unique(plain_text(tag) for tag in tags if isinstance(tag, str))


def _json_author(obj: dict) -> str | None:
    """The first named author of a feed or item: 1.1's ``authors``, else 1.0's ``author``."""
    authors = obj.get("authors")
    candidates = [*(authors if isinstance(authors, list) else ()), obj.get("author")]
    for author in candidates:
        name = plain_text(as_str(author.get("name"))) if isinstance(author, dict) else ""
        if name:
            return name
    return None


def parse_date(text: str) -> datetime | None:
    """An aware UTC datetime from RFC 3339 (in either case) or RFC 2822 text;
    None when unreadable or out of range once moved to UTC (year 1 at +01:00)."""
    try:
        when = datetime.fromisoformat(text.upper())
    except ValueError:
        when = _rfc2822(text)
    if when is None:
        return None
    try:
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _rfc2822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
