"""The adapter contract: one class per platform, one ``publish(post)``.

Adapters know nothing of YAML, the store or feeds. They get a composed ``Post``
and return a ``Receipt`` or raise one of ``bot.errors``' publish errors. The
config step validates an account's section against the class attributes below.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from bot.models import Post, Receipt
from bot.secret import Secret

Clock = Callable[[], datetime]
REQUIRED: Any = "<required>"
LOOKUP_LIMIT = 500   # posts find_recent looks through before it gives up (Rejected)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Adapter(ABC):
    """Base of every platform adapter.

    Class attributes declare the platform's limits and config schema:
    ``max_length`` is the post limit in the platform's own counting;
    ``url_length`` is what a URL counts (None: its real length);
    ``counting`` is ``"twitter"`` (twitter-text v3 weights) or ``"chars"``;
    ``link_in_text`` is False when the link travels beside the text (Facebook);
    ``credential_keys`` are the required keys of ``credentials:``;
    ``options`` maps each account key the adapter accepts to its default; the
    default's type is the expected type, and a default of ``REQUIRED`` marks a
    key the user must give (a string).

    ``fetch_media(url) -> bytes`` is passed in by the wiring for adapters that
    upload images; it applies Herald's fetch rules (timeouts, size cap, address
    guard) and raises ``bot.errors.FeedError`` on failure.
    """

    platform: ClassVar[str]
    max_length: ClassVar[int]
    url_length: ClassVar[int | None] = None
    counting: ClassVar[str] = "chars"
    link_in_text: ClassVar[bool] = True
    default_template: ClassVar[str] = "{title}: {lead} {url}"
    credential_keys: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, account: str, options: Mapping[str, Any],
                 credentials: Mapping[str, Secret], *, session=None,
                 clock: Clock = utc_now,
                 fetch_media: Callable[[str], bytes] | None = None):
        self.account = account
        self.opts = {**self.options, **options}
        self.credentials = credentials
        self.session = session
        self.clock = clock
        self.fetch_media = fetch_media

    @abstractmethod
    def publish(self, post: Post) -> Receipt:
        """Publish ``post``; return the platform's receipt, whose ``platform_id``
        the platform gave (never a receipt without one).

        Raises AuthFailed, Suspended, RateLimited, Transient, Rejected or
        AlreadyPosted (all from ``bot.errors``); never a library exception.
        Transient includes every case where the post may exist (timeout, the
        total deadline, a success Herald cannot read): the caller looks it up
        with ``find_recent`` before sending again."""

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
