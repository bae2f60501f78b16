"""WebSub discovery (CONTRACTS 4): FetchResult.hub and .topic from RSS, Atom and
JSON Feed, over HTTP; the fast path against feedparser is in test_fastfeed.py."""
from __future__ import annotations

import json

import pytest
from werkzeug import Response

from bot.config import FeedConfig, HttpSettings
from bot.feeds import FeedState, fetch, read
from bot.http import HttpClient

BASE = "https://news.example/feeds/main.xml"
ITEM = "<item><title>t</title><link>https://news.example/a</link></item>"
RSS = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
       'xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>{head}' + ITEM
       + "</channel></rss>")
ATOM = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>t</title><id>urn:x</id><updated>2026-11-26T10:00:00Z</updated>{head}"
        '<entry><title>t</title><id>urn:1</id><link href="https://news.example/a"/>'
        "<updated>2026-11-26T10:00:00Z</updated></entry></feed>")


def json_feed(**fields) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t",
                       "items": [{"id": "1", "url": "https://news.example/a"}], **fields}).encode()


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("template", [RSS, ATOM], ids=["rss", "atom"])
def test_hub_and_self_links(template, fast):
    head = ('<atom:link rel="hub" href="https://hub.example/"/><atom:link rel="self" '
            'href="/feeds/main.xml"/>')
    if template is ATOM:
        head = head.replace("atom:link", "link")
    got = read(template.format(head=head).encode(), "f", BASE, fast=fast)
    assert (got.hub, got.topic) == ("https://hub.example/", BASE)
    assert len(got.articles) == 1


@pytest.mark.parametrize("template", [RSS, ATOM], ids=["rss", "atom"])
def test_no_hub_no_topic(template):
    got = read(template.format(head="").encode(), "f", BASE)
    assert (got.hub, got.topic) == (None, None)


def test_a_hub_that_is_no_http_url_is_none():
    head = '<atom:link rel="hub" href="javascript:alert(1)"/><atom:link rel="self" href=""/>'
    got = read(RSS.format(head=head).encode(), "f", BASE)
    assert (got.hub, got.topic) == (None, None)


@pytest.mark.parametrize("fields, expected", [
    ({"hubs": [{"type": "rssCloud", "url": "https://cloud.example/"},
               {"type": "WebSub", "url": "https://hub.example/"}],
      "feed_url": "https://news.example/feed.json"},
     ("https://hub.example/", "https://news.example/feed.json")),
    ({"hubs": [{"type": "websub", "url": "ftp://hub.example/"}, "junk", {"type": 3}]}, (None, None)),
    ({"hubs": {"type": "WebSub", "url": "https://hub.example/"}, "feed_url": 12}, (None, None)),
    ({}, (None, None)),
], ids=["websub-and-feed-url", "unusable", "not-a-list", "none"])
def test_json_feed_hubs(fields, expected):
    got = read(json_feed(**fields), "f", BASE)
    assert (got.hub, got.topic) == expected
    assert len(got.articles) == 1


def test_fetch_gives_hub_and_topic_on_200_and_none_on_304(httpserver):
    head = ('<atom:link rel="hub" href="https://hub.example/"/>'
            '<atom:link rel="self" href="https://news.example/rss"/>')
    httpserver.expect_ordered_request("/rss").respond_with_data(
        RSS.format(head=head), content_type="application/rss+xml", headers={"ETag": '"1"'})
    httpserver.expect_ordered_request("/rss").respond_with_response(Response(status=304))
    client = HttpClient(HttpSettings(deadline=5, read_timeout=2))
    feed = FeedConfig(name="f", url=httpserver.url_for("/rss"))
    first = fetch(client, feed, FeedState())
    assert (first.hub, first.topic) == ("https://hub.example/", "https://news.example/rss")
    again = fetch(client, feed, FeedState(etag='"1"'))
    assert again.articles is None and (again.hub, again.topic) == (None, None)
