"""Herald's config as frozen, typed values, and the parsers for its small
languages (durations, posting windows, templates).

Only the standard library and bot.secret: every module may import these types
without pulling in YAML or an adapter. ``bot.config`` builds them from a file.
"""
from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from bot.secret import Secret, mask, redact_url

TEMPLATE_FIELDS = ("title", "lead", "url", "hashtags", "source", "author")


def _masked_repr(self) -> str:
    """A dataclass repr with URLs redacted and every known secret masked: a feed
    URL's ``?token=`` or a database password must not reach a log or traceback."""
    shown = (f"{f.name}={_redacted(f.name, getattr(self, f.name))!r}" for f in dataclasses.fields(self))
    return mask(f"{type(self).__name__}({', '.join(shown)})")


def _redacted(name: str, value: Any) -> Any:
    if isinstance(value, str) and (name in ("url", "database") or name.endswith("_url")):
        return redact_url(value)
    if isinstance(value, Mapping):
        return {k: _redacted(str(k), v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class HttpSettings:
    """How Herald fetches feeds and pages."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 30.0          # total seconds for one fetch, body included
    max_bytes: int = 10_000_000     # size cap for one body
    max_redirects: int = 5
    user_agent: str = "Herald/0.1 (self-hosted feed-to-social poster; set http.user_agent to add your contact)"
    allow_hosts: tuple[str, ...] = ()  # hosts/CIDRs allowed even if private (intranet)

    __repr__ = _masked_repr


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str                        # http(s) URL or local file path
    every: timedelta = timedelta(minutes=5)
    backfill: int = 0
    fetch_article: str = "auto"     # auto | always | never
    max_age: timedelta | None = None
    ping_token: Secret | None = None   # POST /ping/<feed> with this token polls the feed at once
    websub: bool = True                # subscribe at the feed's WebSub hub when it has one

    __repr__ = _masked_repr


@dataclass(frozen=True)
class WorkerSettings:
    """How workers sharing one database coordinate (``workers:``)."""

    heartbeat: timedelta = timedelta(seconds=5)
    takeover_after: timedelta = timedelta(seconds=20)   # > 2 x heartbeat


@dataclass(frozen=True)
class Filters:
    """Which items a route lets through (``routes[].filters``). Keywords are
    whole words, case- and accent-insensitive, in the title or the lead."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()          # include only these (empty: any)
    exclude_categories: tuple[str, ...] = ()
    match: str | None = None                  # a regex the title or lead must match
    not_match: str | None = None              # a regex neither may match


@dataclass(frozen=True)
class Utm:
    """Tracking parameters added to a post's link; ``{account}``, ``{platform}``
    and ``{feed}`` in a value are filled in per post."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None


@dataclass(frozen=True)
class Budget:
    """An X account's monthly spend cap (``accounts[].budget``): a number of
    posts per calendar month (UTC), or an amount at a price per post."""

    posts: int | None = None
    amount: Decimal | None = None
    price_per_post: Decimal | None = None
    price_per_link_post: Decimal | None = None   # None: price_per_post


@dataclass(frozen=True)
class DeskSettings:
    """How the editors' page is protected (``desk:``)."""

    token: Secret | None = None
    user: str = "editor"
    password_hash: str | None = None   # "scrypt$salt$hash" or "pbkdf2_sha256$iter$salt$hash"

    __repr__ = _masked_repr


@dataclass(frozen=True)
class Style:
    """How one feed's posts look on one account: the template (a route's over
    the account's), the hashtag map (the route's merged over the account's)
    and the tracking parameters (a route's over the account's)."""

    template: str
    hashtags: Mapping[str, str] = field(default_factory=dict)
    utm: Utm | None = None


@dataclass(frozen=True)
class Window:
    """A posting window: on ``days`` (0=Monday), from ``start`` to ``end`` local
    time. ``end <= start`` means the window crosses midnight into the next day."""

    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True)
class Schedule:
    min_gap: timedelta = timedelta(0)
    jitter: timedelta = timedelta(0)
    max_per_hour: int | None = None
    max_per_day: int | None = None
    windows: tuple[Window, ...] = ()   # empty: any time
    order: str = "oldest"              # newest | oldest
    expire_after: timedelta | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class AccountConfig:
    name: str
    platform: str
    template: str
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)   # adapter options
    schedule: Schedule | None = None
    hashtags: Mapping[str, str] = field(default_factory=dict)  # keyword -> hashtag
    max_hashtags: int = 2
    max_attempts: int = 5
    retry_backoff: timedelta = timedelta(minutes=1)   # first retry delay; doubles each time
    approve: bool = False                  # posts wait in "held" for an editor
    utm: Utm | None = None
    budget: Budget | None = None           # X only

    __repr__ = _masked_repr


@dataclass(frozen=True)
class RouteConfig:
    feeds: tuple[str, ...]
    accounts: tuple[str, ...]
    priority: int = 0
    hashtags: Mapping[str, str] = field(default_factory=dict)
    filters: Filters | None = None
    template: str | None = None      # over the account's template, for this route's posts
    approve: bool = False
    utm: Utm | None = None

    @cached_property
    def _feed_set(self) -> frozenset[str]:
        return frozenset(self.feeds)

    def takes(self, feed: str) -> bool:
        """Whether this route carries ``feed``: a set look-up, as one route may
        name 10,000 feeds and every feed asks at start."""
        return feed in self._feed_set


