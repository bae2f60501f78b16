"""The adapter contract: one class per platform, one ``publish(post)``.

Adapters know nothing of YAML, the store or feeds. They get a composed ``Post``
and return a ``Receipt`` or raise one of ``bot.errors``' publish errors. The
config step validates an account's section against the ``Option`` schemas the
class declares (``options`` and ``credentials``), generically.
"""
from __future__ import annotations

import logging

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, TypeVar

import requests

from bot.adapters.session import Gate
from bot.models import Post, Receipt
from bot.errors import HeraldError, Rejected, Stopped
from bot.secret import Secret, mask

T = TypeVar("T")

Clock = Callable[[], datetime]
LOOKUP_LIMIT = 500   # posts find_recent looks through before it gives up (Rejected)
SECONDS = (0.1, 600.0)   # the range of a timeout option


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()
REQUIRED: Any = "<required>"   # the older way to say Option(str, required=True)


@dataclass(frozen=True)
class Option:
    """One key an adapter accepts in its account's section, and how to check it.

    ``kind`` is str, int, float or bool (an int is taken where a float is
    wanted; a number where a str is wanted, since YAML reads an unquoted id
    as one). Without a ``default`` and not ``required`` the key is optional
    and absent from ``opts`` when not given. ``choices`` lists the allowed
    values, ``bounds`` the inclusive range of a number; a key ending in
    ``_url`` must be an http(s) URL; a ``secret`` value reaches the adapter
    as a ``bot.secret.Secret`` and is masked in every log line."""

    kind: type
    default: Any = NO_DEFAULT
    required: bool = False
    choices: tuple = ()
    secret: bool = False
    bounds: tuple[float, float] | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if self.required and self.default is not NO_DEFAULT:
            raise ValueError("a required option has no default")


def seconds(default: float, help: str = "") -> Option:
    """A timeout option, in seconds."""
    return Option(float, default, bounds=SECONDS, help=help)


# The three timeouts every HTTP adapter takes, with one meaning everywhere.
TIMEOUTS: Mapping[str, Option] = {
    "connect_timeout": seconds(5.0),
    "read_timeout": seconds(20.0),
    "deadline": seconds(30.0, help="seconds for a whole call, body included"),
}


def credential(required: bool = True, help: str = "") -> Option:
    """A key of ``credentials:`` (always secret)."""
    return Option(str, required=required, secret=True, help=help)


