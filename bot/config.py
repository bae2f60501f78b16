"""Parse and validate the YAML config into frozen, typed objects.

Every problem is reported with its key path, all at once, as a ConfigError.
The YAML is read within bounds by ``bot.configyaml``; the value checks are
``bot.configcheck``'s; an account's platform options are checked against its
adapter's schema by ``bot.configoptions``; the types built live in
``bot.configtypes`` (standard library only) and are re-exported here for the
modules that import them from ``bot.config``.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import string
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot import configoptions, configyaml, filters
from bot.configcheck import Checker, is_kind, show_list
from bot.configtypes import (  # noqa: F401  (re-exported for the modules that import them from here)
    TEMPLATE_FIELDS, AccountConfig, Budget, Config, DeskSettings, FeedConfig, Filters, HttpSettings,
    RouteConfig, Schedule, Style, Utm, Window, WorkerSettings, duration_seconds, kind_of,
    parse_duration, parse_window, shown, template_fields)
from bot.errors import ConfigError
from bot.secret import Secret, register


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
UTM_FIELDS = ("account", "platform", "feed")
MAX_LEAD = 5_000         # {lead:N}: no platform takes a post longer than this
MIN_TOKEN = 16           # characters of a ping or desk token: a guessable one is no lock
_MONEY = (Decimal(0), Decimal(10) ** 9)
_BUDGET_KEYS = {"posts", "amount", "price_per_post", "price_per_link_post"}

# Allowed ranges, inclusive. Outside them a value is a typo ("max_bytes: -5"),
# switches a safeguard off ("max_attempts: 0") or overflows later.
_SECONDS = {"connect_timeout": (0.1, 300.0), "read_timeout": (0.1, 600.0), "deadline": (1.0, 3600.0)}
_HTTP_COUNTS = {"max_bytes": (1_000, 1_000_000_000), "max_redirects": (0, 30)}


class _Sections(Checker):
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

    def fields(self, text: str, path: str, known: tuple[str, ...], word: str) -> list[tuple[str, str, str]]:
        """The known ``{name:spec!conversion}`` parts of ``text``; malformed braces
        and unknown names are reported."""
        try:
            parts = [(n, spec or "", conv or "") for _, n, spec, conv in string.Formatter().parse(text)
                     if n is not None]
        except ValueError as exc:
            self.err(path, f"malformed {'template' if word == 'field' else word} ({exc}); "
                           f"write literal braces as {{{{ and }}}}")
            return []
        for name, _, _ in parts:
            if name not in known:
                self.err(path, f"unknown {word} {{{shown(name)[1:-1]}}} (known: "
                               + ", ".join("{%s}" % f for f in known) + ")")
        return [part for part in parts if part[0] in known]

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
        known = sorted({item.name for item in items})
        for name in names:
            if name not in known:
                self.err(path, f"unknown {kind[:-1]} {shown(name)} (known: {show_list(known)})")



    # -------------------------------------------------------- the newsroom desk, push, workers

    def token(self, raw: dict, key: str, path: str) -> Secret | None:
        """A secret token (``${VAR}`` or literal): masked from then on, never shown."""
        if raw.get(key) is None:
            return None
        before = len(self.problems)
        value = self.expand(raw[key], f"{path}.{key}", True)
        if len(self.problems) > before:   # an unset variable, reported
            return None
        if not isinstance(value, str) or len(value) < MIN_TOKEN:
            self.err(f"{path}.{key}".lstrip("."), f'expected a string of at least {MIN_TOKEN} characters, '
                                                  f'like "${{{key.upper()}}}"')
            return None
        register(value)
        return Secret(value)

    def workers(self, raw: Any) -> WorkerSettings:
        if raw is None:
            return WorkerSettings()
        d = WorkerSettings()
        m = self.mapping(raw, "workers", {"heartbeat", "takeover_after"})
        beat = self.duration(m, "heartbeat", "workers", d.heartbeat, ("1s", "5m"))
        takeover = self.duration(m, "takeover_after", "workers", d.takeover_after, ("3s", "1h"))
        if takeover <= 2 * beat:   # one late beat must not look like a dead worker
            self.err("workers.takeover_after", f"expected more than twice workers.heartbeat "
                                               f"({beat.total_seconds():g}s)")
            return WorkerSettings(beat, 3 * beat)
        return WorkerSettings(beat, takeover)

    def public_url(self, top: dict) -> str | None:
        url = self.value(top, "public_url", "", str, None)
        if url is None:
            return None
        match = re.match(r"^(https|http)://(\[[^\]]+\]|[^/?#:\s@]+)(:\d{1,5})?(/[^?#\s]*)?$", url, re.I)
        # plain http only to this machine, where no one can read the hub's callbacks in transit
        if match is None or (match[1].lower() == "http" and not _loopback(match[2].strip("[]"))):
            self.err("public_url", f'expected an https URL without query, like "https://herald.example.org", '
                                   f"got {shown(url)}")
            return None
        return url.rstrip("/")

    def desk(self, raw: Any) -> DeskSettings:
        if raw is None:
            return DeskSettings()
        m = self.mapping(raw, "desk", {"token", "user", "password_hash"})
        user = self.value(m, "user", "desk", str, "editor")
        if not user or ":" in user or len(user) > 100 or not user.isprintable():
            self.err("desk.user", "expected a user name without \":\" (HTTP basic auth)")
            user = "editor"
        return DeskSettings(token=self.token(m, "token", "desk"), user=user,
                            password_hash=self.password_hash(m))

    def password_hash(self, m: dict) -> str | None:
        value = self.value(m, "password_hash", "desk", str, None)
        if value is None:
            return None
        register(value)   # not the password, but it helps a guesser: never shown
        if not _hash_form(value):
            self.err("desk.password_hash", 'expected "scrypt$<salt base64>$<hash base64>" or '
                                           '"pbkdf2_sha256$<iterations>$<salt>$<hash>"')
            return None
        return value

    def loopback_rule(self, listen: tuple[str, int] | None, desk: DeskSettings) -> None:
        if listen and not _loopback(listen[0]) and not (desk.token or desk.password_hash):
            self.err("http_listen", f"{shown(listen[0])} binds beyond loopback; "
                                    f"set desk.token or desk.password_hash")

    def filters(self, raw: Any, path: str) -> Filters | None:
        if raw is None:
            return None
        m = self.mapping(raw, path, {"include", "exclude", "categories", "exclude_categories",
                                     "match", "not_match"})
        lists = {key: self.keywords(m.get(key), f"{path}.{key}")
                 for key in ("include", "exclude", "categories", "exclude_categories")}
        patterns = {key: self.pattern(m, key, path) for key in ("match", "not_match")}
        return Filters(**lists, **patterns)

    def keywords(self, raw: Any, path: str) -> tuple[str, ...]:
        words = self.names(raw if raw is not None else [], path)
        for i, word in enumerate(words):
            if not word.strip() or len(word) > 200:
                self.err(f"{path}[{i}]", "expected a word or phrase of 1 to 200 characters")
        return tuple(w.strip() for w in words if w.strip() and len(w) <= 200)

    def pattern(self, m: dict, key: str, path: str) -> str | None:
        text = self.value(m, key, path, str, None)
        if text is None:
            return None
        problem = filters.pattern_problem(text)
        if problem:
            self.err(f"{path}.{key}", problem)
            return None
        return text

    def utm(self, raw: Any, path: str) -> Utm | None:
        if raw is None:
            return None
        m = self.mapping(raw, path, {"source", "medium", "campaign"})
        values = {key: self.value(m, key, path, str, None) for key in ("source", "medium", "campaign")}
        for key, text in values.items():
            if text is not None:
                self.placeholders(text, f"{path}.{key}")
        if isinstance(raw, dict) and not any(values.values()) and set(raw) <= set(values):
            self.err(path, "expected at least one of source, medium, campaign")
            return None
        return Utm(**values)

    def placeholders(self, text: str, path: str) -> None:
        if any(spec or conv for _, spec, conv in self.fields(text, path, UTM_FIELDS, "placeholder")):
            self.err(path, "a placeholder takes no format: {account}, {platform} or {feed}")
        if len(text) > 200:
            self.err(path, "expected at most 200 characters")

    def budget(self, raw: Any, path: str, platform: Any) -> Budget | None:
        if raw is None:
            return None
        if platform != "twitter":
            self.err(path, "only X accounts (platform: twitter) are billed per post; remove budget")
            return None
        m = self.mapping(raw, path, _BUDGET_KEYS)
        posts = self.value(m, "posts", path, int, None, (1, 10_000_000))
        amount, price, link = (self.money(m, key, path) for key in
                               ("amount", "price_per_post", "price_per_link_post"))
        if "posts" in m and "amount" in m:
            self.err(path, "expected posts or amount, not both")
        elif "posts" not in m and "amount" not in m and set(m) <= _BUDGET_KEYS:
            self.err(path, "expected posts (per month), or amount with price_per_post")
        elif "amount" in m and "price_per_post" not in m:
            self.err(f"{path}.price_per_post", "required key is missing (with amount)")
        return Budget(posts=posts, amount=amount, price_per_post=price,
                      price_per_link_post=link if link is not None else price)

    def money(self, m: dict, key: str, path: str) -> Decimal | None:
        if m.get(key) is None:
            return None
        raw = m[key]
        try:
            value = None if isinstance(raw, bool) else Decimal(str(raw).strip())
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or not _MONEY[0] < value <= _MONEY[1]:
            self.err(f"{path}.{key}", f"expected an amount above 0 like 0.01 or 100, got {shown(raw)}")
            return None
        return value


def _lead_cap(spec: str) -> bool:
    return spec.isascii() and spec.isdigit() and 1 <= int(spec) <= MAX_LEAD


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hash_form(value: str) -> bool:
    parts = value.split("$")
    if parts[0] == "scrypt" and len(parts) == 3:
        return all(_b64(p) for p in parts[1:])
    if parts[0] == "pbkdf2_sha256" and len(parts) == 4:
        return parts[1].isdigit() and 1_000 <= int(parts[1]) <= 10_000_000 and all(_b64(p) for p in parts[2:])
    return False


def _b64(text: str) -> bool:
    try:
        return bool(text) and bool(base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_"
                                                    if "-" in text or "_" in text else None, validate=True))
    except (binascii.Error, ValueError):
        return False
