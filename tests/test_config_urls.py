"""Secrets in URLs (issue 15): a feed's ?token=, a database password, ${VAR}
in a base URL never reach check-config's output, a repr or urllib3's DEBUG line."""
from __future__ import annotations

import io
import logging

import pytest

from bot.config import load
from bot.secret import MaskingFilter, mask, redact_url
from test_config import GOOD, write

ENV = {"FEED_TOKEN": "feedtok-5678", "DB_PASSWORD": "dbpass-5678", "X_PROXY_KEY": "proxykey-5678",
       "X_CONSUMER_KEY": "ck-123456", "X_CONSUMER_SECRET": "cs-123456",
       "X_ACCESS_TOKEN": "at-123456", "X_ACCESS_TOKEN_SECRET": "ats-123456"}
SECRET_CONFIG = GOOD.replace(
    "url: https://example.org/rss.xml",
    "url: 'https://example.org/rss.xml?token=${FEED_TOKEN}&format=literal-rss2'").replace(
    "version: 1", "version: 1\ndatabase: 'postgresql+psycopg://herald:${DB_PASSWORD}@db/herald'").replace(
    "platform: console", "platform: twitter\n    api_base_url: 'https://proxy.example/${X_PROXY_KEY}'\n"
    "    credentials: {consumer_key: '${X_CONSUMER_KEY}', consumer_secret: '${X_CONSUMER_SECRET}',\n"
    "                  access_token: '${X_ACCESS_TOKEN}', access_token_secret: '${X_ACCESS_TOKEN_SECRET}'}")
SECRETS = ("feedtok-5678", "dbpass-5678", "proxykey-5678", "literal-rss2")


@pytest.mark.parametrize("url, shown", [
    ("https://example.org/feed?token=abc123&x=1#top", "https://example.org/feed?token=***&x=***#top"),
    ("postgresql+psycopg://herald:s3cr@t@db:5432/herald", "postgresql+psycopg://herald:***@db:5432/herald"),
    ("https://user@example.org/feed", "https://user@example.org/feed"),
    ("https://example.org/feed?apikey", "https://example.org/feed?***"),
    ("sqlite:////var/lib/herald.db?mode=ro", "sqlite:////var/lib/herald.db?mode=***"),
    ("http://[::1/feed?a=b", "http://[::1/feed?a=***"),
    ("demo/feed.xml", "demo/feed.xml"),
    ("", ""),
])
def test_redact_url_masks_the_password_and_every_query_value(url, shown):
    assert redact_url(url) == shown


@pytest.fixture
def config(tmp_path):
    return load(write(tmp_path, SECRET_CONFIG), ENV)


def test_the_urls_keep_their_secrets_for_use(config):
    assert config.feeds[0].url.endswith("?token=feedtok-5678&format=literal-rss2")
    assert config.database == "postgresql+psycopg://herald:dbpass-5678@db/herald"
    assert config.accounts[0].options["api_base_url"] == "https://proxy.example/proxykey-5678"


def test_no_repr_shows_a_url_secret(config):
    for shown in (repr(config), repr(config.feeds[0]), repr(config.accounts[0]), str(config)):
        assert not [s for s in SECRETS if s in shown]
    assert "token=***" in repr(config.feeds[0])


def test_printing_urls_through_redact_url_hides_every_secret(config):
    printed = "\n".join(redact_url(u) for u in (config.feeds[0].url, config.database,
                                                config.accounts[0].options["api_base_url"]))
    assert not [s for s in SECRETS if s in printed]
    assert "https://proxy.example/***" in printed


def test_urllib3_debug_lines_are_masked(config):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskingFilter())
    log = logging.getLogger("urllib3.connectionpool")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:  # urllib3's own format string, as connectionpool logs a request
        log.debug('%s://%s:%s "%s %s %s" %s %s', "https", "example.org", 443, "GET",
                  "/rss.xml?token=feedtok-5678&format=literal-rss2", "HTTP/1.1", 200, 1234)
        log.debug("Starting new HTTPS connection (1): %s:%s", "proxy.example", "/proxykey-5678")
    finally:
        log.removeHandler(handler)
    assert "GET /rss.xml?token=***&format=***" in out.getvalue()
    assert not [s for s in SECRETS if s in out.getvalue()]


def test_a_percent_encoded_query_value_is_masked_both_ways(tmp_path):
    load(write(tmp_path, GOOD.replace("url: https://example.org/rss.xml",
                                      "url: 'https://example.org/rss.xml?key=a%2Fb%2Fc%2Fd'")), {})
    assert mask("key=a%2Fb%2Fc%2Fd and a/b/c/d") == "key=*** and ***"