def schema(declared: Mapping[str, Any]) -> dict[str, Option]:
    """``declared`` as Options; a plain value is the older form, a default
    (a float one a timeout) or REQUIRED."""
    out = {}
    for key, value in declared.items():
        if isinstance(value, Option):
            out[key] = value
        elif value is REQUIRED:
            out[key] = Option(str, required=True)
        elif isinstance(value, float):
            out[key] = seconds(value)
        else:
            out[key] = Option(type(value), value)
    return out


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Adapter(ABC):
    """Base of every platform adapter.

    Class attributes declare the platform's limits and config schema:
    ``max_length`` is the post limit in the platform's own counting;
    ``url_length`` is what a URL counts (None: its real length);
    ``counting`` names one of ``bot.compose.COUNTINGS`` ("twitter": twitter-text
    v3 weights; "chars": code points; "graphemes": grapheme clusters);
    ``max_bytes`` caps the post's UTF-8 bytes too where the platform has such
    a second limit (Bluesky: 300 graphemes and 3,000 bytes), else None;
    ``length()`` gives the limits of this very account (an instance's own);
    ``options`` maps each account key the adapter accepts to its ``Option``;
    ``credentials`` (on the class) maps each key of ``credentials:`` to its
    ``Option`` (see ``credential()``); on an instance ``credentials`` holds the
    given values, as Secrets. ``option_schema()`` / ``credential_schema()``
    read both, and the older forms (a dict of defaults, ``credential_keys``).

    ``Post.image_url`` is the article's image whenever it has one; an adapter
    that can attach it decides itself (by convention its ``attach_image`` option).

    ``fetch_media(url) -> bytes`` is passed in by the wiring for adapters that
    upload images; it applies Herald's fetch rules (timeouts, size cap, address
    guard) and raises ``bot.errors.FeedError`` on failure.

    An HTTP adapter hands ``gate`` to its ``PlatformSession`` (``adopt``), so
    the caller can stop its calls (``gated``), and says in ``longest_call``
    how long one of them may last.
    """

    platform: ClassVar[str]
    max_length: ClassVar[int]
    url_length: ClassVar[int | None] = None
    counting: ClassVar[str] = "chars"
    max_bytes: ClassVar[int | None] = None
    default_template: ClassVar[str] = "{title}: {lead} {url}"
    options: ClassVar[Mapping[str, Option]] = {}
    credentials: ClassVar[Mapping[str, Option]] = {}
    credential_keys: ClassVar[tuple[str, ...]] = ()   # older form: all required

    def __init__(self, account: str, options: Mapping[str, Any],
                 credentials: Mapping[str, Secret], *, session=None,
                 clock: Clock = utc_now,
                 fetch_media: Callable[[str], bytes] | None = None):
        self.account = account
        defaults = {k: o.default for k, o in self.option_schema().items()
                    if o.default is not NO_DEFAULT}
        self.opts = {**defaults, **options}
        self.credentials = credentials
        self.session = session
        self.clock = clock
        self.fetch_media = fetch_media
        self.gate = Gate()

    @classmethod
    def option_schema(cls) -> dict[str, Option]:
        """The account keys this adapter accepts."""
        return schema(cls.options)

    @classmethod
    def credential_schema(cls) -> dict[str, Option]:
        """The keys of this adapter's ``credentials:``."""
        return {**{key: credential() for key in cls.credential_keys}, **schema(cls.credentials)}

    def length(self) -> tuple[int, int | None]:
        """(max_length, url_length) for this account; an adapter whose limits
        depend on the server (a Mastodon instance) overrides it."""
        return self.max_length, self.url_length

    def gated(self, check: Callable[[], None] | None) -> AbstractContextManager[None]:
        """Within the block every call to the platform this thread starts
        first runs ``check``, which raises ``bot.errors.Stopped`` to stop it
        (and it runs once on entry, for an adapter that makes no HTTP call)."""
        return self.gate.checked_by(check)

    def longest_call(self) -> timedelta:
        """How long one call to the platform may last: connecting, then the
        ``deadline`` for its answer (nothing for an adapter without them,
        which makes no calls). Headers trickled byte by byte can outlast it
        (``bot.adapters.session``'s known limit)."""
        return timedelta(seconds=float(self.opts.get("connect_timeout", 0))
                         + float(self.opts.get("deadline", 0)))

    @abstractmethod
    def publish(self, post: Post) -> Receipt:
        """Publish ``post``; return the platform's receipt, whose ``platform_id``
        the platform gave (never a receipt without one).

        Raises AuthFailed, Suspended, RateLimited, Transient, Rejected or
        AlreadyPosted (all from ``bot.errors``); never a library exception.
        Transient includes every case where the post may exist (timeout, the
        total deadline, a success Herald cannot read): the caller looks it up
        with ``find_recent`` before sending again."""

    def with_image(self, post: Post, upload: Callable[[bytes], T], *,
                   reraise: tuple[type[Exception], ...] = ()) -> T | None:
        """``upload(the article's image)`` when the account attaches images and
        the article has one. None, with one warning, when the image cannot be
        had or uploaded: the post is worth more than its picture. ``reraise``
        names errors that are the account's trouble, not the picture's."""
        if not (self.opts.get("attach_image") and post.image_url):
            return None
        try:
            if self.fetch_media is None:
                raise Rejected("no media fetcher was wired in")
            return upload(self.fetch_media(post.image_url))
        except (HeraldError, requests.RequestException, ValueError) as exc:
            if isinstance(exc, (Stopped, *reraise)):   # stopped: the post would be too
                raise
            logging.getLogger(type(self).__module__).warning(
                "%s: posting without image %s: %s", self.account, post.image_url,
                mask(f"{type(exc).__name__}: {exc}"))
            return None

    def verify(self) -> str:
        """Return who this adapter posts as ("@handle (id 123)").
        Raises the same errors as ``publish``."""
        return f"{self.platform}:{self.account}"

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Look for ``post`` (by its link or text) among everything the account
        posted since ``since`` (aware UTC), after a crash or a timeout left its
        outcome unknown. Return its receipt, or None when it is not there.

        None must mean "searched all of it": an adapter pages through the whole
        span, up to LOOKUP_LIMIT posts. When more were posted since ``since``,
        or the platform cannot list them (a tier without timelines, no read
        permission), it raises Rejected: asking again cannot help, and the
        caller must not guess. Otherwise raises the same errors as ``publish``."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.account!r})"
