"""Fetch a feed and turn its items into Articles, whatever the format.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (handed the bytes we fetched,
never a URL); JSON Feed 1.0/1.1 through the small parser below. ``fetch``
raises FeedError for anything that is not a usable feed; one feed's failure is
the caller's to isolate. Inside a feed, one bad item costs only that item and
one bad field only that field: every Article has an http(s) link and text
without control characters.
"""
from __future__ import annotations

import codecs
import io
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

import ada_url
import feedparser

from bot.config import FeedConfig
from bot.errors import FeedError
from bot.http import HttpClient, content_charset
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
JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")
HTML_TYPES = ("text/html", "application/xhtml+xml")
HIDDEN_ELEMENTS = frozenset({"script", "style"})
# Charsets servers and tools put on anything by default (Python's codec names).
SERVER_DEFAULTS = frozenset({"ascii", "iso8859-1", "cp1252"})
STRAY_BYTES = 8  # invalid UTF-8 sequences a UTF-8 body may have and still be read as UTF-8
_XML_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?\bencoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")  # C0 but tab and newline
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    articles = None if resp.status == 304 else parse(resp.body, feed.name, resp.url, resp.headers)
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


def parse(body: bytes, feed_name: str, base_url: str,
          headers: Mapping[str, str] | None = None) -> list[Article]:
    """Articles from a feed body; relative links are resolved against ``base_url``.

    ``headers`` are the HTTP answer's: the Content-Type's charset decides the
    encoding. Raises FeedError("not a feed: ...") for an empty body, an HTML
    page or anything else without a feed in it. A damaged feed from which items
    were recovered returns them and logs a warning. An item without an http(s)
    link or id, or one that fails for any other reason, is left out; a field
    that cannot be used is left empty; each with one log line naming the feed."""
    headers = headers or {}
    text_start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not text_start:
        raise FeedError("not a feed: empty body")
    if text_start in (b"{", b"[") or body[:4] in (b"\xff\xfe{\x00", b"\xfe\xff\x00{"):
        return _parse_json_feed(body, feed_name, base_url, content_charset(headers))
    return _parse_xml_feed(body, feed_name, base_url, headers)


def _items(items, build: Callable[[object], Article | None], feed_name: str) -> list[Article]:
    """The Articles ``build`` makes of ``items``; a surprise costs only its item."""
    articles = []
    for item in items:
        try:
            article = build(item)
        except Exception as exc:  # one hostile item must not lose the good ones beside it
            log.warning("feed %s: skipped an item (%s: %s)", feed_name,
                        type(exc).__name__, _short(exc))
            log.debug("feed %s: traceback of the skipped item", feed_name, exc_info=exc)
            continue
        if article is not None:
            articles.append(article)
    return articles


def _parse_xml_feed(body: bytes, feed_name: str, base_url: str,
                    headers: Mapping[str, str]) -> list[Article]:
    body, charset = _xml_body(body, content_charset(headers), feed_name)
    result = _feedparser(body, _feed_headers(headers, charset))
    if not result.version and not result.entries:
        raise FeedError(f"not a feed: {_what_it_is(body, result)}")
    if result.bozo:
        log.warning("feed %s is damaged (%s); kept %d recovered items",
                    feed_name, _short(result.get("bozo_exception")), len(result.entries))
    return _items(result.entries, lambda e: _from_entry(e, feed_name, base_url), feed_name)


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
        return f"unreadable XML ({_short(result.get('bozo_exception'))})"
    return "no RSS, Atom or JSON Feed found"


def _short(exc) -> str:
    text = str(exc or "unknown problem").splitlines()[0] if exc else "unknown problem"
    return text[:120]


def _clip(value) -> str:
    """``value`` fit for a log line: quoted, escaped and short."""
    return repr(value[:100]) if isinstance(value, str) else type(value).__name__


# ---------------------------------------------------------------- encodings


def _xml_body(body: bytes, header_charset: str | None, feed_name: str) -> tuple[bytes, str | None]:
    """The body to hand feedparser and the charset to tell it.

    The header's charset wins over the XML declaration (RFC 7303); UTF-8 is
    the default. A body declared UTF-8 that mostly is has its few bad bytes
    replaced: feedparser would decode all of it as another charset instead."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return body, _codec(header_charset)  # UTF-16 or 32: feedparser reads the BOM
    declared = _codec(header_charset) or _codec(_xml_declared(body)) or "utf-8"
    if declared in SERVER_DEFAULTS and _utf8_with_non_ascii(body):
        declared = "utf-8"  # a server's default label on a body that is plainly UTF-8
    if declared != "utf-8":
        return body, declared
    text = _mostly_utf8(body, feed_name)
    return (body, None) if text is None else (text.encode("utf-8"), "utf-8")


def _xml_declared(body: bytes) -> str | None:
    match = _XML_ENCODING.match(body)
    return match[1].decode("ascii") if match else None


def _codec(name: str | None) -> str | None:
    """Python's name for charset ``name``; None when absent or unknown."""
    try:
        return codecs.lookup(name).name if name else None
    except (LookupError, ValueError):
        return None


