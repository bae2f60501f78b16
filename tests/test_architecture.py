"""The import graph follows the data flow (STYLE.md, habit 1)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
# Each module may import only the modules listed (within bot/); the flow is
# config → feeds → articles → store → compose → publish, the scheduler drives
# and cli wires. Value types, errors and secrets are shared by all.
SHARED = {"bot.errors", "bot.models", "bot.secret"}
ALLOWED = {
    "bot.errors": set(), "bot.models": set(), "bot.secret": set(),
    "bot.config": {"bot.configcheck", "bot.configoptions", "bot.configtypes", "bot.configyaml"},
    "bot.configcheck": {"bot.configtypes"},
    "bot.configoptions": {"bot.adapters", "bot.configcheck", "bot.configtypes"},
    "bot.configtypes": set(),
    "bot.configyaml": set(),
    "bot.http": {"bot.config"},
    "bot.feedtext": set(),
    "bot.jsonfeed": {"bot.feedtext"},
    "bot.fastfeed": {"bot.feedtext"},
    "bot.feeds": {"bot.config", "bot.fastfeed", "bot.feedtext", "bot.http", "bot.jsonfeed"},
    "bot.furniture": set(),
    "bot.articles": {"bot.furniture"},
    "bot.dbguard": set(),
    "bot.store": {"bot.dbguard", "bot.feedtext"},
    "bot.twittertext": set(),
    "bot.compose": {"bot.configtypes", "bot.twittertext"},
    "bot.schedule": {"bot.configtypes"},
    "bot.poll": {"bot.articles", "bot.config", "bot.feeds", "bot.http", "bot.store"},
    "bot.publish": {"bot.adapters", "bot.compose", "bot.config", "bot.schedule", "bot.store"},
    "bot.service": {"bot.config", "bot.configtypes", "bot.sdnotify"},
    "bot.lock": set(),
    "bot.sdnotify": set(),
    "bot.logs": set(),
    "bot.listener": set(),
    "bot.metrics": set(),
    "bot.report": {"bot.articles", "bot.compose", "bot.config", "bot.feeds", "bot.http",
                   "bot.publish", "bot.store"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot"):
            found.add(node.module if node.module != "bot" else f"bot.{node.names[0].name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bot"))
    return {".".join(m.split(".")[:2]) for m in found}


def module_name(path: Path) -> str:
    return "bot." + path.relative_to(BOT).with_suffix("").as_posix().replace("/", ".")


@pytest.mark.parametrize("path", sorted(p for p in BOT.glob("*.py") if p.stem not in ("__init__", "cli")),
                         ids=lambda p: p.stem)
def test_module_imports_only_upstream(path):
    name = module_name(path)
    assert name in ALLOWED, f"{name} is new: add it to ALLOWED with the modules it may use"
    extra = imports(path) - ALLOWED[name] - SHARED - {name}
    assert not extra, f"{name} must not import {sorted(extra)}"


@pytest.mark.parametrize("path", sorted((BOT / "adapters").glob("*.py")), ids=lambda p: p.stem)
def test_adapters_know_nothing_of_yaml_store_feeds_or_compose(path):
    assert imports(path) <= SHARED | {"bot.adapters"}


def test_nothing_imports_cli():
    users = [p.name for p in BOT.rglob("*.py") if p.stem != "cli" and "bot.cli" in imports(p)]
    assert users == []


PLATFORM_LIBRARIES = ("tweepy", "facebook", "mastodon", "atproto")


def loaded_after(code: str) -> set[str]:
    """The platform libraries a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys; print(' '.join(m for m in {PLATFORM_LIBRARIES!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=BOT.parent, capture_output=True,
                          text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_compose_and_schedule_import_no_platform_library():
    assert loaded_after("import bot.compose, bot.schedule, bot.configtypes") == set()


def test_config_imports_only_the_adapters_a_config_names(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("feeds: []\nroutes: []\naccounts:\n  - {name: a, platform: console}\n")
    assert loaded_after(f"import bot.config; bot.config.load({str(path)!r}, env={{}})") == set()
    named = path.read_text().replace("platform: console", "platform: facebook, page_id: '1', "
                                     "credentials: {page_access_token: t}")
    path.write_text(named)
    assert loaded_after(f"import bot.config; bot.config.load({str(path)!r}, env={{}})") == {"facebook"}
