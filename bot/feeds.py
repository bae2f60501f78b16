"""Fetch a feed and turn its items into Articles, whatever the format.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (handed the bytes we fetched,
never a URL); JSON Feed 1.0/1.1 through the small parser below. ``fetch``
raises FeedError for anything that is not a usable feed; one feed's failure is
the caller's to isolate.
"""
from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

import feedparser

from bot.config import FeedConfig
from bot.errors import FeedError
from bot.http import HttpClient
from bot.models import Article

log = logging.getLogger(__name__)

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
               "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
               "application/json;q=0.8, */*;q=0.5")
TRACKING = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid"})
DEFAULT_PORTS = {"http": 80, "https": 443}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.I)
_SPACE = re.compile(r"\s+")
_EMAIL = re.compile(r"[^\s@()<>]+@[^\s@()<>]+")
_EMAIL_NAME = re.compile(r"^[^\s@()<>]+@[^\s@()<>]+\s*\((.*)\)$")


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


# ---------------------------------------------------------------- fetching


def fetch(client: HttpClient, feed: FeedConfig, state: FeedState) -> FetchResult:
    """Fetch and parse ``feed``, conditionally when ``state`` has validators.

    URLs go through ``client.get`` without the address guard (the user chose
    the feed); local paths and file:// URLs are read with the size cap.
    Raises FeedError for any failure, including 410 (``gone``) and non-feeds."""
    url = state.url or feed.url
    path = _local_path(url)
    if path is not None:
        body = client.read_local(path)
        return FetchResult(parse(body, feed.name, path.resolve().as_uri()), None, None, None, None)
    resp = client.get(url, etag=state.etag, last_modified=state.last_modified,
                      guard=False, accept=FEED_ACCEPT)
    etag = resp.headers.get("etag") or (state.etag if resp.status == 304 else None)
    modified = resp.headers.get("last-modified") or (
        state.last_modified if resp.status == 304 else None)
    articles = None if resp.status == 304 else parse(resp.body, feed.name, resp.url)
    return FetchResult(articles, etag, modified, resp.permanent_url,
                       _max_age(resp.headers.get("cache-control", "")))


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


def parse(body: bytes, feed_name: str, base_url: str) -> list[Article]:
    """Articles from a feed body; relative links are resolved against ``base_url``.

    Raises FeedError("not a feed: ...") for an empty body, an HTML page or
    anything else without a feed in it. A damaged feed from which items were
    recovered returns them and logs a warning."""
    text_start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not text_start:
        raise FeedError("not a feed: empty body")
    if text_start in (b"{", b"[") or body[:4] in (b"\xff\xfe{\x00", b"\xfe\xff\x00{"):
        return _parse_json_feed(body, feed_name, base_url)
    return _parse_xml_feed(body, feed_name, base_url)


def _parse_xml_feed(body: bytes, feed_name: str, base_url: str) -> list[Article]:
    # Without a content type feedparser flags every feed as damaged; XML's own
    # declaration then decides the encoding. No content-location on purpose:
    # feedparser would resolve guids against it, and item ids must not change
    # when a feed moves.
    headers = {"content-type": "application/xml"}
    result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    if not result.version and not result.entries:
        raise FeedError(f"not a feed: {_what_it_is(body, result)}")
    if result.bozo:
        log.warning("feed %s is damaged (%s); kept %d recovered items",
                    feed_name, _short(result.get("bozo_exception")), len(result.entries))
    articles = (_from_entry(entry, feed_name, base_url) for entry in result.entries)
    return [a for a in articles if a is not None]


def _what_it_is(body: bytes, result) -> str:
    head = body[:2048].lstrip().lower()
    if b"<html" in head or head.startswith(b"<!doctype html"):
        return "an HTML page"
    if result.bozo:
        return f"unreadable XML ({_short(result.get('bozo_exception'))})"
    return "no RSS, Atom or JSON Feed found"


def _short(exc) -> str:
    text = str(exc or "unknown problem").splitlines()[0] if exc else "unknown problem"
    return text[:120]


def _from_entry(entry, feed_name: str, base_url: str) -> Article | None:
    link = _absolute(base_url, entry.get("link") or "")
    item_id = (entry.get("id") or "").strip() or link
    if not item_id:
        log.debug("feed %s: skipped an item with neither id nor link", feed_name)
        return None
    if not link and item_id.startswith(("http://", "https://")):
        link = item_id
    return Article(
        feed=feed_name, item_id=item_id, url=link,
        title=clean_text(entry.get("title") or ""),
        summary=_richest(entry),
        published=_when(entry.get("published_parsed") or entry.get("updated_parsed")),
        categories=_unique(t.get("term") for t in entry.get("tags") or ()),
        image=_image(entry, base_url),
        author=_author(entry),
    )


def _richest(entry) -> str:
    texts = [c.get("value") or "" for c in entry.get("content") or ()]
    texts.append(entry.get("summary") or "")
    return max(texts, key=len).strip()


