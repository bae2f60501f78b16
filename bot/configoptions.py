"""An account's platform part: which adapter, and its options and credentials
checked against the ``Option`` schemas the adapter declares.

Nothing here knows a platform: any adapter's options are checked the same way
(type, required, choices, bounds, http(s) URLs for keys ending in ``_url``),
and secret values are wrapped in ``Secret`` and registered for masking. An
account gives its options at its top level (the older form) or under
``options:``, not both for one key.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.adapters import UnavailablePlatform, adapter_class, platforms
from bot.adapters.base import NO_DEFAULT, Adapter, Option
from bot.configcheck import Checker, as_kind, expected, is_kind
from bot.configtypes import shown
from bot.secret import Secret, register, register_url

_HTTP_URL = re.compile(r"^https?://[^/?#\s]+", re.I)


def adapter_for(checker: Checker, given: Mapping, path: str) -> type[Adapter] | None:
    """The adapter class ``given["platform"]`` names; None (a problem noted) otherwise."""
    if "platform" not in given:
        return None   # the mapping check reports the missing key
    platform = given["platform"]
    try:
        return adapter_class(platform) if isinstance(platform, str) else adapter_class("")
    except KeyError:
        checker.err(f"{path}.platform", f"unknown platform {shown(platform)} "
                                        f"(known: {', '.join(platforms())})")
    except UnavailablePlatform as exc:
        checker.err(f"{path}.platform", str(exc))
    return None


def option_keys(adapter: type[Adapter]) -> set[str]:
    """The keys an account of ``adapter`` may give at its top level."""
    return set(adapter.option_schema())


def options(checker: Checker, m: Mapping, path: str, adapter: type[Adapter]) -> dict[str, Any]:
    """The adapter's options from the account mapping ``m`` (and its ``options:``)."""
    schema = adapter.option_schema()
    nested = checker.mapping(m.get("options", {}), f"{path}.options", set(schema))
    for key in sorted(set(nested) & set(m)):
        checker.err(f"{path}.options.{key}", f"also given as {path}.{key}; keep one")
    out = {}
    for key, opt in schema.items():
        where = f"{path}.options" if key in nested else path
        value = option(checker, {**m, **nested}, key, where, opt)
        if value is not NO_DEFAULT:
            out[key] = value
    return out


def option(checker: Checker, raw: Mapping, key: str, path: str, opt: Option) -> Any:
    """``raw[key]`` checked against ``opt``; its default (maybe NO_DEFAULT) when absent or wrong."""
    where = f"{path}.{key}"
    if raw.get(key) is None:
        if opt.required:
            checker.err(where, "required key is missing")
        return opt.default
    value = as_kind(checker.expand(raw[key], where, opt.secret or key.endswith("_url")), opt.kind)
    if _takes_numbers(opt) and is_kind(value, int):
        value = str(value)    # YAML reads an unquoted id as a number
    problem = _problem(key, value, opt)
    if problem:
        checker.err(where, problem)
        return opt.default
    if key.endswith("_url"):
        register_url(value)
    if opt.secret:
        register(value)
        return Secret(value)
    return value


def _problem(key: str, value: Any, opt: Option) -> str | None:
    bounds = opt.bounds
    got = "" if opt.secret else f", got {shown(value)}"   # a secret is never shown
    if not is_kind(value, opt.kind) or (bounds and not bounds[0] <= value <= bounds[1]):
        takes = (str, int) if _takes_numbers(opt) else opt.kind
        return f"expected {expected(takes, bounds)}{got}"
    if opt.choices and value not in opt.choices:
        return f"expected one of {', '.join(map(str, opt.choices))}{got}"
    if key.endswith("_url") and not _HTTP_URL.match(value):
        return 'expected an http(s) URL like "https://api.example.org"'
    return None


def _takes_numbers(opt: Option) -> bool:
    """A string option without a default is an id or a name (``page_id``): a
    number written without quotes is meant as its digits."""
    return opt.kind is str and opt.default is NO_DEFAULT


def credentials(checker: Checker, raw: Any, path: str,
                adapter: type[Adapter] | None) -> dict[str, Secret]:
    """The ``credentials:`` mapping against the adapter's credential schema."""
    if adapter is None:
        return {}   # the platform's problem is reported; its credentials cannot be checked
    schema = adapter.credential_schema()
    if not schema and raw is None:
        return {}
    m = checker.mapping(raw, path, set(schema), {k for k, o in schema.items() if o.required})
    out = {}
    for key in sorted(set(schema) & set(m)):
        value = checker.expand(m[key], f"{path}.{key}", True)
        if not isinstance(value, str):
            checker.err(f"{path}.{key}", f'expected a string like "${{{key.upper()}}}"')
        elif value:
            out[key] = Secret(value)
    return out
