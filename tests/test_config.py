"""Config validation: the good files load, each kind of mistake is one clear line."""
from __future__ import annotations

import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.config import load, parse_duration, parse_window
from bot.errors import ConfigError
from bot.secret import Secret

ROOT = Path(__file__).resolve().parents[1]
ENV = {"X_CONSUMER_KEY": "ck-123456", "X_CONSUMER_SECRET": "cs-123456",
       "X_ACCESS_TOKEN": "at-123456", "X_ACCESS_TOKEN_SECRET": "ats-123456",
       "FB_PAGE_TOKEN": "fbtok-123456", "MASTODON_ACCESS_TOKEN": "mtok-123456",
       "BLUESKY_APP_PASSWORD": "bsky-app-pass"}

GOOD = """
version: 1
feeds:
  - {name: world, url: https://example.org/rss.xml, every: 10m}
accounts:
  - name: x
    platform: console
routes:
  - {feeds: [world], accounts: [x]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "herald.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str, env=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env or {})
    return info.value.problems


def test_example_config_documents_every_key_and_loads():
    config = load(ROOT / "config" / "example.yaml", ENV)
    by_platform = {a.platform: a for a in config.accounts}   # a block per platform
    x, fb = by_platform["twitter"], by_platform["facebook"]
    assert x.credentials["access_token"] == Secret("at-123456")
    assert "at-123456" not in repr(config)
    assert x.schedule.max_per_day == 17 and x.schedule.min_gap == timedelta(minutes=10)
    assert fb.options["page_id"] == "1234567890"
    assert config.feeds[0].max_age == timedelta(days=2)


def test_demo_config_loads_with_paths_relative_to_it():
    config = load(ROOT / "config" / "demo.yaml", {})
    assert config.feeds[0].url == str(ROOT / "config" / "demo" / "feed.xml")
    assert config.database == f"sqlite:///{ROOT / 'data' / 'demo.db'}"


def test_minimal_config_gets_defaults(tmp_path):
    config = load(write(tmp_path, GOOD), {})
    assert config.timezone == "UTC"
    assert config.feeds[0].every == timedelta(minutes=10) and config.feeds[0].backfill == 0
    assert config.accounts[0].schedule is None
    assert config.database.endswith(str(tmp_path / "data" / "herald.db"))


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    (line,) = problems(tmp_path, "version: 1\nfeeds: [a\naccounts: {}\n")
    assert line.startswith(f"{tmp_path / 'herald.yaml'}, line 3, column 9: YAML syntax error: ")


@pytest.mark.parametrize("change, expected", [
    (("every: 10m", "every: ten"), 'feeds[0].every: expected a duration like "10m"'),
    (("every: 10m", "every: 10m, colour: red"), "feeds[0].colour: unknown key"),
    (("platform: console", "platform: myspace"), "accounts[0].platform: unknown platform 'myspace' (known: "),
    (("accounts: [x]", "accounts: [y]"), "routes[0].accounts: unknown account 'y' (known: x)"),
    (("feeds: [world]", "feeds: [wrld]"), "routes[0].feeds: unknown feed 'wrld' (known: world)"),
    (("version: 1", "version: 3"), "version: unsupported version 3"),
    (("every: 10m}", "every: 10m, backfill: many}"), "feeds[0].backfill: expected a whole number from 0 to 1000, got 'many'"),
    (("platform: console", "platform: console\n    template: '{title} {body}'"),
     "accounts[0].template: unknown field {body}"),
    (("platform: console", "platform: console\n    schedule: {min_gap: 5}"),
     'accounts[0].schedule.min_gap: expected a duration like "10m"'),
    (("platform: console", "platform: console\n    schedule: {windows: ['weekdays 7-22']}"),
     "accounts[0].schedule.windows[0]: expected a window like"),
    (("version: 1", "version: 1\ntimezone: Mars/Olympus"), "timezone: unknown time zone 'Mars/Olympus'"),
])
def test_each_mistake_is_one_line_with_its_key_path(tmp_path, change, expected):
    found = problems(tmp_path, GOOD.replace(*change))
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_unknown_platform_lists_the_known_ones(tmp_path):
    (line,) = problems(tmp_path, GOOD.replace("platform: console", "platform: myspace"))
    assert "console" in line and "twitter" in line and "facebook" in line


def test_all_problems_are_reported_at_once(tmp_path):
    bad = GOOD.replace("every: 10m", "every: soon").replace("accounts: [x]", "accounts: [nobody]")
    assert len(problems(tmp_path, bad)) == 2


def test_unset_environment_variable_is_named(tmp_path):
    text = GOOD.replace("platform: console", "platform: facebook\n    page_id: '1'\n"
                        "    credentials: {page_access_token: '${FB_TOKEN}'}")
    (line,) = problems(tmp_path, text)
    assert line.startswith("accounts[0].credentials.page_access_token: environment variable FB_TOKEN is not set")


def test_dotenv_beside_the_config_is_read(tmp_path):
    (tmp_path / ".env").write_text("FB_TOKEN=from-dotenv-file\n")
    text = GOOD.replace("platform: console", "platform: facebook\n    page_id: '1'\n"
                        "    credentials: {page_access_token: '${FB_TOKEN}'}")
    config = load(write(tmp_path, text), {})
    assert config.accounts[0].credentials["page_access_token"].reveal() == "from-dotenv-file"


def test_missing_required_adapter_option(tmp_path):
    text = GOOD.replace("platform: console", "platform: facebook\n"
                        "    credentials: {page_access_token: abc}")
    assert problems(tmp_path, text) == ["accounts[0].page_id: required key is missing"]


def test_duplicate_names(tmp_path):
    text = GOOD.replace("accounts:\n", "accounts:\n  - {name: x, platform: console}\n")
    assert problems(tmp_path, text) == ["accounts[1].name: duplicate name 'x'"]


def test_literal_braces_in_template_are_allowed(tmp_path):
    config = load(write(tmp_path, GOOD.replace("platform: console",
                  "platform: console\n    template: '{{live}} {title} {url}'")), {})
    assert config.accounts[0].template == "{{live}} {title} {url}"


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800)])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["10", "ten minutes", "", "5 weeks", 5])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_windows():
    w = parse_window("mon-fri 07:00-22:00")
    assert w.days == frozenset(range(5)) and w.start == time(7) and w.end == time(22)
    assert parse_window("sat,sun 09:00-20:00").days == frozenset({5, 6})
    assert parse_window("fri-mon 22:00-02:00").days == frozenset({4, 5, 6, 0})
    assert parse_window("daily 00:00-24:00").end == time(0)
    for bad in ["mon-fri", "weekdays 07:00-22:00", "mon 7-22", "mon 25:00-26:00"]:
        with pytest.raises(ValueError, match="expected a window"):
            parse_window(bad)