def _when(parsed) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _image(entry, base_url: str) -> str | None:
    for media in entry.get("media_content") or ():
        if _is_image(media.get("medium"), media.get("type"), media.get("url")):
            return _absolute(base_url, media["url"])
    for thumb in entry.get("media_thumbnail") or ():
        if thumb.get("url"):
            return _absolute(base_url, thumb["url"])
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/"):
            return _absolute(base_url, link.get("href") or "") or None
    return None


def _is_image(medium, kind, url) -> bool:
    if not url:
        return False
    if medium or kind:
        return medium == "image" or (kind or "").startswith("image/")
    return urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)


def _author(entry) -> str | None:
    # feedparser's author_detail mangles RSS's "email (Name)" form; read the raw
    # string. A bare e-mail address is no byline, so it gives None.
    text = clean_text(entry.get("author") or "")
    match = _EMAIL_NAME.match(text)
    if match:
        return match[1].strip() or None
    name = clean_text((entry.get("author_detail") or {}).get("name") or "") or text
    return None if _EMAIL.fullmatch(name) else (name or None)


# ---------------------------------------------------------------- JSON Feed


def _parse_json_feed(body: bytes, feed_name: str, base_url: str) -> list[Article]:
    try:
        doc = json.loads(_decode_json(body))
    except ValueError as exc:
        raise FeedError(f"not a feed: malformed JSON ({_short(exc)})") from exc
    version = doc.get("version", "") if isinstance(doc, dict) else ""
    if not (isinstance(version, str) and version.startswith("https://jsonfeed.org/version/")
            and isinstance(doc.get("items"), list)):
        raise FeedError("not a feed: JSON but not a JSON Feed")
    articles = (_from_json_item(item, feed_name, base_url)
                for item in doc["items"] if isinstance(item, dict))
    return [a for a in articles if a is not None]


def _decode_json(body: bytes) -> str:
    # JSON is UTF-8 by RFC 8259, but feeds in the wild send Windows-1252 too;
    # json.loads on bytes would only guess between the UTF encodings.
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def _from_json_item(item: dict, feed_name: str, base_url: str) -> Article | None:
    link = _absolute(base_url, _string(item.get("url")) or _string(item.get("external_url")))
    raw_id = item.get("id")
    item_id = (str(raw_id).strip() if isinstance(raw_id, str | int) else "") or link
    if not item_id:
        log.debug("feed %s: skipped an item with neither id nor url", feed_name)
        return None
    texts = [_string(item.get(k)) for k in ("content_html", "content_text", "summary")]
    image = _string(item.get("image")) or _string(item.get("banner_image"))
    return Article(
        feed=feed_name, item_id=item_id, url=link,
        title=clean_text(_string(item.get("title"))),
        summary=max(texts, key=len).strip(),
        published=_iso_date(_string(item.get("date_published"))),
        categories=_unique(t for t in item.get("tags") or () if isinstance(t, str)),
        image=_absolute(base_url, image) or None,
        author=_json_author(item),
    )


def _json_author(item: dict) -> str | None:
    authors = item.get("authors")
    first = authors[0] if isinstance(authors, list) and authors else item.get("author")
    name = _string(first.get("name")) if isinstance(first, dict) else ""
    return clean_text(name) or None


def _iso_date(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        return None
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _string(value) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- text and URLs


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def clean_text(html: str) -> str:
    """Plain text from a title: tags stripped, entities decoded, whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return _SPACE.sub(" ", "".join(parser.parts)).strip()


def _unique(values) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        text = clean_text(value or "")
        if text:
            seen.setdefault(text)
    return tuple(seen)


def _absolute(base_url: str, url: str) -> str:
    url = (url or "").strip()
    return urljoin(base_url, url) if url else ""


def normalise_url(url: str) -> str:
    """Canonical form of ``url`` for dedupe: lower-case scheme and host, no
    default port, no fragment, no tracking parameters (utm_*, fbclid, gclid,
    mc_cid, mc_eid, ocid, cmpid); everything else kept in its order."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host, port = _host_port(hostport)
    if port and DEFAULT_PORTS.get(scheme) == int(port):
        port = ""
    netloc = (userinfo + "@" if userinfo else "") + host.lower() + (":" + port if port else "")
    path = parts.path or ("/" if netloc and scheme in DEFAULT_PORTS else "")
    return urlunsplit((scheme, netloc, path, _strip_tracking(parts.query), ""))


def _host_port(hostport: str) -> tuple[str, str]:
    host, colon, port = hostport.rpartition(":")
    # No colon, or the colon belongs to an IPv6 literal: there is no port.
    if not colon or "]" in port or not port.isdigit():
        return hostport, ""
    return host, port


def _strip_tracking(query: str) -> str:
    # Work on the raw pairs so the kept parameters keep their exact encoding.
    kept = [pair for pair in query.split("&") if pair and not _is_tracking(pair)]
    return "&".join(kept)


def _is_tracking(pair: str) -> bool:
    key = unquote(pair.split("=", 1)[0]).strip().lower()
    return key.startswith("utm_") or key in TRACKING
