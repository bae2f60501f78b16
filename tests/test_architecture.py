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
    "bot.config": {"bot.configcheck", "bot.configdesk", "bot.configoptions", "bot.configtypes",
                   "bot.configyaml", "bot.filters"},
    "bot.configdesk": {"bot.configcheck", "bot.configtypes", "bot.filters"},
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
    "bot.schema": {"bot.feedtext"},
    "bot.retention": {"bot.schema"},
    "bot.store": {"bot.dbguard", "bot.retention", "bot.schema"},
    "bot.twittertext": set(),
    "bot.compose": {"bot.configtypes", "bot.twittertext"},
    "bot.schedule": {"bot.budget", "bot.configtypes"},
    "bot.poll": {"bot.articles", "bot.config", "bot.feeds", "bot.http", "bot.store"},
    "bot.leases": {"bot.store"},
    "bot.filters": {"bot.configtypes"},
    "bot.budget": {"bot.configtypes"},
    "bot.desk": {"bot.configtypes", "bot.deskhtml", "bot.listener"},
    "bot.deskhtml": set(),
    "bot.deskdata": {"bot.compose", "bot.publish", "bot.report", "bot.store"},
    "bot.push": {"bot.configtypes", "bot.listener", "bot.websub"},
    "bot.websub": {"bot.configtypes", "bot.listener"},
    "bot.publish": {"bot.adapters", "bot.budget", "bot.compose", "bot.config", "bot.schedule",
                    "bot.store"},
    "bot.service": {"bot.config", "bot.configtypes", "bot.sdnotify"},
    "bot.lock": set(),
    "bot.sdnotify": set(),
    "bot.logs": set(),
    "bot.listener": set(),
    "bot.metrics": set(),
    "bot.report": {"bot.articles", "bot.compose", "bot.config", "bot.feeds", "bot.http",
                   "bot.leases", "bot.publish", "bot.schedule", "bot.store"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot"):
            found.update([node.module] if node.module != "bot" else
                         [f"bot.{alias.name}" for alias in node.names])
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


# --- adding a platform: its module, its registry line, its fake, its docs; nothing else

ROOT = BOT.parent
# Platforms whose README / config/example.yaml block is still being written (issue 13);
# remove a name when its docs land.
DOCUMENTED_LATER: set[str] = set()


def registry() -> dict[str, str]:
    from bot.adapters import PLATFORMS
    return dict(PLATFORMS)


@pytest.mark.parametrize("name", sorted(registry()))
def test_a_platform_is_one_adapter_module_named_for_it(name):
    module, _, cls = registry()[name].partition(":")
    assert module == f"bot.adapters.{name}", "the registry line names bot/adapters/<platform>.py"
    path = BOT / "adapters" / f"{name}.py"
    if path.exists():
        tree = ast.parse(path.read_text())
        classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        assert cls in classes and f'"{name}"' in path.read_text()


@pytest.mark.parametrize("name", sorted(set(registry()) - {"console"}))
def test_a_network_platform_has_its_own_fake_in_the_contract_suite(name):
    from fakes import platforms
    fake = platforms().get(name)
    assert fake is not None, f"tests/fakes/<{name}>_api.py declares FAKE = FakePlatform({name!r}, ...)"
    assert fake.contract is not None and fake.account is not None


@pytest.mark.parametrize("name", sorted(set(registry()) - DOCUMENTED_LATER))
def test_a_platform_is_documented(name):
    docs = (ROOT / "README.md").read_text() + (ROOT / "config" / "example.yaml").read_text()
    assert f"platform: {name}" in docs or f"`{name}`" in docs


def test_no_shared_module_names_a_platform():
    """The joins stay platform-free: config, compose, publish, the registry aside."""
    names = set(registry()) - {"console"}
    libraries = set(PLATFORM_LIBRARIES)
    for path in sorted(BOT.glob("*.py")):
        found = {m.split(".")[0] for m in _all_imports(path)} & libraries
        assert not found, f"{path.name} imports {sorted(found)}: only its adapter may"
    core = (ROOT / "tests" / "fakes" / "server.py").read_text()
    assert not [n for n in names if f'"{n}"' in core], "the fake server's core names no platform"


def test_an_adapter_imports_no_other_platform_s_module():
    for name in sorted(set(registry()) - {"console"}):
        path = BOT / "adapters" / f"{name}.py"
        if not path.exists():
            continue
        others = {f"bot.adapters.{n}" for n in registry() if n != name}
        assert not (_all_imports(path) & others), name


def _all_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found
