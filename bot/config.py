"""Parse and validate the YAML config into frozen, typed objects.

Every problem is reported with its key path, all at once, as a ConfigError.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from bot.secret import Secret

TEMPLATE_FIELDS = ("title", "lead", "url", "hashtags", "source", "author")


@dataclass(frozen=True)
class HttpSettings:
    """How Herald fetches feeds and pages."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 30.0          # total seconds for one fetch, body included
    max_bytes: int = 10_000_000     # size cap for one body
    max_redirects: int = 5
    user_agent: str = "Herald/0.1 (+https://github.com/herald-bot/herald; feed-to-social poster)"
    allow_hosts: tuple[str, ...] = ()  # hosts/CIDRs allowed even if private (intranet)


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str                        # http(s) URL or local file path
    every: timedelta = timedelta(minutes=5)
    backfill: int = 0
    fetch_article: str = "auto"     # auto | always | never
    max_age: timedelta | None = None


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


@dataclass(frozen=True)
class RouteConfig:
    feeds: tuple[str, ...]
    accounts: tuple[str, ...]
    priority: int = 0
    hashtags: Mapping[str, str] = field(default_factory=dict)


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
