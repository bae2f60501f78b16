"""Top-level service settings: http_listen, log_format, retention."""
from datetime import timedelta

import pytest

from bot import config as configmod
from bot.errors import ConfigError

BASE = """
feeds: [{name: f, url: "https://news.example/rss"}]
accounts: [{name: c, platform: console}]
routes: [{feeds: [f], accounts: [c]}]
"""


def load(tmp_path, extra=""):
    path = tmp_path / "herald.yaml"
    path.write_text(BASE + extra)
    return configmod.load(path, env={})


def test_defaults_keep_the_listener_off(tmp_path):
    config = load(tmp_path)
    assert (config.http_listen, config.log_format, config.retention) == (None, "text", timedelta(days=90))


def test_settings_are_read(tmp_path):
    config = load(tmp_path, 'http_listen: "127.0.0.1:9108"\nlog_format: json\nretention: 30d\n')
    assert (config.http_listen, config.log_format, config.retention) == (("127.0.0.1", 9108), "json",
                                                                         timedelta(days=30))
    assert load(tmp_path, 'http_listen: "[::1]:9108"\n').http_listen == ("::1", 9108)


@pytest.mark.parametrize("extra, key", [('http_listen: "9108"\n', "http_listen"),
                                        ('http_listen: "localhost:99999"\n', "http_listen"),
                                        ("log_format: xml\n", "log_format"),
                                        ("retention: 1h\n", "retention")])
def test_bad_settings_name_their_key(tmp_path, extra, key):
    with pytest.raises(ConfigError, match=key):
        load(tmp_path, extra)
