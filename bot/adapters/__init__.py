"""Platform adapters and the registry that maps a config's ``platform:`` to one."""
from __future__ import annotations

from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.adapters.facebook import FacebookAdapter
from bot.adapters.twitter import TwitterAdapter

REGISTRY: dict[str, type[Adapter]] = {
    ConsoleAdapter.platform: ConsoleAdapter,
    TwitterAdapter.platform: TwitterAdapter,
    FacebookAdapter.platform: FacebookAdapter,
}
