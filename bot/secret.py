"""A secret value that cannot leak by accident: its str, repr and format are masked."""
from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, unquote_plus


class Secret:
    """Wraps a credential. Call ``reveal()`` at the one place the value is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __format__ = lambda self, *_: "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


# Every secret value created in this process, so the log filter can mask it even
# when a library formats it into a message we never see (urllib3 URLs, tracebacks).
# Threads register while others log (a Bluesky session refreshed, a reload):
# iterating a set that grows meanwhile raises inside the log call, so ``mask``
# reads a copy of an append-only list (one C-level copy under the GIL).
_known: set[str] = set()
_maskable: list[str] = []
_lock = threading.Lock()


def register(value: str) -> None:
    """Have ``mask`` (and so the log filter) hide ``value`` from now on: as
    written, and as it appears inside a URL or a form body."""
    forms = {value, quote(value, safe=""), quote(value, safe="").replace("%20", "+")}
    with _lock:
        new = forms - _known
        _known.update(new)
        _maskable.extend(v for v in new if len(v) >= 4)


def register_url(url: str) -> None:
    """Register the password and every query value of ``url`` as secrets, so
    urllib3's DEBUG line ``"GET /feed?token=abc"`` shows ``token=***``."""
    for part in _url_secrets(url):
        register(part)
        register(unquote_plus(part))


def redact_url(url: str) -> str:
    """``url`` fit to print: the password and every query value are ``***``,
    and known secrets anywhere else in it (a ``${VAR}`` in the path) too.

    Plain string surgery rather than urlsplit/urlunsplit: those raise on a
    malformed host and turn ``sqlite:////abs/path`` into ``sqlite://abs/path``."""
    head, mark, query, tail = _split(url)
    if query:
        query = "&".join(_redact_pair(pair) for pair in query.split("&"))
    return mask(_PASSWORD.sub(r"\1:***@", head) + mark + query + tail)


# scheme://user:password@host — the password runs to the last @ before the path
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#]*@")


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme to path, "?" or "", query, "#fragment" or "")."""
    base, hash_, fragment = url.partition("#")
    head, mark, query = base.partition("?")
    return head, mark, query, hash_ + fragment


def _redact_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    return f"{name}=***" if equals else "***"   # a bare ?value may be the key itself


def _url_secrets(url: str) -> list[str]:
    head, _, query, _ = _split(url)
    found = [pair.partition("=")[2] if "=" in pair else pair for pair in query.split("&")]
    password = _PASSWORD.match(head)
    if password:
        found.append(head[len(password[1]) + 1:password.end() - 1])
    return [value for value in found if value]


def seal(url: str, source: str) -> str:
    """``url`` fit to store: each secret of ``source`` (the URL it came from:
    its password and query values, and known secrets written in it) replaced
    by a placeholder that names where in ``source`` the value stands, which
    ``unseal`` with the same source fills in again. A feed's remembered move
    keeps the feed's token (the next poll needs it) without the database
    holding it, or anything derived from it. Braces cannot stand in a URL
    unencoded, so a placeholder never meets a real one."""
    spans = {value: source.index(value) for value in _sealable(source)}
    if not spans:
        return url
    pattern = "|".join(map(re.escape, sorted(spans, key=len, reverse=True)))
    return re.sub(pattern, lambda m: "{secret:%d:%d}" % (spans[m[0]], spans[m[0]] + len(m[0])),
                  url)


def unseal(url: str, source: str) -> str | None:
    """The URL ``seal(url, source)`` was made from; None when a placeholder
    does not fit ``source`` (not the source it was sealed with)."""
    spans = [(int(m[1]), int(m[2])) for m in _PLACEHOLDER.finditer(url)]
    if any(not 0 <= start < end <= len(source) for start, end in spans):
        return None
    return _PLACEHOLDER.sub(lambda m: source[int(m[1]):int(m[2])], url)


_PLACEHOLDER = re.compile(r"\{secret:(\d+):(\d+)\}")


def _sealable(source: str) -> list[str]:
    """The secrets of ``source``: its own, and known ones written in it;
    shorter than four characters they are left, as ``mask`` leaves them: too
    short to replace without hitting other text."""
    found = _url_secrets(source) + [value for value in tuple(_maskable) if value in source]
    return [value for value in dict.fromkeys(found) if len(value) >= 4]


def mask(text: str) -> str:
    """Replace every known secret value (4+ characters) in ``text`` by ***."""
    for value in tuple(_maskable):
        if value in text:
            text = text.replace(value, "***")
    return text


class MaskingFilter(logging.Filter):
    """Logging filter that masks known secret values in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if masked != message:
            record.msg, record.args = masked, None
        return True
