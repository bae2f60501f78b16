"""bot/feeds.py: golden feed files to exact Articles, fetch() over HTTP and from
disk, and normalise_url."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.config import FeedConfig, HttpSettings
from bot.errors import FeedError
from bot.feeds import FeedState, fetch, parse
from bot.feedtext import normalise_url
from bot.http import HttpClient
from bot.models import Article

DATA = Path(__file__).parent / "data" / "feeds"
BASE = "https://base.example/feeds/main.xml"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def golden(name: str, feed: str = "f") -> list[Article]:
    return parse((DATA / name).read_bytes(), feed, BASE)


# ---------------------------------------------------------------- golden files


def test_rss_091():
    assert golden("rss091.xml") == [
        Article(feed="f", item_id="http://gazette.example/news/cafe.html?utm_source=rss",
                url="http://gazette.example/news/cafe.html?utm_source=rss",
                title="Café reopens after flood",
                summary="The café on Main Street is open again."),
        Article(feed="f", item_id="https://base.example/news/council.html",
                url="https://base.example/news/council.html",
                title="Council meets", summary="Agenda: budget."),
    ]


def test_rss_10_rdf():
    assert golden("rss10.rdf") == [
        Article(feed="f", item_id="https://rdf.example/2026/11/bridge",
                url="https://rdf.example/2026/11/bridge",
                title="Bridge opens to traffic",
                summary="<p>The new bridge opened at dawn.</p>",
                published=utc(2026, 11, 26, 7, 30),
                categories=("Transport",), author="Ana Lopes"),
    ]


def test_rss_20():
    storm, election, podcast = golden("rss20.xml")  # the item with no link or guid is skipped
    assert storm == Article(
        feed="f", item_id="news-example-12345",  # guid isPermaLink="false" kept as is
        url="https://news.example/2026/11/storm",
        title="Storm & floods hit the coast",
        summary='<p>Heavy rain caused <a href="https://news.example/floods">floods</a> '
                "along the coast on Thursday.</p>",
        published=utc(2026, 11, 26, 12, 5),
        categories=("Weather", "Coast"),
        image="https://cdn.news.example/storm.jpg", author="Jo Smith")
    assert election == Article(
        feed="f", item_id="https://news.example/2026/11/election",
        url="https://news.example/2026/11/election", title="Election results",
        summary="<p>Results are in.</p>", published=utc(2026, 11, 25, 20, 0),
        image="https://cdn.news.example/ballot.png", author="Election Desk")
    assert podcast == Article(
        feed="f", item_id="https://news.example/podcast/42",
        url="https://news.example/podcast/42", title="Podcast: week in review",
        summary="Listen.", image="https://base.example/img/podcast.jpg")  # not the mp3


def test_atom():
    assert golden("atom.xml") == [
        Article(feed="f", item_id="tag:atom.example,2026:markets",
                url="https://atom.example/2026/11/markets",
                title="Markets rally on rate cut",
                summary="<p>Stocks rose sharply after the central bank cut rates.</p>",
                published=utc(2026, 11, 26, 14, 15),
                categories=("Economy", "Markets"),
                image="https://atom.example/img/markets.jpg", author="Lee Chen"),
        Article(feed="f", item_id="tag:atom.example,2026:updated",
                url="https://atom.example/2026/11/updated", title="Updated only",
                summary="Plain text summary.", published=utc(2026, 11, 25, 12, 0)),
    ]


def test_json_feed_11():
    # Titles are plain text by the spec: "&amp;" stays as written. The item with
    # no id is dropped (the spec requires one); the number 42 becomes "42"; the
    # feed's own authors sign the item that names none.
    assert golden("jsonfeed11.json") == [
        Article(feed="f", item_id="2026-11-26-solar",
                url="https://json.example/2026/11/solar?utm_medium=feed",
                title="Solar farm &amp; battery approved",
                summary="<p>The council approved the solar farm and a battery store.</p>",
                published=utc(2026, 11, 26, 6, 0), categories=("Energy", "Council"),
                image="https://base.example/img/solar.jpg", author="Mia Berg"),
        Article(feed="f", item_id="42", url="https://json.example/2026/11/text", title="",
                summary="Text only item.", published=utc(2026, 11, 25, 10, 0), author="Desk"),
    ]


def test_json_feed_10_author_and_detection_by_content():
    body = (b'  {"version": "https://jsonfeed.org/version/1", "items": [{"id": "a", '
            b'"url": "/a", "title": "<b>Hi</b> &amp; bye", "author": {"name": "Old Style"},'
            b' "date_published": "2026-11-26T10:00:00"}]}')
    [article] = parse(body, "j", "https://json.example/feed")
    assert (article.url, article.title, article.author, article.published) == (
        "https://json.example/a", "<b>Hi</b> &amp; bye", "Old Style", utc(2026, 11, 26, 10))


def test_item_id_does_not_depend_on_where_the_feed_lives():
    body = (DATA / "rss20.xml").read_bytes()
    first = [a.item_id for a in parse(body, "f", "https://old.example/feed")]
    second = [a.item_id for a in parse(body, "f", "https://new.example/rss")]
    assert first == second


# ---------------------------------------------------------------- fetch


def feed_at(url: str) -> FeedConfig:
    return FeedConfig(name="news", url=url)


def test_fetch_then_304_skips_parsing(httpserver):
    body = (DATA / "rss20.xml").read_bytes()
    lm = "Thu, 26 Nov 2026 12:00:00 GMT"
    httpserver.expect_ordered_request("/rss").respond_with_data(body, headers={
        "ETag": 'W/"abc"', "Last-Modified": lm, "Cache-Control": "public, max-age=600"})
    httpserver.expect_ordered_request(
        "/rss", headers={"If-None-Match": 'W/"abc"', "If-Modified-Since": lm}
    ).respond_with_data(b"", status=304)
    client = HttpClient(HttpSettings())
    first = fetch(client, feed_at(httpserver.url_for("/rss")), FeedState())
    assert [a.feed for a in first.articles] == ["news"] * 3
    assert (first.etag, first.last_modified, first.max_age, first.permanent_url) == (
        'W/"abc"', lm, 600.0, None)
    second = fetch(client, feed_at(httpserver.url_for("/rss")),
                   FeedState(etag=first.etag, last_modified=first.last_modified))
    assert (second.articles, second.etag, second.last_modified) == (None, 'W/"abc"', lm)
    httpserver.check_assertions()


def test_fetch_remembers_a_permanent_move_and_uses_it(httpserver):
    body = (DATA / "atom.xml").read_bytes()
    httpserver.expect_request("/old").respond_with_data(
        b"", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(body)
    client = HttpClient(HttpSettings())
    moved = fetch(client, feed_at(httpserver.url_for("/old")), FeedState())
    assert moved.permanent_url == httpserver.url_for("/new") and len(moved.articles) == 2
    again = fetch(client, feed_at(httpserver.url_for("/old")), FeedState(url=moved.permanent_url))
    assert again.permanent_url is None
    assert [r.path for r, _ in httpserver.log] == ["/old", "/new", "/new"]


def test_relative_links_of_a_feed_behind_credentials_carry_none(httpserver):
    # The item's URL is posted: a token in the feed's URL must not reach it.
    body = (b'<rss version="2.0"><channel><title>t</title><item><title>A story</title>'
            b"<link>/2026/story</link><guid>s1</guid></item></channel></rss>")
    httpserver.expect_request("/rss").respond_with_data(body)
    url = f"http://desk:s3cret@localhost:{httpserver.port}/rss"
    result = fetch(HttpClient(HttpSettings()), feed_at(url), FeedState())
    assert [a.url for a in result.articles] == [f"http://localhost:{httpserver.port}/2026/story"]
    assert httpserver.log[0][0].headers["Authorization"].startswith("Basic ")


def test_fetch_410_is_gone(httpserver):
    httpserver.expect_request("/rss").respond_with_data(b"", status=410)
    with pytest.raises(FeedError) as info:
        fetch(HttpClient(HttpSettings()), feed_at(httpserver.url_for("/rss")), FeedState())
    assert info.value.gone


def test_fetch_user_feed_on_loopback_is_not_guarded(httpserver):
    httpserver.expect_request("/rss").respond_with_data((DATA / "rss10.rdf").read_bytes())
    result = fetch(HttpClient(HttpSettings()), feed_at(httpserver.url_for("/rss")), FeedState())
    assert len(result.articles) == 1


def test_fetch_local_path_and_file_url(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_bytes((DATA / "rss091.xml").read_bytes())
    client = HttpClient(HttpSettings())
    by_path = fetch(client, feed_at(str(path)), FeedState())
    by_url = fetch(client, feed_at(path.as_uri()), FeedState())
    assert by_path == by_url
    # "/news/council.html" resolves against the file to file:///news/council.html,
    # which no post can link to: that item is dropped.
    assert [a.url for a in by_path.articles] == [
        "http://gazette.example/news/cafe.html?utm_source=rss"]
    assert (by_path.etag, by_path.permanent_url, by_path.max_age) == (None, None, None)


def test_fetch_local_file_over_the_cap(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<rss>" + b" " * 5000)
    with pytest.raises(FeedError, match="^file larger than"):
        fetch(HttpClient(HttpSettings(max_bytes=1000)), feed_at(str(path)), FeedState())


def test_fetch_unknown_scheme():
    with pytest.raises(FeedError, match="unsupported URL scheme"):
        fetch(HttpClient(HttpSettings()), feed_at("gopher://old.example/feed"), FeedState())


# ---------------------------------------------------------------- normalise_url


@pytest.mark.parametrize("url, expected", [
    ("HTTPS://News.Example.COM:443/a/B?x=1#top", "https://news.example.com/a/B?x=1"),
    ("http://news.example:80/a", "http://news.example/a"),
    ("http://news.example:8080/a", "http://news.example:8080/a"),
    ("https://news.example", "https://news.example/"),
    ("https://news.example/a?utm_source=rss&id=7&UTM_Medium=x&fbclid=abc",
     "https://news.example/a?id=7"),
    ("https://news.example/a?gclid=1&mc_cid=2&mc_eid=3&ocid=4&cmpid=5", "https://news.example/a"),
    ("https://news.example/a?b=2&a=1&b=1", "https://news.example/a?b=2&a=1&b=1"),
    ("https://news.example/a?q=caf%C3%A9+au+lait&utm_campaign=z",
     "https://news.example/a?q=caf%C3%A9+au+lait"),
    ("https://news.example/a?", "https://news.example/a"),
    ("https://user@News.Example/a", "https://user@news.example/a"),
    ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
    ("https://news.example/Path%2FKept", "https://news.example/Path%2FKept"),
])
def test_normalise_url(url, expected):
    assert normalise_url(url) == expected


def test_same_story_through_two_feeds_normalises_equal():
    one = "https://News.example/2026/11/storm?utm_source=rss#comments"
    two = "https://news.example:443/2026/11/storm?fbclid=XYZ"
    assert normalise_url(one) == normalise_url(two)
