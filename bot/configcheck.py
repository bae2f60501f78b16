"""The checks every config section is built from: a mapping's keys, a value's
type and range, ``${VAR}`` expansion, URLs (their secrets registered for
masking), durations and file paths. ``Checker`` collects one problem line per
mistake, each prefixed by its key path; the sections (``bot.config``) and the
adapter options (``bot.configoptions``) are built on it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.configtypes import duration_seconds, kind_of, shown
from bot.secret import register, register_url

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Checker:
    """Walks raw YAML values, collecting one problem line per mistake.

    Each method checks one value and returns it (or a default), never raising:
    the whole file is checked at once and ``problems`` lists every mistake."""

    def __init__(self, environ: Mapping[str, str | None], base: Path, file: str = "config"):
        self.environ = environ
        self.base = base
        self.file = file
        self.problems: list[str] = []

    def err(self, path: str, message: str) -> None:
        # a problem with the whole document is the file's, not a key's
        self.problems.append(f"{path or self.file}: {message}")

    def mapping(self, raw: Any, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        """Check ``raw`` is a mapping with only ``allowed`` keys and all ``required`` ones."""
        if not isinstance(raw, dict):
            self.err(path, f"expected a mapping, got {kind_of(raw)}")
            return {}
        for key in raw:
            if key not in allowed:
                self.err(join(path, key), f"unknown key (known: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(raw)):
            self.err(join(path, key), "required key is missing")
        return raw

    def value(self, raw: dict, key: str, path: str, kind: type | tuple, default: Any,
              bounds: tuple[float, float] | None = None) -> Any:
        """``raw[key]`` checked against ``kind`` (and ``bounds``), or ``default`` when absent."""
        if key not in raw or (raw[key] is None and default is None):
            return default
        value = as_kind(self.expand(raw[key], f"{path}.{key}"), kind)
        if is_kind(value, kind) and (bounds is None or bounds[0] <= value <= bounds[1]):
            return value   # NaN fails both comparisons, as it should
        self.err(f"{path}.{key}".lstrip("."), f"expected {expected(kind, bounds)}, got {shown(value)}")
        return default

    def expand(self, value: Any, path: str, secret: bool = False) -> Any:
        """Replace ``${VAR}`` in strings; an unset variable is a problem naming it.
        With ``secret`` (a URL) each value put in is masked from then on."""
        if not isinstance(value, str):
            return value

        def sub(match: re.Match) -> str:
            found = self.environ.get(match[1])
            if found is None:
                self.err(path.lstrip("."), f"environment variable {match[1]} is not set "
                                           f"(export it or put it in .env beside the config)")
                return ""
            if secret:
                register(found)
            return found
        return _VAR.sub(sub, value)

    def url(self, raw: dict, key: str, path: str, default: str) -> str:
        """A URL whose ``${VAR}`` values, password and query values are secrets:
        urllib3 logs the path and query of every request at DEBUG."""
        value = self.value({**raw, key: self.expand(raw[key], f"{path}.{key}", True)}
                           if key in raw else raw, key, path, str, default)
        register_url(value)
        return value

    def duration(self, raw: dict, key: str, path: str, default: timedelta | None,
                 bounds: tuple[str, str] = ("0s", "3650d")) -> timedelta | None:
        if key not in raw or raw[key] is None:
            return default
        where, seconds = f"{path}.{key}".lstrip("."), duration_seconds(raw[key])
        if seconds is None:
            self.err(where, f'expected a duration like "10m", "1h30m" or "2d", got {shown(raw[key])}')
            return default
        if not duration_seconds(bounds[0]) <= seconds <= duration_seconds(bounds[1]):
            self.err(where, f"expected a duration from {bounds[0]} to {bounds[1]}, got {shown(raw[key])}")
            return default
        return timedelta(seconds=seconds)

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
            self.err(path, f"expected a list, got {kind_of(raw)}")
            return []
        return raw

    def local_path(self, text: str, path: str) -> str:
        """``text`` resolved against the config's folder, not the cwd, so a
        service and a shell see the same file."""
        try:
            return str((self.base / text).resolve())
        except (OSError, ValueError) as exc:   # a NUL byte, a name too long
            self.err(path, f"not a usable file path ({exc})")
            return text


def join(path: str, key: Any) -> str:
    """``path.key``; a key that is not a plain word is quoted, so a problem
    stays one readable line whatever the key holds (a newline, 10 kB)."""
    plain = isinstance(key, str) and re.fullmatch(r"[\w-]{1,60}", key)
    text = key if plain else shown(key)
    return f"{path}.{text}" if path else text


def as_kind(value: Any, kind: type | tuple) -> Any:
    """An int where a float is wanted becomes one (an int too big for a float: inf)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value) if abs(value) < 10 ** 300 else math.inf
    return value


def is_kind(value: Any, kind: type | tuple) -> bool:
    """isinstance, except that true/false is not a number (YAML reads ``yes`` as true)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


_NOUNS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


def expected(kind: type | tuple, bounds: tuple[float, float] | None) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    noun = " or ".join(_NOUNS.get(k, k.__name__) for k in kinds)
    return f"{noun} from {_number(bounds[0])} to {_number(bounds[1])}" if bounds else noun


def _number(value: float) -> str:
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)   # YAML reads 10_000 too
    return f"{value:g}"


def show_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 20 else ", ".join(names[:20]) + f" and {len(names) - 20} more"
