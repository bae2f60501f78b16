"""Parse and validate the YAML config into frozen, typed objects.

Every problem is reported with its key path, all at once, as a ConfigError.
The YAML is read within bounds by ``bot.configyaml``; the value checks are
``bot.configcheck``'s; an account's platform options are checked against its
adapter's schema by ``bot.configoptions``; the desk's, push's and the
workers' sections by ``bot.configdesk``; the types built live in
``bot.configtypes`` (standard library only) and are re-exported here for the
modules that import them from ``bot.config``.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot import configoptions, configtypes, configyaml, filters
from bot.configcheck import is_kind, show_list
from bot.configdesk import DeskChecks
from bot.configtypes import (  # noqa: F401  (re-exported for the modules that import them from here)
    TEMPLATE_FIELDS, AccountConfig, Budget, DeskSettings, FeedConfig, Filters, HttpSettings,
    RouteConfig, Schedule, Style, Utm, Window, WorkerSettings, duration_seconds, kind_of,
    parse_duration, parse_window, shown, template_fields)
from bot.errors import ConfigError
from bot.models import Article, Target


class Config(configtypes.Config):
    """The config as loaded, and the routing it implies."""

    def targets(self, feed: str) -> Callable[[Article], list[Target]]:
        """Per article of ``feed``, the accounts routed to and each route's
        decision (filtered with its reason, held for approval, or pending):
        what ``Store.ingest`` takes. The filters are compiled once, here, and
        feeds on the same routes share one router (10,000 feeds, a few routes)."""
        taking = tuple(i for i, route in enumerate(self.routes) if route.takes(feed))
        if taking not in self._routers:
            self._routers[taking] = filters.router([self.routes[i] for i in taking],
                                                   self.accounts)
        return self._routers[taking]

    @cached_property
    def _routers(self) -> dict[tuple[int, ...], Callable[[Article], list[Target]]]:
        return {}

    def style(self, feed: str, account: str) -> Style:
        """``feed``'s template, hashtags and utm on ``account`` (see
        ``configtypes.style_for``); KeyError for an unknown account."""
        return configtypes.style_for(self, feed, account)


# ---------------------------------------------------------------- loading


DEFAULT_DATABASE = "sqlite:///data/herald.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _dotenv(path: Path) -> dict[str, str | None]:
    """The ``.env`` beside the config; one that cannot be read is a config error."""
    try:
        return dotenv_values(path)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "not UTF-8 text" if isinstance(exc, UnicodeError) else str(exc)
        raise ConfigError([f"{path}: cannot read it ({reason})"]) from None


def load(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the config at ``path``.

    ``${VAR}`` references are taken from ``env`` (default: the process
    environment) and then from a ``.env`` file beside the config. Raises
    ConfigError listing every problem, each prefixed by its key path, or by
    ``<file>, line L, column C`` for what is wrong in the YAML itself."""
    path = Path(path)
    raw = configyaml.read(path)
    environ = {**_dotenv(path.parent / ".env"), **(env if env is not None else os.environ)}
    checker = _Sections(environ, path.parent, str(path))
    config = checker.config(raw, str(path))
    if checker.problems:
        raise ConfigError(checker.problems)
    return config


_ACCOUNT_KEYS = {"name", "platform", "credentials", "options", "template", "schedule", "hashtags",
                 "max_hashtags", "max_attempts", "retry_backoff", "approve", "utm", "budget"}
_ROUTE_KEYS = {"feeds", "accounts", "priority", "hashtags", "filters", "template", "approve", "utm"}
_FEED_KEYS = {"name", "url", "every", "backfill", "fetch_article", "max_age", "ping_token", "websub"}
MAX_LEAD = 5_000         # {lead:N}: no platform takes a post longer than this

# Allowed ranges, inclusive. Outside them a value is a typo ("max_bytes: -5"),
# switches a safeguard off ("max_attempts: 0") or overflows later.
_SECONDS = {"connect_timeout": (0.1, 300.0), "read_timeout": (0.1, 600.0), "deadline": (1.0, 3600.0)}
_HTTP_COUNTS = {"max_bytes": (1_000, 1_000_000_000), "max_redirects": (0, 30)}