def _utf8_with_non_ascii(body: bytes) -> bool:
    try:
        return not body.decode("utf-8").isascii()
    except UnicodeDecodeError:
        return False


def _mostly_utf8(body: bytes, feed_name: str) -> str | None:
    """``body`` as UTF-8 text, invalid bytes replaced when they are stray; None
    when it is rather another charset: no valid multi-byte character at all
    (ASCII with Windows-1252 bytes), or more invalid sequences than valid
    characters and more than a stray few (a Latin-1 file with one UTF-8 word)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - body.count("\ufffd".encode())
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    if good <= 0 or bad > max(good, STRAY_BYTES):
        return None
    log.warning("feed %s: %d invalid UTF-8 sequences replaced", feed_name, bad)
    return text


# ---------------------------------------------------------------- RSS and Atom items


def _from_entry(entry, feed_name: str, base_url: str) -> Article | None:
    link = _entry_link(entry, base_url)
    item_id = _strip_controls(entry.get("id") or "").strip() or link
    if not link:
        _no_link(feed_name, item_id, entry.get("link"))
        return None
    return Article(
        feed=feed_name, item_id=item_id, url=link,
        title=_title(entry),
        summary=_strip_controls(_richest(entry)),
        # dict.get: feedparser's own get maps the missing one to the other, with a warning
        published=_when(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
        categories=_unique(clean_text(t.get("term") or "") for t in entry.get("tags") or ()),
        image=_first_url(_images(entry), base_url, feed_name, item_id),
        author=_author(entry),
    )


def _entry_link(entry, base_url: str) -> str:
    link = entry.get("link") or ""
    from_guid = link == entry.get("id") and not any(
        item.get("href") == link for item in entry.get("links") or ())
    # feedparser copies a guid or id into ``link`` when there is no link element:
    # only an absolute http(s) one is a permalink (urn:uuid:, tag: and "12345" are not).
    return _web_url("", link) if from_guid else _web_url(base_url, link)


def _no_link(feed_name: str, item_id: str, raw) -> None:
    what = f"its link {_clip(raw)} is not an http(s) URL" if raw else "it has no link"
    log.warning("feed %s: skipped item %s: %s", feed_name, _clip(item_id or "(no id)"), what)


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


def _first_url(candidates, base_url: str, feed_name: str, item_id: str) -> str | None:
    """The first of ``candidates`` that is a usable http(s) URL; the others are logged."""
    for raw in candidates:
        url = _web_url(base_url, raw)
        if url:
            return url
        if raw:
            log.info("feed %s: item %s: ignored the image %s (not an http(s) URL)",
                     feed_name, _clip(item_id), _clip(raw))
    return None


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


def _parse_json_feed(body: bytes, feed_name: str, base_url: str,
                     charset: str | None) -> list[Article]:
    doc = _load_json(body, charset, feed_name)
    items = _json_items(doc)
    byline = _json_author(doc)  # the feed's author(s), for items that name none
    return _items(items, lambda item: _from_json_item(item, feed_name, base_url, byline),
                  feed_name)


def _load_json(body: bytes, charset: str | None, feed_name: str):
    try:
        return json.loads(_decode_json(body, charset, feed_name), parse_int=_json_int)
    except RecursionError as exc:  # nesting deeper than the interpreter's stack
        raise FeedError("not a feed: JSON nested too deeply") from exc
    except ValueError as exc:
        raise FeedError(f"not a feed: malformed JSON ({_short(exc)})") from exc


def _decode_json(body: bytes, charset: str | None, feed_name: str) -> str:
    # JSON is UTF-8 by RFC 8259, but feeds in the wild send Windows-1252 too;
    # json.loads on bytes would only guess between the UTF encodings.
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16")
    text = _mostly_utf8(body, feed_name)
    if text is not None:
        return text.removeprefix("\ufeff")
    try:
        return body.decode(_codec(charset) or "cp1252", errors="replace")
    except LookupError:  # a codec that is not a text encoding (rot13)
        return body.decode("cp1252", errors="replace")


def _json_int(text: str) -> int | str:
    # Past Python's digit limit int() raises, which would cost the whole feed.
    try:
        return int(text)
    except ValueError:
        return text


def _json_items(doc) -> list:
    version = _string(doc.get("version")) if isinstance(doc, dict) else ""
    if "jsonfeed.org/" not in version and not (
            isinstance(doc, dict) and "version" in doc and isinstance(doc.get("items"), list)):
        raise FeedError("not a feed: JSON but not a JSON Feed")
    if version not in JSON_FEED_VERSIONS:
        found = _clip(version) if version else _clip(doc["version"])
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
    link = _web_url(base_url, item.get("url")) or _web_url(base_url, item.get("external_url"))
    if not link:
        _no_link(feed_name, item_id, raw_link)
        return None
    texts = [_string(item.get(k)) for k in ("content_html", "content_text", "summary")]
    images = (item.get("image"), item.get("banner_image"))
    return Article(
        feed=feed_name, item_id=item_id, url=link,
        title=plain_text(_string(item.get("title"))),  # plain text by the spec
        summary=_strip_controls(max(texts, key=len)).strip(),
        published=_json_date(item, feed_name, item_id),
        categories=_json_tags(item.get("tags")),
        image=_first_url((_string(i) for i in images), base_url, feed_name, item_id),
        author=_json_author(item) or byline,
    )


def _json_id(raw) -> str:
    # The spec coerces numbers to strings: 1 and "1" are one item, 1 and 2 two,
    # and 1.0 stays "1.0". Booleans, null, objects and NaN are no id.
    if isinstance(raw, bool):
        return ""
    if isinstance(raw, int | str):
        return _strip_controls(str(raw)).strip()
    if isinstance(raw, float) and math.isfinite(raw):
        return repr(raw)
    return ""


def _json_date(item: dict, feed_name: str, item_id: str) -> datetime | None:
    """Publication date, else modification date; an unreadable one is logged."""
    for key in ("date_published", "date_modified"):
        text = _string(item.get(key)).strip()
        if not text:
            continue
        when = parse_date(text)
        if when is not None:
            return when
        log.info("feed %s: item %s: ignored %s %s (not a date in range)",
                 feed_name, _clip(item_id), key, _clip(text))
    return None


def _json_tags(tags) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = [tags]  # one tag, not one per letter
    if not isinstance(tags, list):
        return ()
    return _unique(plain_text(tag) for tag in tags if isinstance(tag, str))


def _json_author(obj: dict) -> str | None:
    """The first named author of a feed or item: 1.1's ``authors``, else 1.0's ``author``."""
    authors = obj.get("authors")
    candidates = [*(authors if isinstance(authors, list) else ()), obj.get("author")]
    for author in candidates:
        name = plain_text(_string(author.get("name"))) if isinstance(author, dict) else ""
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


def _string(value) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- text and URLs


class _TextOnly(HTMLParser):
    """Collects an HTML fragment's text; script and style contents are no text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        self.hidden += tag in HIDDEN_ELEMENTS

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def clean_text(html: str) -> str:
    """Plain text from an HTML title: tags stripped, script and style dropped,
    entities decoded, control characters removed, whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return plain_text("".join(parser.parts))


def plain_text(text: str) -> str:
    """A plain-text field as written, but for control characters and runs of whitespace."""
    return _SPACE.sub(" ", _strip_controls(text)).strip()


def _strip_controls(text: str) -> str:
    # PostgreSQL refuses NUL, and no platform wants the other C0 controls; a
    # lone surrogate (JSON's "\ud800") cannot even be encoded as UTF-8.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def _unique(values) -> tuple[str, ...]:
    """The non-empty ``values`` once each, in order."""
    return tuple(dict.fromkeys(value for value in values if value))


def _web_url(base_url: str, url) -> str:
    """``url`` made absolute, if it is an http(s) URL a post can link to; else ""."""
    url = _string(url).strip().replace(" ", "%20")
    if not url or _CONTROL.search(url):
        return ""
    try:
        absolute = urljoin(base_url, url)
        parts = urlsplit(absolute)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:  # "https://[host/", "http://[::1": the field is lost, not the feed
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    # The store splits it with urlsplit, a browser reads it as WHATWG says: both
    # must take it ("https://" is the base page to urljoin, no URL to a browser).
    return absolute if _whatwg_url(url, base_url) and ada_url.check_url(absolute) else ""


def _whatwg_url(url: str, base_url: str) -> bool:
    try:
        ada_url.URL(url, base_url) if base_url else ada_url.URL(url)
    except ValueError:
        return False
    return True


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
