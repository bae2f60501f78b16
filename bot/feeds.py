"""Fetch a feed and turn its items into Articles, whatever the format.

Well-formed UTF-8 RSS 2.0 and Atom 1.0 go through bot/fastfeed.py, which gives
the entries feedparser would give, ten times faster, or declines; everything
else (RSS 0.9x/1.0, other encodings, what the fast path does not model) goes
through feedparser, handed the bytes we fetched, never a URL. JSON Feed 1.0/1.1
goes through bot/jsonfeed.py; the text and URL clean-up all share is in
bot/feedtext.py. ``fetch`` raises FeedError for anything that is not a usable
feed; one feed's failure is the caller's to isolate. Inside a feed, one bad
item costs only that item and one bad field only that field: every Article has
an http(s) link and text without control characters.
"""
from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import feedparser

from bot import fastfeed
from bot.config import FeedConfig
from bot.errors import FeedError
from bot.feedtext import (articles_from, clean_text, codec, first_url, mostly_utf8,
                          no_link, plain_text, short, strip_controls, unique, web_url)
from bot.http import HttpClient, content_charset
from bot.jsonfeed import read_json_feed
from bot.models import Article

log = logging.getLogger(__name__)

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
               "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
               "application/json;q=0.8, */*;q=0.5")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.I)
