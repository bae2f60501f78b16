"""Hostile config files (issue 15): bounded YAML, readable positions, ranges.

Each bad file is one ConfigError line that starts with the file and position
(``herald.yaml, line 3, column 5:``) or the key path, quickly."""
from __future__ import annotations

import time

import pytest

from bot import configyaml
from bot.config import load
from bot.errors import ConfigError
from test_config import GOOD, problems, write


def yaml_problem(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "herald.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load(path, {})
    # The largest document allowed (MAX_NODES values) takes seconds to read;
    # what the bounds stop (an alias bomb, a huge file) would take hours.
    assert time.perf_counter() - started < 10
    (line,) = info.value.problems
    return line.replace(str(path), "FILE")


def bomb(levels: int, width: int = 9) -> str:
    """The billion laughs: each anchor is a list of ``width`` aliases of the one before."""
    lines = ["a0: &a0 [mon 07:00-22:00]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines)


@pytest.mark.parametrize("text, expected", [
    ("version: 1\nfeeds: [a\naccounts: {}\n", "FILE, line 3, column 9: YAML syntax error: "),
    ("feeds: " + "[" * 5000 + "]" * 5000, "FILE, line 1, column 39: nested deeper than 32 levels"),
    ("feeds: &a [*a]\n", "FILE, line 1, column 12: an alias refers to a value that contains it"),
    ("feeds: []\nfeeds: []\n", "FILE, line 2, column 1: duplicate key 'feeds'"),
    ("? [a, b]\n: 1\n", "FILE, line 1, column 3: a key must be a plain word or number"),
    ("feeds: !!python/object:os.system x\n", "FILE, line 1, column 8: unknown YAML tag"),
    ("feeds: []\naccounts: \x00\n", "FILE, line 2, column 11: the character U+0000 is not allowed"),
    ("feeds: é\x07\n", "FILE, line 1, column 9: the character U+0007 is not allowed"),
    (b"feeds: \xff\xfe\n", "FILE, line 1, column 8: not UTF-8 text (byte 0xff)"),
    ("feeds: [" + "1, " * 510_000 + "]", "FILE, line 1, column 1500006: more than 500000 values"),
    ("x: '" + "a" * 16_000_000 + "'", "FILE: the file is over 16 MB"),
    ("", "FILE: expected a mapping of settings (feeds, accounts, routes, ...), got nothing"),
    ("- feeds\n", "FILE: expected a mapping of settings (feeds, accounts, routes, ...), got a list"),
])
def test_each_bad_file_is_one_line_naming_file_line_and_column(tmp_path, text, expected):
    assert yaml_problem(tmp_path, text).startswith(expected)


def test_an_alias_bomb_is_refused_before_it_is_built(tmp_path):
    text = GOOD.replace("platform: console", "platform: console\n    schedule: {windows: *a9}")
    line = yaml_problem(tmp_path, bomb(10) + "\n" + text)
    assert line.startswith("FILE, line 7, column 5: ") and "more than 500000 values (aliases expanded)" in line


def test_aliases_within_bounds_are_fine(tmp_path):
    text = GOOD.replace("platform: console", "platform: console\n    schedule: &plan {windows: [daily 07:00-22:00]}")
    text = text.replace("routes:\n", "  - {name: y, platform: console, schedule: *plan}\nroutes:\n")
    first, second = load(write(tmp_path, text), {}).accounts
    assert first.schedule == second.schedule and len(first.schedule.windows) == 1


def test_a_file_that_cannot_be_read_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        configyaml.read(tmp_path / "missing.yaml")


@pytest.mark.parametrize("where, key, bad, expected", [
    ("top", "publish_every", "0s", "publish_every: expected a duration from 1s to 1h, got '0s'"),
    ("http", "connect_timeout", "-1", "http.connect_timeout: expected a number from 0.1 to 300, got -1.0"),
    ("http", "read_timeout", ".nan", "http.read_timeout: expected a number from 0.1 to 600, got nan"),
    ("http", "deadline", ".inf", "http.deadline: expected a number from 1 to 3600, got inf"),
    ("http", "max_bytes", "-5", "http.max_bytes: expected a whole number from 1000 to 1_000_000_000"),
    ("http", "max_redirects", "yes", "http.max_redirects: expected a whole number from 0 to 30, got true"),
    ("feed", "every", "1s", "feeds[0].every: expected a duration from 5s to 7d, got '1s'"),
    ("feed", "backfill", "10000000", "feeds[0].backfill: expected a whole number from 0 to 1000"),
    ("feed", "max_age", "999999999999d", "feeds[0].max_age: expected a duration from 1m to 3650d"),
    ("account", "max_attempts", "0", "accounts[0].max_attempts: expected a whole number from 1 to 100, got 0"),
    ("account", "max_hashtags", "-3", "accounts[0].max_hashtags: expected a whole number from 0 to 30, got -3"),
    ("account", "max_hashtags", "1.5", "accounts[0].max_hashtags: expected a whole number from 0 to 30, got 1.5"),
    ("account", "retry_backoff", "0s", "accounts[0].retry_backoff: expected a duration from 1s to 1d"),
    ("account", "stream", "[a]", "accounts[0].stream: expected a string, got a list"),
    ("schedule", "jitter", "1000000000000s", "accounts[0].schedule.jitter: expected a duration from 0s to 1d"),
    ("schedule", "min_gap", "9" * 30 + "d", "accounts[0].schedule.min_gap: expected a duration from 0s to 7d"),
    ("schedule", "expire_after", "0s", "accounts[0].schedule.expire_after: expected a duration from 1m to 365d"),
    ("schedule", "max_per_hour", "0", "accounts[0].schedule.max_per_hour: expected a whole number from 1 to 3600"),
    ("schedule", "max_per_day", "true", "accounts[0].schedule.max_per_day: expected a whole number from 1 to"),
    ("route", "priority", str(10 ** 400), "routes[0].priority: expected a whole number from -1000 to 1000"),
])
def test_every_number_and_duration_is_range_checked(tmp_path, where, key, bad, expected):
    found = problems(tmp_path, with_setting(where, key, bad))
    assert len(found) == 1 and found[0].startswith(expected), found


def with_setting(where: str, key: str, value: str) -> str:
    """GOOD with ``key: value`` added at one place."""
    anchors = {"top": ("version: 1", f"version: 1\n{key}: {value}"),
               "http": ("version: 1", f"version: 1\nhttp: {{{key}: {value}}}"),
               "feed": ("every: 10m", f"{key}: {value}"),
               "account": ("platform: console", f"platform: console\n    {key}: {value}"),
               "schedule": ("platform: console", f"platform: console\n    schedule: {{{key}: {value}}}"),
               "route": ("accounts: [x]", f"accounts: [x], {key}: {value}")}
    return GOOD.replace(*anchors[where])


def test_adapter_timeouts_and_required_options_are_checked(tmp_path):
    text = GOOD.replace("platform: console", "platform: facebook\n    page_id: yes\n"
                        "    connect_timeout: 0\n    credentials: {page_access_token: abcdef}")
    assert problems(tmp_path, text) == [
        "accounts[0].page_id: expected a string or a whole number, got true "
        "(YAML reads yes/no and on/off as true/false)",
        "accounts[0].connect_timeout: expected a number from 0.1 to 600, got 0.0"]


@pytest.mark.parametrize("change, expected", [
    (("platform: console", "platform: [a]"), "accounts[0].platform: unknown platform a list (known: "),
    (("platform: console", "platform: {a: 1}"), "accounts[0].platform: unknown platform a mapping"),
    (("  - name: x\n    platform: console", "  - 5"), "accounts[0]: expected a mapping, got a number"),
    (("version: 1", "version: true"), "version: unsupported version true"),
    (("version: 1", '"bad\\nkey": 1'), "'bad\\nkey': unknown key (known: "),
    (("version: 1", 'database: "sqlite:///a\\0b"'), "database: not a usable file path"),
    (("url: https://example.org/rss.xml", 'url: "a\\0b"'), "feeds[0].url: not a usable file path"),
    (("version: 1", "timezone: '" + "x" * 300 + "'"), "timezone: unknown time zone 'xxxxx"),
    (("platform: console", 'platform: console\n    template: "{ti\\ntle}"'),
     "accounts[0].template: unknown field {ti\\ntle}"),
    (("platform: console", "platform: console\n    schedule: {windows: [[[[]]]]}"),
     "accounts[0].schedule.windows[0]: expected a window like"),
    (("platform: console", "platform: console\n    schedule: {windows: ['" + " 1" * 5000 + "']}"),
     "accounts[0].schedule.windows[0]: expected a window like"),
])
def test_wrong_types_are_one_short_line_not_a_traceback(tmp_path, change, expected):
    found = problems(tmp_path, GOOD.replace(*change))
    assert len(found) == 1 and found[0].startswith(expected), found
    assert len(found[0]) < 300


def test_a_broken_section_is_not_repeated_by_every_route(tmp_path):
    assert problems(tmp_path, GOOD.replace("  - name: x\n    platform: console", "  - 5")) == [
        "accounts[0]: expected a mapping, got a number"]


def test_thousands_of_problems_print_as_fifty_and_a_count(tmp_path, capsys):
    from bot.cli import main
    unknown = ", ".join(f"nope{n}" for n in range(3000))
    path = write(tmp_path, GOOD.replace("feeds: [world]", f"feeds: [world, {unknown}]"))
    assert main(["--config", str(path), "check-config"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 51 and "nope0" in lines[0]
    assert lines[-1] == "config error: ... and 2950 more problem(s) like these"