class _Sections(DeskChecks):
    """The config's sections, each built from the checks of ``Checker``."""

    def config(self, raw: Any, path: str) -> Config:
        if not isinstance(raw, dict):   # empty, or a list: nothing below can be checked
            self.err("", f"expected a mapping of settings (feeds, accounts, routes, ...), got {kind_of(raw)}")
            return Config(path, "UTC", DEFAULT_DATABASE, "INFO", (), (), ())
        top = self.mapping(raw, "", {"version", "timezone", "database", "log_level", "http",
                                     "publish_every", "feeds", "accounts", "routes", "http_listen",
                                     "log_format", "retention", "workers", "public_url", "desk"},
                           {"feeds", "accounts", "routes"})
        version = top.get("version", 1)
        if not (is_kind(version, int) and version == 1):
            self.err("version", f"unsupported version {shown(version)} (this Herald reads version 1)")
        tz = self.timezone(top, "timezone", "", "UTC")
        feeds = tuple(self.feed(f, f"feeds[{i}]") for i, f in enumerate(self.items(top.get("feeds"), "feeds")))
        accounts = tuple(self.account(a, f"accounts[{i}]", tz)
                         for i, a in enumerate(self.items(top.get("accounts"), "accounts")))
        routes = tuple(self.route(r, f"routes[{i}]") for i, r in enumerate(self.items(top.get("routes"), "routes")))
        self.cross_check(feeds, accounts, routes)
        listen, desk = self.listen(top), self.desk(top.get("desk"))
        self.loopback_rule(listen, desk)
        return Config(path=path, timezone=tz, database=self.database(top),
                      log_level=self.log_level(top), feeds=feeds, accounts=accounts,
                      routes=routes, http=self.http(top.get("http")),
                      publish_every=self.duration(top, "publish_every", "", timedelta(seconds=15),
                                                  ("1s", "1h")),
                      http_listen=listen, log_format=self.log_format(top),
                      retention=self.duration(top, "retention", "", timedelta(days=90), ("1d", "3650d")),
                      workers=self.workers(top.get("workers")), public_url=self.public_url(top),
                      desk=desk)

    def timezone(self, raw: dict, key: str, path: str, default: str) -> str:
        name = self.value(raw, key, path, str, default)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.err(f"{path}.{key}".lstrip("."), f"unknown time zone {shown(name)} (e.g. Europe/Berlin, UTC)")
            return default
        return name

    def database(self, top: dict) -> str:
        url = self.url(top, "database", "", DEFAULT_DATABASE)
        if not re.match(r"^[a-z0-9+]+://", url):
            self.err("database", f'expected a database URL like "{DEFAULT_DATABASE}"')
            return DEFAULT_DATABASE
        prefix = "sqlite:///"
        if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:") \
                and not url[len(prefix):].startswith("/"):
            url = prefix + self.local_path(url[len(prefix):], "database")
        return url

    def log_level(self, top: dict) -> str:
        level = str(self.value(top, "log_level", "", str, "INFO")).upper()
        if level not in LOG_LEVELS:
            self.err("log_level", f"expected one of {', '.join(LOG_LEVELS)}")
            return "INFO"
        return level

    def listen(self, top: dict) -> tuple[str, int] | None:
        text = self.value(top, "http_listen", "", str, None)
        if text is None:
            return None
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            self.err("http_listen", f'expected host:port like "127.0.0.1:9108", got {shown(text)}')
            return None
        return host, int(port)

    def log_format(self, top: dict) -> str:
        fmt = self.value(top, "log_format", "", str, "text")
        if fmt not in ("text", "json"):
            self.err("log_format", "expected text or json")
            return "text"
        return fmt

    def http(self, raw: Any) -> HttpSettings:
        if raw is None:
            return HttpSettings()
        d = HttpSettings()
        m = self.mapping(raw, "http", {"connect_timeout", "read_timeout", "deadline", "max_bytes",
                                       "max_redirects", "user_agent", "allow_hosts"})
        seconds = {key: self.value(m, key, "http", float, getattr(d, key), bounds)
                   for key, bounds in _SECONDS.items()}
        counts = {key: self.value(m, key, "http", int, getattr(d, key), bounds)
                  for key, bounds in _HTTP_COUNTS.items()}
        return HttpSettings(**seconds, **counts,
                            user_agent=self.value(m, "user_agent", "http", str, d.user_agent),
                            allow_hosts=self.names(m.get("allow_hosts", []), "http.allow_hosts"))

    def feed(self, raw: Any, path: str) -> FeedConfig:
        m = self.mapping(raw, path, _FEED_KEYS, {"name", "url"})
        url = self.url(m, "url", path, "")
        if url and not re.match(r"^https?://", url) and not url.startswith("file://"):
            url = self.local_path(url, f"{path}.url")
        mode = self.value(m, "fetch_article", path, str, "auto")
        if mode not in ("auto", "always", "never"):
            self.err(f"{path}.fetch_article", "expected auto, always or never")
        # at least 5s: be kind to the feed's server
        return FeedConfig(name=self.value(m, "name", path, str, ""), url=url,
                          every=self.duration(m, "every", path, timedelta(minutes=5), ("5s", "7d")),
                          backfill=self.value(m, "backfill", path, int, 0, (0, 1000)), fetch_article=mode,
                          max_age=self.duration(m, "max_age", path, None, ("1m", "3650d")),
                          ping_token=self.token(m, "ping_token", path),
                          websub=self.value(m, "websub", path, bool, True))

    def account(self, raw: Any, path: str, tz: str) -> AccountConfig:
        given = raw if isinstance(raw, dict) else {}
        adapter = configoptions.adapter_for(self, given, path)
        # an unknown platform's own keys are not reported too: one line, one mistake
        extra = configoptions.option_keys(adapter) if adapter else set(given)
        m = self.mapping(raw, path, _ACCOUNT_KEYS | extra, {"name", "platform"})
        template = self.value(m, "template", path, str, adapter.default_template if adapter else "")
        self.template(template, f"{path}.template")
        return AccountConfig(
            name=self.value(m, "name", path, str, ""), platform=str(given.get("platform")),
            template=template,
            credentials=configoptions.credentials(self, m.get("credentials"),
                                                  f"{path}.credentials", adapter),
            options=configoptions.options(self, m, path, adapter) if adapter else {},
            schedule=self.schedule(m.get("schedule"), f"{path}.schedule", tz),
            hashtags=self.hashtag_map(m.get("hashtags"), f"{path}.hashtags"),
            max_hashtags=self.value(m, "max_hashtags", path, int, 2, (0, 30)),
            max_attempts=self.value(m, "max_attempts", path, int, 5, (1, 100)),
            retry_backoff=self.duration(m, "retry_backoff", path, timedelta(minutes=1), ("1s", "1d")),
            approve=self.value(m, "approve", path, bool, False),
            utm=self.utm(m.get("utm"), f"{path}.utm"),
            budget=self.budget(m.get("budget"), f"{path}.budget", given.get("platform")))

    def template(self, template: str, path: str) -> None:
        for name, spec, conversion in self.fields(template, path, TEMPLATE_FIELDS, "field"):
            if conversion or (spec and not (name == "lead" and _lead_cap(spec))):
                self.err(path, f"{{{name}{'!' + conversion if conversion else ''}:{shown(spec)[1:-1]}}}: "
                               f"only {{lead:N}} takes a number, N from 1 to {MAX_LEAD} characters")

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
            min_gap=self.duration(m, "min_gap", path, timedelta(0), ("0s", "7d")),
            jitter=self.duration(m, "jitter", path, timedelta(0), ("0s", "1d")),
            max_per_hour=self.value(m, "max_per_hour", path, int, None, (1, 3600)),
            max_per_day=self.value(m, "max_per_day", path, int, None, (1, 86400)),
            windows=self.windows(m.get("windows"), f"{path}.windows"),
            order=order, expire_after=self.duration(m, "expire_after", path, None, ("1m", "365d")),
            timezone=self.timezone(m, "timezone", path, tz))

    def windows(self, raw: Any, path: str) -> tuple[Window, ...]:
        out = []
        for i, text in enumerate(self.items([raw] if isinstance(raw, str) else raw, path)):
            try:
                out.append(parse_window(text))
            except ValueError as exc:
                self.err(f"{path}[{i}]", str(exc))
        return tuple(out)

    def route(self, raw: Any, path: str) -> RouteConfig:
        m = self.mapping(raw, path, _ROUTE_KEYS, {"feeds", "accounts"})
        template = self.value(m, "template", path, str, None)
        if template is not None:
            self.template(template, f"{path}.template")
        return RouteConfig(feeds=self.names(m.get("feeds", []), f"{path}.feeds"),
                           accounts=self.names(m.get("accounts", []), f"{path}.accounts"),
                           priority=self.value(m, "priority", path, int, 0, (-1000, 1000)),
                           hashtags=self.hashtag_map(m.get("hashtags"), f"{path}.hashtags"),
                           filters=self.filters(m.get("filters"), f"{path}.filters"),
                           template=template, approve=self.value(m, "approve", path, bool, False),
                           utm=self.utm(m.get("utm"), f"{path}.utm"))

    def cross_check(self, feeds, accounts, routes) -> None:
        """Unique names; routes name only known feeds and accounts."""
        for kind, items in (("feeds", feeds), ("accounts", accounts)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.name in seen:
                    self.err(f"{kind}[{i}].name", f"duplicate name {shown(item.name)}")
                seen.add(item.name)
        for i, route in enumerate(routes):
            self.known(route.feeds, feeds, f"routes[{i}].feeds", "feeds")
            self.known(route.accounts, accounts, f"routes[{i}].accounts", "accounts")

    def known(self, names: tuple[str, ...], items, path: str, kind: str) -> None:
        # a section or item that is itself broken (not a list, not a mapping) was
        # reported; each route naming into it would only repeat that one mistake
        if any(re.match(rf"{kind}(\[\d+\])?: ", problem) for problem in self.problems):
            return
        known = {item.name for item in items}   # a set: a route may name 10,000 feeds
        listed = None                            # the "known:" list, made once if needed
        for name in names:
            if name not in known:
                listed = listed or show_list(sorted(known))
                self.err(path, f"unknown {kind[:-1]} {shown(name)} (known: {listed})")



def _lead_cap(spec: str) -> bool:
    return spec.isascii() and spec.isdigit() and 1 <= int(spec) <= MAX_LEAD
