"""The registry that maps a config's ``platform:`` to its adapter class.

Each platform is one line: its name and "module:Class". The module is imported
only when that platform is asked for, so a config naming only X never imports
facebook-sdk, Mastodon.py or atproto, and ``bot.compose`` imports none of them.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.adapters.base import Adapter

PLATFORMS: dict[str, str] = {
    "console": "bot.adapters.console:ConsoleAdapter",
    "twitter": "bot.adapters.twitter:TwitterAdapter",
    "facebook": "bot.adapters.facebook:FacebookAdapter",
    "mastodon": "bot.adapters.mastodon:MastodonAdapter",
    "bluesky": "bot.adapters.bluesky:BlueskyAdapter",
}


class UnavailablePlatform(LookupError):
    """A known platform whose adapter cannot be imported (module or library missing)."""


def platforms() -> list[str]:
    """The platform names a config may give, sorted."""
    return sorted(PLATFORMS)


def adapter_class(platform: str) -> type[Adapter]:
    """The adapter class for ``platform``, imported now.

    Raises KeyError for a name the registry does not know, UnavailablePlatform
    (saying what is missing) when its module or its library cannot be imported."""
    module_name, _, class_name = PLATFORMS[platform].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or module_name
        raise UnavailablePlatform(
            f"platform {platform!r} is not available in this install "
            f"(cannot import {missing}; `pip install -r requirements.txt`?)") from None
    return getattr(module, class_name)


class _Registry(Mapping):
    """``REGISTRY[name]`` for older callers: read-only, imports on access."""

    def __getitem__(self, platform: str) -> type[Adapter]:
        return adapter_class(platform)

    def __iter__(self) -> Iterator[str]:
        return iter(platforms())

    def __len__(self) -> int:
        return len(PLATFORMS)


REGISTRY: Mapping[str, type[Adapter]] = _Registry()
