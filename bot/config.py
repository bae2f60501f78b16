"""Parse and validate the YAML config into frozen, typed objects.

Every problem is reported with its key path, all at once, as a ConfigError.
"""
from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from dotenv import dotenv_values

from bot.adapters import REGISTRY
from bot.adapters.base import REQUIRED
from bot.errors import ConfigError
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
    user_agent: str = "Herald/0.1 (self-hosted feed-to-social poster; set http.user_agent to add your contact)"
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
    retry_backoff: timedelta = timedelta(minutes=1)   # first retry delay; doubles each time


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
    publish_every: timedelta = timedelta(seconds=15)


# ---------------------------------------------------------------- loading


DEFAULT_DATABASE = "sqlite:///data/herald.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_DURATION = re.compile(r"(?:(\d+)\s*([smhd]))", re.I)
_DURATION_FULL = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the config at ``path``.

    ``${VAR}`` references are taken from ``env`` (default: the process
    environment) and then from a ``.env`` file beside the config. Raises
    ConfigError listing every problem, each prefixed by its key path."""
    path = Path(path)
    raw = _read_yaml(path)
    environ = {**dotenv_values(path.parent / ".env"), **(env if env is not None else os.environ)}
    checker = _Checker(environ, path.parent)
    config = checker.config(raw, str(path))
    if checker.problems:
        raise ConfigError(checker.problems)
    return config


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError(f"{path}: YAML syntax error at {where}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from exc


def parse_duration(text: Any) -> timedelta:
    """``"10m"``, ``"1h30m"``, ``"90s"``, ``"2d"`` → timedelta; ValueError otherwise."""
    if not isinstance(text, str) or not _DURATION_FULL.match(text):
        raise ValueError(f'expected a duration like "10m", "1h30m" or "2d", got {text!r}')
    seconds = sum(int(n) * _UNIT[u.lower()] for n, u in _DURATION.findall(text))
    return timedelta(seconds=seconds)


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
    match = _WINDOW.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{_FORM}, got {text!r}")
    try:
        days = _parse_days(match["days"])
        start, end = _parse_clock(match["start"], False), _parse_clock(match["end"], True)
    except ValueError as exc:
        raise ValueError(f"{exc} in {text!r}; {_FORM}") from None
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
    raise ValueError(f"unknown day {name!r} (days are mon, tue, wed, thu, fri, sat, sun or daily)")


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


class _Checker:
    """Walks the raw YAML, collecting one problem line per mistake."""

    def __init__(self, environ: Mapping[str, str | None], base: Path):
        self.environ = environ
        self.base = base
        self.problems: list[str] = []

    def err(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, raw: Any, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        """Check ``raw`` is a mapping with only ``allowed`` keys and all ``required`` ones."""
        if not isinstance(raw, dict):
            self.err(path, f"expected a mapping, got {_kind(raw)}")
            return {}
        for key in raw:
            if key not in allowed:
                self.err(f"{path}.{key}" if path else str(key),
                         f"unknown key (known: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(raw)):
            self.err(f"{path}.{key}" if path else key, "required key is missing")
        return raw

    def value(self, raw: dict, key: str, path: str, kind: type, default: Any) -> Any:
        """``raw[key]`` checked against ``kind``, or ``default`` when absent."""
        if key not in raw or (raw[key] is None and default is None):
            return default
        value = self.expand(raw[key], f"{path}.{key}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
            expected = "/".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
            self.err(f"{path}.{key}", f"expected {expected}, got {_kind(value)}")
            return default
        return value

    def expand(self, value: Any, path: str) -> Any:
        """Replace ``${VAR}`` in strings; an unset variable is a problem naming it."""
        if not isinstance(value, str):
            return value

        def sub(match: re.Match) -> str:
            found = self.environ.get(match[1])
            if found is None:
                self.err(path, f"environment variable {match[1]} is not set "
                               f"(export it or put it in .env beside the config)")
                return ""
            return found
        return _VAR.sub(sub, value)

    def duration(self, raw: dict, key: str, path: str, default: timedelta | None) -> timedelta | None:
        if key not in raw or raw[key] is None:
            return default
        try:
            return parse_duration(raw[key])
        except ValueError as exc:
            self.err(f"{path}.{key}", str(exc))
            return default

    def names(self, raw: Any, path: str) -> tuple[str, ...]:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            self.err(path, "expected a list of names")
            return ()
        return tuple(items)

    def items(self, raw: Any, path: str) -> list:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.err(path, f"expected a list, got {_kind(raw)}")
            return []
        return raw

    # -- sections ----------------------------------------------------------

    def config(self, raw: Any, path: str) -> Config:
        top = self.mapping(raw, "", {"version", "timezone", "database", "log_level", "http",
                                     "publish_every", "feeds", "accounts", "routes"},
                           {"feeds", "accounts", "routes"})
        if top.get("version", 1) != 1:
            self.err("version", f"unsupported version {top['version']!r} (this Herald reads version 1)")
        tz = self.timezone(top, "timezone", "", "UTC")
        feeds = tuple(self.feed(f, f"feeds[{i}]") for i, f in enumerate(self.items(top.get("feeds"), "feeds")))
        accounts = tuple(self.account(a, f"accounts[{i}]", tz)
                         for i, a in enumerate(self.items(top.get("accounts"), "accounts")))
        routes = tuple(self.route(r, f"routes[{i}]") for i, r in enumerate(self.items(top.get("routes"), "routes")))
        self.cross_check(feeds, accounts, routes)
        return Config(path=path, timezone=tz, database=self.database(top),
                      log_level=self.log_level(top), feeds=feeds, accounts=accounts,
                      routes=routes, http=self.http(top.get("http")),
                      publish_every=self.duration(top, "publish_every", "", timedelta(seconds=15)))

    def timezone(self, raw: dict, key: str, path: str, default: str) -> str:
        name = self.value(raw, key, path, str, default)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.err(f"{path}.{key}".lstrip("."), f"unknown time zone {name!r} (e.g. Europe/Berlin, UTC)")
            return default
        return name

    def database(self, top: dict) -> str:
        url = self.value(top, "database", "", str, DEFAULT_DATABASE)
        if not re.match(r"^[a-z0-9+]+://", url):
            self.err("database", f'expected a database URL like "{DEFAULT_DATABASE}"')
            return DEFAULT_DATABASE
        prefix = "sqlite:///"
        if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:") \
                and not url[len(prefix):].startswith("/"):
            # A relative SQLite path is relative to the config file, not the cwd,
            # so a service and a shell see the same database.
            url = prefix + str((self.base / url[len(prefix):]).resolve())
        return url

    def log_level(self, top: dict) -> str:
        level = str(self.value(top, "log_level", "", str, "INFO")).upper()
        if level not in LOG_LEVELS:
            self.err("log_level", f"expected one of {', '.join(LOG_LEVELS)}")
            return "INFO"
        return level

    def http(self, raw: Any) -> HttpSettings:
        if raw is None:
            return HttpSettings()
        d = HttpSettings()
        m = self.mapping(raw, "http", {"connect_timeout", "read_timeout", "deadline", "max_bytes",
                                       "max_redirects", "user_agent", "allow_hosts"})
        return HttpSettings(
            connect_timeout=self.value(m, "connect_timeout", "http", float, d.connect_timeout),
            read_timeout=self.value(m, "read_timeout", "http", float, d.read_timeout),
            deadline=self.value(m, "deadline", "http", float, d.deadline),
            max_bytes=self.value(m, "max_bytes", "http", int, d.max_bytes),
            max_redirects=self.value(m, "max_redirects", "http", int, d.max_redirects),
            user_agent=self.value(m, "user_agent", "http", str, d.user_agent),
            allow_hosts=self.names(m.get("allow_hosts", []), "http.allow_hosts"))

    def feed(self, raw: Any, path: str) -> FeedConfig:
        m = self.mapping(raw, path, {"name", "url", "every", "backfill", "fetch_article", "max_age"},
                         {"name", "url"})
        url = self.value(m, "url", path, str, "")
        if url and not re.match(r"^https?://", url) and not url.startswith("file://"):
            url = str((self.base / url).resolve())
        mode = self.value(m, "fetch_article", path, str, "auto")
        if mode not in ("auto", "always", "never"):
            self.err(f"{path}.fetch_article", "expected auto, always or never")
        backfill = self.value(m, "backfill", path, int, 0)
        if backfill < 0:
            self.err(f"{path}.backfill", "expected 0 or more")
        every = self.duration(m, "every", path, timedelta(minutes=5))
        if every < timedelta(seconds=5):
            self.err(f"{path}.every", "poll at most every 5s (be kind to the feed's server)")
        return FeedConfig(name=self.value(m, "name", path, str, ""), url=url, every=every,
                          backfill=max(backfill, 0), fetch_article=mode,
                          max_age=self.duration(m, "max_age", path, None))

    def account(self, raw: Any, path: str, tz: str) -> AccountConfig:
        common = {"name", "platform", "credentials", "template", "schedule", "hashtags",
                  "max_hashtags", "max_attempts", "retry_backoff"}
        platform = raw.get("platform") if isinstance(raw, dict) else None
        adapter = REGISTRY.get(platform)
        if isinstance(raw, dict) and adapter is None:
            self.err(f"{path}.platform", f"unknown platform {platform!r} "
                                         f"(known: {', '.join(sorted(REGISTRY))})")
        options = dict(adapter.options) if adapter else {}
        m = self.mapping(raw, path, common | set(options) if adapter else set(raw or {}) | common,
                         {"name", "platform"})
        template = self.value(m, "template", path, str, adapter.default_template if adapter else "")
        self.template(template, f"{path}.template")
        return AccountConfig(
            name=self.value(m, "name", path, str, ""), platform=str(platform), template=template,
            credentials=self.credentials(m.get("credentials"), f"{path}.credentials", adapter),
            options=self.options(m, path, options),
            schedule=self.schedule(m.get("schedule"), f"{path}.schedule", tz),
            hashtags=self.hashtag_map(m.get("hashtags"), f"{path}.hashtags"),
            max_hashtags=self.value(m, "max_hashtags", path, int, 2),
            max_attempts=self.value(m, "max_attempts", path, int, 5),
            retry_backoff=self.duration(m, "retry_backoff", path, timedelta(minutes=1)))

    def options(self, m: dict, path: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for key, default in defaults.items():
            if default is REQUIRED:
                if key not in m:
                    self.err(f"{path}.{key}", "required key is missing")
                value = self.value(m, key, path, (str, int), "")
                out[key] = str(value)
            else:
                out[key] = self.value(m, key, path, type(default), default)
        return out

    def credentials(self, raw: Any, path: str, adapter) -> dict[str, Secret]:
        keys = set(adapter.credential_keys) if adapter else set()
        if not keys and raw is None:
            return {}
        m = self.mapping(raw, path, keys, keys)
        out = {}
        for key in keys & set(m):
            value = self.expand(m[key], f"{path}.{key}")
            if not isinstance(value, str):
                self.err(f"{path}.{key}", f'expected a string like "${{{key.upper()}}}"')
            elif value:
                out[key] = Secret(value)
        return out

    def template(self, template: str, path: str) -> None:
        try:
            fields = template_fields(template)
        except ValueError as exc:
            self.err(path, f"malformed template ({exc}); write literal braces as {{{{ and }}}}")
            return
        for name in fields:
            if name not in TEMPLATE_FIELDS:
                self.err(path, f"unknown field {{{name}}} (known: "
                               + ", ".join("{%s}" % f for f in TEMPLATE_FIELDS) + ")")

    def hashtag_map(self, raw: Any, path: str) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in raw.items()):
            self.err(path, 'expected a mapping of keyword to hashtag, like {"North Korea": "#NorthKorea"}')
            return {}
        return dict(raw)

    def schedule(self, raw: Any, path: str, tz: str) -> Schedule | None:
        if raw is None:
            return None
        m = self.mapping(raw, path, {"min_gap", "jitter", "max_per_hour", "max_per_day", "windows",
                                     "order", "expire_after", "timezone"})
        order = self.value(m, "order", path, str, "oldest")
        if order not in ("newest", "oldest"):
            self.err(f"{path}.order", "expected newest or oldest")
        return Schedule(
            min_gap=self.duration(m, "min_gap", path, timedelta(0)),
            jitter=self.duration(m, "jitter", path, timedelta(0)),
            max_per_hour=self.positive(m, "max_per_hour", path),
            max_per_day=self.positive(m, "max_per_day", path),
            windows=self.windows(m.get("windows"), f"{path}.windows"),
            order=order, expire_after=self.duration(m, "expire_after", path, None),
            timezone=self.timezone(m, "timezone", path, tz))

    def positive(self, m: dict, key: str, path: str) -> int | None:
        value = self.value(m, key, path, int, None)
        if value is not None and value < 1:
            self.err(f"{path}.{key}", "expected a number of 1 or more")
            return None
        return value

    def windows(self, raw: Any, path: str) -> tuple[Window, ...]:
        out = []
        for i, text in enumerate(self.items([raw] if isinstance(raw, str) else raw, path)):
            try:
                out.append(parse_window(text))
            except ValueError as exc:
                self.err(f"{path}[{i}]", str(exc))
        return tuple(out)

    def route(self, raw: Any, path: str) -> RouteConfig:
        m = self.mapping(raw, path, {"feeds", "accounts", "priority", "hashtags"}, {"feeds", "accounts"})
        return RouteConfig(feeds=self.names(m.get("feeds", []), f"{path}.feeds"),
                           accounts=self.names(m.get("accounts", []), f"{path}.accounts"),
                           priority=self.value(m, "priority", path, int, 0),
                           hashtags=self.hashtag_map(m.get("hashtags"), f"{path}.hashtags"))

    def cross_check(self, feeds, accounts, routes) -> None:
        """Unique names; routes name only known feeds and accounts."""
        for kind, items in (("feeds", feeds), ("accounts", accounts)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.name in seen:
                    self.err(f"{kind}[{i}].name", f"duplicate name {item.name!r}")
                seen.add(item.name)
        feed_names, account_names = {f.name for f in feeds}, {a.name for a in accounts}
        for i, route in enumerate(routes):
            for name in route.feeds:
                if name not in feed_names:
                    self.err(f"routes[{i}].feeds", f"unknown feed {name!r} (known: {', '.join(sorted(feed_names))})")
            for name in route.accounts:
                if name not in account_names:
                    self.err(f"routes[{i}].accounts",
                             f"unknown account {name!r} (known: {', '.join(sorted(account_names))})")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)
