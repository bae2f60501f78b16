"""Text and URL clean-up that both feed parsers (RSS/Atom and JSON Feed) share.

Bytes to text (UTF-8 with a few stray bytes replaced), HTML and plain fields
to one line without control characters, links to absolute http(s) URLs a post
can use, and the one log line for an item or field that had to go. Also the
canonical URL form the store dedupes on."""
from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import ada_url

from bot.models import Article

log = logging.getLogger(__name__)

TRACKING = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid"})
DEFAULT_PORTS = {"http": 80, "https": 443}
HIDDEN_ELEMENTS = frozenset({"script", "style"})
STRAY_BYTES = 8  # invalid UTF-8 sequences a UTF-8 body may have and still be read as UTF-8
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")  # C0 but tab and newline
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNCLEAN = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")  # what strip_controls changes


# ---------------------------------------------------------------- items and log lines


def articles_from(items, build: Callable[[object], Article | None],
                  feed_name: str) -> list[Article]:
    """The Articles ``build`` makes of ``items``; a surprise costs only its item."""
    articles = []
    for item in items:
        try:
            article = build(item)
        except Exception as exc:  # one hostile item must not lose the good ones beside it
            log.warning("feed %s: skipped an item (%s: %s)", feed_name,
                        type(exc).__name__, short(exc))
            log.debug("feed %s: traceback of the skipped item", feed_name, exc_info=exc)
            continue
        if article is not None:
            articles.append(article)
    return articles


def no_link(feed_name: str, item_id: str, raw) -> None:
    """Log that an item was skipped for want of a usable link (``raw`` as written)."""
    what = f"its link {clip(raw)} is not an http(s) URL" if raw else "it has no link"
    log.warning("feed %s: skipped item %s: %s", feed_name, clip(item_id or "(no id)"), what)


def short(exc) -> str:
    """The first line of an exception's message, at most 120 characters."""
    text = str(exc or "unknown problem").splitlines()[0] if exc else "unknown problem"
    return text[:120]


def clip(value) -> str:
    """``value`` fit for a log line: quoted, escaped and short."""
    return repr(value[:100]) if isinstance(value, str) else type(value).__name__


# ---------------------------------------------------------------- bytes to text


def codec(name: str | None) -> str | None:
    """Python's name for charset ``name``; None when absent or unknown."""
    try:
        return codecs.lookup(name).name if name else None
    except (LookupError, ValueError):
        return None


def mostly_utf8(body: bytes, feed_name: str) -> str | None:
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


# ---------------------------------------------------------------- text


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
    if "<" not in html and "&" not in html:
        return plain_text(html)  # no markup to parse: the parser would give it back as is
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return plain_text("".join(parser.parts))


def plain_text(text: str) -> str:
    """A plain-text field as written, but for control characters and runs of whitespace."""
    return _SPACE.sub(" ", strip_controls(text)).strip()


def strip_controls(text: str) -> str:
    """``text`` with newlines made "\\n", C0 controls but tab and newline dropped
    and lone surrogates replaced by U+FFFD."""
    # PostgreSQL refuses NUL, and no platform wants the other C0 controls; a
    # lone surrogate (JSON's "\ud800") cannot even be encoded as UTF-8.
    if not _UNCLEAN.search(text):
        return text  # most text: one scan instead of four
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def unique(values) -> tuple[str, ...]:
    """The non-empty ``values`` once each, in order."""
    return tuple(dict.fromkeys(value for value in values if value))


def as_str(value) -> str:
    """``value`` if it is a string, else "" (a JSON field may hold anything)."""
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- URLs


# An absolute http(s) URL that every step of ``web_url`` gives back as it is:
# lower-case scheme, a host of plain labels ending in a letter one (no IPv4 or
# punycode to parse), no port, path and a non-empty query of plain characters
# or %XX, no params or fragment (tests/test_feeds_properties.py checks the claim).
_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_CHARS = r"(?:[A-Za-z0-9._~!$&'()*+,=:@/-]|%[0-9A-Fa-f]{2})"
_PLAIN_URL = re.compile(rf"https?://(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)?"
                        rf"(?:/{_CHARS}*)?(?:\?(?:{_CHARS}|\?)+)?")


def web_url(base_url: str, url) -> str:
    """``url`` made absolute, if it is an http(s) URL a post can link to; else ""."""
    if isinstance(url, str) and _PLAIN_URL.fullmatch(url) and _usable_base(base_url):
        return url  # most links: the parsers below would only say yes to it
    url = as_str(url).strip().replace(" ", "%20")
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


@lru_cache(maxsize=64)
def _usable_base(base_url: str) -> bool:
    """A base the WHATWG parser takes (with one it does not, every URL fails)."""
    return not base_url or _whatwg_url(base_url, "")


def _whatwg_url(url: str, base_url: str) -> bool:
    try:
        ada_url.URL(url, base_url) if base_url else ada_url.URL(url)
    except ValueError:
        return False
    return True


def first_url(candidates, base_url: str, feed_name: str, item_id: str) -> str | None:
    """The first of ``candidates`` that is a usable http(s) URL; the others are logged."""
    for raw in candidates:
        url = web_url(base_url, raw)
        if url:
            return url
        if raw:
            log.info("feed %s: item %s: ignored the image %s (not an http(s) URL)",
                     feed_name, clip(item_id), clip(raw))
    return None


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
