"""Platform adapters and the registry that maps a config's ``platform:`` to one."""
from __future__ import annotations

from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter

REGISTRY: dict[str, type[Adapter]] = {
    ConsoleAdapter.platform: ConsoleAdapter,
}
