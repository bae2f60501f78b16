"""Adapter options are checked against the adapter's own Option schema, generically."""
from __future__ import annotations

import logging
from typing import ClassVar

import pytest

from bot.adapters import PLATFORMS
from bot.adapters.base import Adapter, Option, credential
from bot.config import load
from bot.models import Post, Receipt
from bot.secret import Secret, mask
from test_config import problems, write

ACCOUNT = """
feeds: [{name: world, url: https://example.org/rss.xml}]
routes: [{feeds: [world], accounts: [a]}]
accounts:
  - name: a
    platform: demo
    credentials: {password: "${DEMO_PASSWORD}"}
"""


class DemoAdapter(Adapter):
    """A platform only this test knows, declaring one option of each sort."""

    platform: ClassVar[str] = "demo"
    max_length: ClassVar[int] = 100
    credentials = {"password": credential(), "otp_seed": credential(required=False)}
    options = {
        "instance_url": Option(str, "https://demo.example"),
        "visibility": Option(str, "public", choices=("public", "unlisted", "private")),
        "max_media": Option(int, required=True, bounds=(0, 4)),
        "language": Option(str),                       # optional, no default
        "api_key": Option(str, secret=True),
        "attach_image": Option(bool, True),
    }

    def publish(self, post: Post) -> Receipt:
        return Receipt("1")


@pytest.fixture(autouse=True)
def demo_platform(monkeypatch):
    monkeypatch.setitem(PLATFORMS, "demo", "test_config_options:DemoAdapter")


def account(tmp_path, extra: str, env=None):
    path = write(tmp_path, ACCOUNT + "".join(f"    {line}\n" for line in extra.splitlines()))
    return load(path, {"DEMO_PASSWORD": "pw-0001", **(env or {})}).accounts[0]


def test_defaults_fill_in_and_an_optional_option_without_one_stays_absent(tmp_path):
    a = account(tmp_path, "max_media: 2")
    assert a.options == {"instance_url": "https://demo.example", "visibility": "public",
                         "max_media": 2, "attach_image": True}
    assert a.credentials == {"password": Secret("pw-0001")}
    adapter = DemoAdapter(a.name, a.options, a.credentials)
    assert "language" not in adapter.opts and adapter.opts["max_media"] == 2


def test_options_may_sit_under_options_too(tmp_path):
    a = account(tmp_path, "options: {max_media: 1, visibility: unlisted, language: de}")
    assert (a.options["max_media"], a.options["visibility"], a.options["language"]) == (
        1, "unlisted", "de")


@pytest.mark.parametrize("extra, expected", [
    ("", "accounts[0].max_media: required key is missing"),
    ("max_media: '2'", "accounts[0].max_media: expected a whole number from 0 to 4, got '2'"),
    ("max_media: 9", "accounts[0].max_media: expected a whole number from 0 to 4, got 9"),
    ("max_media: 1\nvisibility: secret",
     "accounts[0].visibility: expected one of public, unlisted, private, got 'secret'"),
    ("max_media: 1\ninstance_url: demo.example",
     'accounts[0].instance_url: expected an http(s) URL like "https://api.example.org"'),
    ("max_media: 1\nattach_image: 'yes'",
     "accounts[0].attach_image: expected true or false, got 'yes'"),
    ("max_media: 1\noptions: {max_media: 2}",
     "accounts[0].options.max_media: also given as accounts[0].max_media; keep one"),
    ("max_media: 1\noptions: {colour: red}",
     "accounts[0].options.colour: unknown key (known: api_key, attach_image, instance_url, "
     "language, max_media, visibility)"),
    ("max_media: 1\ncolour: red", "accounts[0].colour: unknown key"),
])
def test_each_rule_of_the_schema_is_one_problem_line(tmp_path, extra, expected):
    [line] = problems(tmp_path, ACCOUNT + "".join(f"    {x}\n" for x in extra.splitlines()),
                      {"DEMO_PASSWORD": "pw-0001"})
    assert line.startswith(expected)


def test_a_secret_option_is_a_secret_masked_everywhere_and_never_shown(tmp_path, caplog):
    a = account(tmp_path, "max_media: 1\napi_key: ${DEMO_KEY}", {"DEMO_KEY": "key-9f8e7d"})
    assert a.options["api_key"] == Secret("key-9f8e7d")
    assert "key-9f8e7d" not in repr(a) and mask("sent key-9f8e7d") == "sent ***"
    [line] = problems(tmp_path, ACCOUNT + "    max_media: 1\n    api_key: [key-5a4b3c]\n",
                      {"DEMO_PASSWORD": "pw"})
    assert line == "accounts[0].api_key: expected a string or a whole number" and "5a4b3c" not in line


def test_credentials_may_be_optional(tmp_path):
    a = account(tmp_path, "max_media: 1", {})
    assert set(a.credentials) == {"password"}
    text = ACCOUNT.replace("{password:", "{otp_seed: s, password:") + "    max_media: 1\n"
    path = write(tmp_path, text)
    assert set(load(path, {"DEMO_PASSWORD": "p"}).accounts[0].credentials) == {"password", "otp_seed"}
    [line] = problems(tmp_path, ACCOUNT.replace('{password: "${DEMO_PASSWORD}"}', "{otp_seed: s}")
                      + "    max_media: 1\n")
    assert line == "accounts[0].credentials.password: required key is missing"


def test_a_platform_whose_module_is_missing_is_one_clear_problem(tmp_path, monkeypatch):
    monkeypatch.setitem(PLATFORMS, "demo", "bot.adapters.not_written_yet:Nothing")
    [line] = problems(tmp_path, ACCOUNT + "    max_media: 1\n", {"DEMO_PASSWORD": "p"})
    assert line.startswith("accounts[0].platform: platform 'demo' is not available")
    assert "bot.adapters.not_written_yet" in line


def test_an_unknown_platform_lists_the_known_ones(tmp_path):
    [line] = problems(tmp_path, ACCOUNT.replace("platform: demo", "platform: myspace"),
                      {"DEMO_PASSWORD": "p"})
    assert line.startswith("accounts[0].platform: unknown platform 'myspace' (known: ")
    assert "bluesky" in line and "mastodon" in line and "twitter" in line


def test_every_bundled_adapter_declares_a_schema_config_can_read():
    from bot.adapters import adapter_class, platforms
    for name in platforms():
        try:
            cls = adapter_class(name)
        except LookupError:
            continue   # a platform being written right now
        for key, opt in {**cls.option_schema(), **cls.credential_schema()}.items():
            assert isinstance(opt, Option) and opt.kind in (str, int, float, bool), (name, key)
        assert all(o.secret for o in cls.credential_schema().values()), name