_EMAIL = re.compile(r"[^\s@()<>]+@[^\s@()<>]+")
_EMAIL_NAME = re.compile(r"^[^\s@()<>]+@[^\s@()<>]+\s*\((.*)\)$")
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Charsets servers and tools put on anything by default (Python's codec names).
SERVER_DEFAULTS = frozenset({"ascii", "iso8859-1", "cp1252"})
# ``known(item_ids)`` answers which of them the caller has already seen.
Known = Callable[[list[str]], Collection[str]]
# ``wanted(articles)`` names those of them that may be posted (they need their summary).
Wanted = Callable[[list[Article]], Collection[str]]
_XML_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?\bencoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")


@dataclass(frozen=True)
class FeedState:
    """What we remember between polls: a permanent new location and validators."""

    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """One poll's outcome. ``articles`` is None when the server said 304;
    ``max_age`` (seconds) comes from the answer's Cache-Control."""

    articles: list[Article] | None
    etag: str | None
    last_modified: str | None
    permanent_url: str | None
    max_age: float | None
    hub: str | None = None     # WebSub: the hub the feed names, and its own (self) URL
    topic: str | None = None


@dataclass(frozen=True)
class Parsed:
    """A feed body read: its Articles, and the WebSub hub and topic it advertises."""

    articles: list[Article]
    hub: str | None = None
    topic: str | None = None


# ---------------------------------------------------------------- fetching


def fetch(client: HttpClient, feed: FeedConfig, state: FeedState, *,
          known: Known | None = None, wanted: Wanted | None = None) -> FetchResult:
    """Fetch and parse ``feed``, conditionally when ``state`` has validators.

    ``known`` and ``wanted`` skip work on items (see ``read``). URLs go
    through ``client.get`` without the address guard (the user chose
    the feed); local paths and file:// URLs are read with the size cap.
    Raises FeedError for any failure, including 410 (``gone``) and non-feeds."""
    url = state.url or feed.url
    path = _local_path(url)
    if path is not None:
        got = read(client.read_local(path), feed.name, path.resolve().as_uri(), known=known,
                   wanted=wanted)
        return FetchResult(got.articles, None, None, None, None, got.hub, got.topic)
    resp = client.get(url, etag=state.etag, last_modified=state.last_modified,
                      guard=False, accept=FEED_ACCEPT)
    etag = resp.headers.get("etag") or (state.etag if resp.status == 304 else None)
    modified = resp.headers.get("last-modified") or (
        state.last_modified if resp.status == 304 else None)
    got = None if resp.status == 304 else read(resp.body, feed.name, resp.url,
                                               resp.headers, known=known, wanted=wanted)
    return FetchResult(got and got.articles, etag, modified, resp.permanent_url,
                       _max_age(resp.headers.get("cache-control", "")),
                       got and got.hub, got and got.topic)


def _local_path(url: str) -> Path | None:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return Path(url2pathname(urlsplit(url).path))
    if scheme in ("http", "https"):
        return None
    if len(scheme) > 1:
        raise FeedError(f"unsupported URL scheme {scheme!r}")
    return Path(url)  # a plain path (a one-letter "scheme" is a Windows drive)


def _max_age(cache_control: str) -> float | None:
    match = _MAX_AGE.search(cache_control)
    return float(match[1]) if match else None


# ---------------------------------------------------------------- parsing


def parse(body: bytes, feed_name: str, base_url: str,
          headers: Mapping[str, str] | None = None, *, known: Known | None = None,
          fast: bool = True) -> list[Article]:
    """The Articles of ``read``."""
    return read(body, feed_name, base_url, headers, known=known, fast=fast).articles


def read(body: bytes, feed_name: str, base_url: str,
         headers: Mapping[str, str] | None = None, *, known: Known | None = None,
         wanted: Wanted | None = None, fast: bool = True) -> Parsed:
    """Articles from a feed body; relative links are resolved against ``base_url``.

    ``headers`` are the HTTP answer's: the Content-Type's charset decides the
    encoding. Raises FeedError("not a feed: ...") for an empty body, an HTML
    page or anything else without a feed in it. A damaged feed from which items
    were recovered returns them and logs a warning. An item without an http(s)
    link or id, or one that fails for any other reason, is left out; a field
    that cannot be used is left empty; each with one log line naming the feed.
    ``known(item_ids)`` names items the caller has seen: they are left out,
    and on the fast path never cost more than their id and link. With
    ``wanted``, the fast path gives a summary only to the items it names (the
    rest have summary ""): at a first sight most items are only recorded.
    ``fast=False`` sends every XML feed through feedparser (to compare, and to
    measure).
    ``hub`` and ``topic`` are the first usable http(s) URLs of the feed's links
    rel="hub" and rel="self" (JSON Feed: ``hubs[]`` of type WebSub, ``feed_url``)."""
    headers = headers or {}
    text_start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not text_start:
        raise FeedError("not a feed: empty body")
    if text_start in (b"{", b"[") or body[:4] in (b"\xff\xfe{\x00", b"\xfe\xff\x00{"):
        articles, hub, topic = read_json_feed(body, feed_name, base_url, content_charset(headers))
        return Parsed(_unknown(articles, known), hub, topic)
    return _parse_xml_feed(body, feed_name, base_url, headers, (known, wanted), fast)


def _unknown(articles: list[Article], known: Known | None) -> list[Article]:
    seen = known([a.item_id for a in articles]) if known and articles else ()
    return [a for a in articles if a.item_id not in seen]


def _parse_xml_feed(body: bytes, feed_name: str, base_url: str,
                    headers: Mapping[str, str], skip: tuple[Known | None, Wanted | None],
                    fast: bool) -> Parsed:
    body, charset = _xml_body(body, content_charset(headers), feed_name)
    doc = fastfeed.read(body) if fast and charset in (None, "utf-8") else None
    if doc is not None:
        return Parsed(_fast_articles(doc.entries, feed_name, base_url, *skip),
                      *_websub(doc.links, base_url))
    result = _feedparser(body, _feed_headers(headers, charset))
    if not result.version and not result.entries:
        raise FeedError(f"not a feed: {_what_it_is(body, result)}")
    if result.bozo:
        log.warning("feed %s is damaged (%s); kept %d recovered items",
                    feed_name, short(result.get("bozo_exception")), len(result.entries))
    articles = articles_from(result.entries, lambda e: _from_entry(e, feed_name, base_url),
                             feed_name)
    return Parsed(_unknown(articles, skip[0]), *_websub(result.feed.get("links") or (), base_url))


def _websub(links, base_url: str) -> tuple[str | None, str | None]:
    """The first usable hub and self URLs among feedparser-shaped ``links``."""
    found: dict[str, str] = {}
    for link in links:
        rel = link.get("rel")
        if rel in ("hub", "self") and rel not in found:
            url = web_url(base_url, link.get("href") or "")
            if url:
                found[rel] = url
    return found.get("hub"), found.get("self")


def _fast_articles(entries: list[fastfeed.Entry], feed_name: str, base_url: str,
                   known: Known | None, wanted: Wanted | None) -> list[Article]:
    """Articles from the fast path's entries; known items skip the costly
    fields, and items not ``wanted`` the summary."""
    if known and entries:
        ids = {id(e): _item_id(e, base_url) for e in entries}
        seen = known([i for i in ids.values() if i])
        entries = [e for e in entries if not ids[id(e)] or ids[id(e)] not in seen]
    build = partial(_from_entry, feed_name=feed_name, base_url=base_url)
    if wanted is None or not entries:
        return articles_from((e.complete() for e in entries), build, feed_name)
    light = [(e, a) for e in entries
             for a in articles_from([e.complete(texts=False)], build, feed_name)]
    chosen = set(wanted([a for _e, a in light]))
    return [next(iter(articles_from([e.complete()], build, feed_name)), a)
            if a.item_id in chosen else a for e, a in light]


def _item_id(entry, base_url: str) -> str:
    """The item_id ``_from_entry`` will give, when it keeps the item. An item
    with an id needs no look at its link: known, it goes either way (an item
    without a usable link is skipped too)."""
    return strip_controls(entry.get("id") or "").strip() or _entry_link(entry, base_url)


def _feedparser(body: bytes, headers: dict[str, str]):
    try:
        return feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as exc:  # it promises never to raise; hold it to that at the boundary
        raise FeedError(f"not a feed: the parser failed ({type(exc).__name__})") from exc


def _feed_headers(headers: Mapping[str, str], charset: str | None) -> dict[str, str]:
    # The real headers (Content-Language), but one XML type for all: feedparser
    # reads text/xml without a charset as US-ASCII and flags text/html or no type
    # as damaged; RFC 7303 lets the XML declaration speak in both cases. No
    # Content-Location on purpose: feedparser would resolve guids against it,
    # and item ids must not change when a feed moves.
    kept = {key.lower(): value for key, value in headers.items()
            if key.lower() not in ("content-type", "content-location")}
    kept["content-type"] = "application/xml" + (f"; charset={charset}" if charset else "")
    return kept


def _what_it_is(body: bytes, result) -> str:
    head = body[:2048].lstrip().lower()
    if b"<html" in head or head.startswith(b"<!doctype html"):
        return "an HTML page"
    if result.bozo:
        return f"unreadable XML ({short(result.get('bozo_exception'))})"
    return "no RSS, Atom or JSON Feed found"


# ---------------------------------------------------------------- encodings


def _xml_body(body: bytes, header_charset: str | None, feed_name: str) -> tuple[bytes, str | None]:
    """The body to hand feedparser and the charset to tell it.

    The header's charset wins over the XML declaration (RFC 7303); UTF-8 is
    the default. A body declared UTF-8 that mostly is has its few bad bytes
    replaced: feedparser would decode all of it as another charset instead."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return body, codec(header_charset)  # UTF-16 or 32: feedparser reads the BOM
    declared = codec(header_charset) or codec(_xml_declared(body)) or "utf-8"
    if declared in SERVER_DEFAULTS and _utf8_with_non_ascii(body):
        declared = "utf-8"  # a server's default label on a body that is plainly UTF-8
    if declared != "utf-8":
        return body, declared
    text = mostly_utf8(body, feed_name)
    return (body, None) if text is None else (text.encode("utf-8"), "utf-8")


def _xml_declared(body: bytes) -> str | None:
    match = _XML_ENCODING.match(body)
    return match[1].decode("ascii") if match else None


def _utf8_with_non_ascii(body: bytes) -> bool:
    try:
        return not body.decode("utf-8").isascii()
    except UnicodeDecodeError:
        return False


# ---------------------------------------------------------------- RSS and Atom items


def _from_entry(entry, feed_name: str, base_url: str) -> Article | None:
    link = _entry_link(entry, base_url)
    item_id = strip_controls(entry.get("id") or "").strip() or link
    if not link:
        no_link(feed_name, item_id, entry.get("link"))
        return None
    return Article(
        feed=feed_name, item_id=item_id, url=link,
        title=_title(entry),
        summary=strip_controls(_richest(entry)),
        # dict.get: feedparser's own get maps the missing one to the other, with a warning
        published=_when(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
        categories=unique(clean_text(t.get("term") or "") for t in entry.get("tags") or ()),
        image=first_url(_images(entry), base_url, feed_name, item_id),
        author=_author(entry),
    )


def _entry_link(entry, base_url: str) -> str:
    link = entry.get("link") or ""
    from_guid = link == entry.get("id") and not any(
        item.get("href") == link for item in entry.get("links") or ())
    # feedparser copies a guid or id into ``link`` when there is no link element:
    # only an absolute http(s) one is a permalink (urn:uuid:, tag: and "12345" are not).
    return web_url("", link) if from_guid else web_url(base_url, link)


def _title(entry) -> str:
    # Only an HTML title loses its tags: Atom's type="text" and RSS titles that
    # feedparser finds plain keep "<blink>" as written.
    kind = (entry.get("title_detail") or {}).get("type") or "text/html"
    title = entry.get("title") or ""
    return clean_text(title) if kind in HTML_TYPES else plain_text(title)


def _richest(entry) -> str:
    texts = [c.get("value") or "" for c in entry.get("content") or ()]
    texts.append(entry.get("summary") or "")
    return max(texts, key=len).strip()


def _when(parsed) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _images(entry):
    """The item's image URLs as written, best first."""
    for media in entry.get("media_content") or ():
        if _is_image(media.get("medium"), media.get("type"), media.get("url")):
            yield media["url"]
    for thumb in entry.get("media_thumbnail") or ():
        if thumb.get("url"):
            yield thumb["url"]
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/"):
            yield link.get("href")


def _is_image(medium, kind, url) -> bool:
    if not url:
        return False
    if medium or kind:
        return medium == "image" or (kind or "").startswith("image/")
    # Split by hand: this URL is not checked yet, and urlsplit may raise on it.
    path = url.split("#", 1)[0].split("?", 1)[0]
    return path.lower().endswith(IMAGE_SUFFIXES)


def _author(entry) -> str | None:
    # feedparser's author_detail mangles RSS's "email (Name)" form; read the raw
    # string. A bare e-mail address is no byline, so it gives None.
    text = clean_text(entry.get("author") or "")
    match = _EMAIL_NAME.match(text)
    if match:
        return match[1].strip() or None
    name = clean_text((entry.get("author_detail") or {}).get("name") or "") or text
    return None if _EMAIL.fullmatch(name) else (name or None)
