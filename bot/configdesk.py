"""The config sections of the newsroom desk, push and several workers:
``desk:`` and the loopback rule, ``workers:``, ``public_url:``, the ping
tokens, route filters, ``utm:`` and an X account's ``budget:``. A mixin of
checks over ``Checker``; ``bot.config`` builds the sections with them.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import string
from decimal import Decimal, InvalidOperation
from typing import Any

from bot import filters
from bot.configcheck import Checker
from bot.configtypes import Budget, DeskSettings, Filters, Utm, WorkerSettings, shown
from bot.secret import Secret, register

UTM_FIELDS = ("account", "platform", "feed")
MIN_TOKEN = 16           # characters of a ping or desk token: a guessable one is no lock
_MONEY = (Decimal(0), Decimal(10) ** 9)
_BUDGET_KEYS = {"posts", "amount", "price_per_post", "price_per_link_post"}


class DeskChecks(Checker):
    """Checks for the desk's, push's and the workers' settings (see the module)."""

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
            if not filters.fold(word).split() or len(word) > 200:   # a lone accent folds to nothing
                self.err(f"{path}[{i}]", "expected a word or phrase of 1 to 200 characters")
        return tuple(w.strip() for w in words if filters.fold(w).split() and len(w) <= 200)

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
        # twelve decimals at most: a price like 1e-99999 would only overflow a sum later
        if value is None or not value.is_finite() or not _MONEY[0] < value <= _MONEY[1] \
                or value.as_tuple().exponent < -12:
            self.err(f"{path}.{key}", f"expected an amount above 0 like 0.01 or 100 "
                                      f"(12 decimals at most), got {shown(raw)}")
            return None
        return value


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