@dataclass(frozen=True)
class Config:
    path: str
    timezone: str
    database: str
    log_level: str
    feeds: tuple[FeedConfig, ...]
    accounts: tuple[AccountConfig, ...]
    routes: tuple[RouteConfig, ...]
    http: HttpSettings = HttpSettings()
    publish_every: timedelta = timedelta(seconds=15)
    http_listen: tuple[str, int] | None = None   # (host, port) of /healthz and /metrics; None: off
    log_format: str = "text"                     # text | json
    retention: timedelta = timedelta(days=90)    # settled posts older than this are pruned
    workers: WorkerSettings = WorkerSettings()
    public_url: str | None = None                # https URL WebSub hubs call back; None: no WebSub
    desk: DeskSettings = DeskSettings()

    __repr__ = _masked_repr


def style_for(config: Config, feed: str, account: str) -> Style:
    """How ``feed``'s posts look on ``account``: the template of the
    highest-priority route between them that sets one, else the account's; the
    account's hashtags with every such route's merged over them (in the
    file's order); the utm of
    the highest-priority route that sets one, else the account's. KeyError
    for an unknown account."""
    found = next((a for a in config.accounts if a.name == account), None)
    if found is None:
        raise KeyError(f"no account {account!r} in the config")
    routes = [r for r in config.routes if r.takes(feed) and account in r.accounts]
    hashtags = dict(found.hashtags)
    for route in routes:   # in the file's order, a later route's tag over an earlier one's
        hashtags.update(route.hashtags)
    routes.sort(key=lambda r: -r.priority)   # stable: the first given wins a tie
    template = next((r.template for r in routes if r.template is not None), found.template)
    utm = next((r.utm for r in routes if r.utm is not None), found.utm)
    return Style(template=template, hashtags=hashtags, utm=utm)


# ---------------------------------------------------------------- parsers

_DURATION = re.compile(r"(?:(\d+)\s*([smhd]))", re.I)
_DURATION_FULL = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Past ten years a duration is a typo, and far past it adding it to a datetime
# raises OverflowError in the middle of a publish pass.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: Any) -> timedelta:
    """``"10m"``, ``"1h30m"``, ``"90s"``, ``"2d"`` → timedelta of at most
    MAX_DURATION; ValueError otherwise."""
    seconds = duration_seconds(text)
    if seconds is None:
        raise ValueError(f'expected a duration like "10m", "1h30m" or "2d", got {shown(text)}')
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"expected a duration of at most {MAX_DURATION.days}d, got {shown(text)}")
    return timedelta(seconds=seconds)


def duration_seconds(text: Any) -> int | None:
    """The seconds a duration text says, unbounded (Python ints do not
    overflow); None when it is not one. 40 characters: no real duration is longer."""
    if not isinstance(text, str) or len(text) > 40 or not _DURATION_FULL.match(text):
        return None
    return sum(int(n) * _UNIT[u.lower()] for n, u in _DURATION.findall(text))


_FORM = 'expected a window like "mon-fri 07:00-22:00", "sat,sun 09:00-20:00" or "daily 22:00-02:00"'
_WINDOW = re.compile(r"\s*(?P<days>.*?)\s*(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*")
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EVERY_DAY = ("daily", "all", "*")


def parse_window(text: str) -> Window:
    """``"mon-fri 07:00-22:00"``, ``"sat,sun 09:00-20:00"``, ``"mon-sun 22:00-02:00"``,
    ``"daily 07:00-22:00"`` → Window.

    Days are mon..sun (or full names), ranges may wrap (``fri-mon``), ``daily``
    means every day. ``24:00`` is allowed as an end; an end at or before the
    start crosses midnight. Raises ValueError naming the problem and the form."""
    # the length cap keeps the regex's backtracking on a pasted blob short
    match = _WINDOW.fullmatch(text) if isinstance(text, str) and len(text) <= 200 else None
    if match is None:
        raise ValueError(f"{_FORM}, got {shown(text)}")
    try:
        days = _parse_days(match["days"])
        start, end = _parse_clock(match["start"], False), _parse_clock(match["end"], True)
    except ValueError as exc:
        raise ValueError(f"{exc} in {shown(text)}; {_FORM}") from None
    return Window(days=days, start=start, end=end)


def _parse_days(text: str) -> frozenset[int]:
    text = re.sub(r"\s+", "", text.lower())
    if not text:
        raise ValueError("missing days before the times")
    if text in _EVERY_DAY:
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        a, b = _day(first), _day(last) if dash else _day(first)
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def _day(name: str) -> int:
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    if name in _FULL_NAMES:
        return _FULL_NAMES.index(name)
    raise ValueError(f"unknown day {shown(name)} (days are mon, tue, wed, thu, fri, sat, sun or daily)")


def _parse_clock(text: str, is_end: bool) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if is_end and (hours, minutes) == (24, 0):
        return time(0, 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"no such time {text!r} (00:00 to 23:59, and 24:00 as an end)")
    return time(hours, minutes)


def template_fields(template: str) -> list[str]:
    """The ``{fields}`` a template uses; ValueError for malformed braces."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def shown(value: Any) -> str:
    """A value for a problem line: short, on one line; containers by kind only."""
    if isinstance(value, (dict, list, tuple, set)):
        return kind_of(value)
    if isinstance(value, bool):
        return f"{str(value).lower()} (YAML reads yes/no and on/off as true/false)"
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "…" + text[-6:]


def kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)
