"""Hostile input: every case ends in a clear FeedError (or the articles that
could be recovered), within bounded time and memory. Servers run on 127.0.0.1."""
from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest
from werkzeug import Response as WerkzeugResponse

from bot.config import FeedConfig, HttpSettings
from bot.errors import FeedError
from bot.feeds import FeedState, fetch, parse
from bot.http import HttpClient
from feed_servers import Stopwatch, trickle_server

MB = 1_000_000
ITEM = ('<item><title>{title}</title><link>https://news.example/{n}</link>'
        '<guid>id-{n}</guid></item>')
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>https://news.example/bomb</link></item>
</channel></rss>"""


def rss(*titles: str, encoding: str = "utf-8", declare: str | None = "utf-8") -> bytes:
    decl = f'<?xml version="1.0" encoding="{declare}"?>' if declare else ""
    items = "".join(ITEM.format(title=t, n=n) for n, t in enumerate(titles))
    return f'{decl}<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode(
        encoding)


def poll(url: str, **settings):
    """One feed poll through the real client, as the scheduler will do it."""
    client = HttpClient(HttpSettings(**settings))
    return fetch(client, FeedConfig(name="hostile", url=url), FeedState())


def reason(excinfo) -> str:
    return excinfo.value.reason


# ---------------------------------------------------------------- bodies


def test_malformed_xml_returns_recovered_items(caplog):
    body = rss("A", "B")[:-len("</channel></rss>")] + b"<item><title>C</itm></channel>"
    articles = parse(body, "hostile", "https://news.example/feed")
    assert [a.item_id for a in articles][:2] == ["id-0", "id-1"]
    assert "damaged" in caplog.text


def test_truncated_body_returns_complete_items(caplog):
    body = rss("First", "Second", "Third")
    articles = parse(body[: body.index(b"id-2")], "hostile", "https://news.example/feed")
    assert [a.title for a in articles][:2] == ["First", "Second"]


def test_entity_bomb_is_not_expanded():
    tracemalloc.start()
    with Stopwatch() as watch:
        articles = parse(BOMB, "hostile", "https://news.example/feed")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert watch.elapsed < 2 and peak < 50 * MB
    assert len(articles) <= 1 and all("lollol" not in a.title for a in articles)


@pytest.mark.parametrize("body, expected", [
    (b"", "not a feed: empty body"),
    (b" \r\n\t ", "not a feed: empty body"),
    (b"<!DOCTYPE html><html><head><title>Home</title></head><body>x</body></html>",
     "not a feed: an HTML page"),
    (b"<html><body><p>Moved</p></body></html>", "not a feed: an HTML page"),
    (b'<?xml version="1.0"?><note><to>x</to></note>',
     "not a feed: no RSS, Atom or JSON Feed found"),
    (b'{"hello": "world"}', "not a feed: JSON but not a JSON Feed"),
    (b'[1, 2, 3]', "not a feed: JSON but not a JSON Feed"),
])
def test_not_a_feed(body, expected):
    with pytest.raises(FeedError) as info:
        parse(body, "hostile", "https://news.example/feed")
    assert reason(info) == expected


def test_plain_text_and_broken_json_are_not_feeds():
    for body in (b"hello, this is text", b'{"version": "https://jsonfeed.org/version/1", "items": ['):
        with pytest.raises(FeedError, match="^not a feed: "):
            parse(body, "hostile", "https://news.example/feed")


@pytest.mark.parametrize("body", [
    rss("Café Zürich", encoding="latin-1", declare="utf-8"),     # Latin-1 declared as UTF-8
    rss("Café Zürich", encoding="utf-8", declare="iso-8859-1"),  # UTF-8 declared as Latin-1
    rss("Café Zürich", encoding="latin-1", declare=None),        # no declaration at all
    rss("Café Zürich", encoding="utf-8", declare="klingon-7"),   # unknown charset
])
def test_wrong_or_missing_charset_does_not_crash(body):
    [article] = parse(body, "hostile", "https://news.example/feed")
    assert article.item_id == "id-0"
    assert article.title.startswith("Caf") and article.title.endswith("rich")


def test_json_feed_in_latin1_is_decoded():
    body = '{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "url": "/1", "title": "Café"}]}'
    [article] = parse(body.encode("latin-1"), "hostile", "https://news.example/feed")
    assert article.title == "Café"


# ---------------------------------------------------------------- transport


def test_100_mb_body_stops_at_the_cap(httpserver):
    def endless():
        block = b"<item><title>x</title></item>" * 2000
        for _ in range(100 * MB // len(block)):
            yield block
    httpserver.expect_request("/feed").respond_with_response(
        WerkzeugResponse(endless(), content_type="application/rss+xml"))
    tracemalloc.start()
    with Stopwatch() as watch, pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reason(info) == "body larger than 10 MB"
    assert watch.elapsed < 10 and peak < 40 * MB


def test_declared_length_over_the_cap_fails_before_reading(httpserver):
    httpserver.expect_request("/feed").respond_with_response(WerkzeugResponse(
        iter([b"<rss>"]), headers={"Content-Length": str(100 * MB)}))
    with pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"), max_bytes=MB)
    assert reason(info) == "body larger than 1 MB"


@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
])
def test_decompression_bomb_is_bounded_by_the_cap(httpserver, encoding, compress):
    bomb = compress(b"\0" * 30 * MB)  # about 30 kB on the wire, six times the cap
    httpserver.expect_request("/feed").respond_with_data(
        bomb, headers={"Content-Encoding": encoding})
    tracemalloc.start()
    with pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"), max_bytes=5 * MB)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reason(info) == "body larger than 5 MB"
    assert peak < 25 * MB


def test_one_byte_a_second_fails_at_the_deadline():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000\r\n\r\n"
    with trickle_server(head, rss("slow") * 10, delay=0.5) as base:
        with Stopwatch() as watch, pytest.raises(FeedError) as info:
            poll(base + "/feed", deadline=2.0, read_timeout=15.0)
    assert reason(info) == "timed out after 2 s"
    assert 1.9 < watch.elapsed < 3.0


def test_silent_server_fails_at_the_read_timeout():
    with trickle_server(b"", b"", delay=0.1, hold=True) as base:
        with Stopwatch() as watch, pytest.raises(FeedError) as info:
            poll(base + "/feed", deadline=10.0, read_timeout=0.5)
    assert reason(info) == "no answer within 0.5 s"
    assert watch.elapsed < 2


def test_endless_redirects_fail_cleanly(httpserver):
    httpserver.expect_request("/loop").respond_with_data(
        b"", status=302, headers={"Location": "/loop"})
    with Stopwatch() as watch, pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/loop"))
    assert reason(info) == "too many redirects" and watch.elapsed < 5


def test_html_page_served_as_feed(httpserver):
    httpserver.expect_request("/feed").respond_with_data(
        b"<!doctype html><html><body>Sign in</body></html>", content_type="text/html")
    with pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"))
    assert reason(info) == "not a feed: an HTML page"


def test_empty_200_is_not_a_feed(httpserver):
    httpserver.expect_request("/feed").respond_with_data(b"")
    with pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"))
    assert reason(info) == "not a feed: empty body"


def test_body_cut_short_by_the_server(httpserver):
    # Content-Length promises more than arrives: a network failure, not a feed.
    body = rss("A", "B")
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (len(body) + 500))
    with trickle_server(head + body, b"", delay=0) as base:
        with pytest.raises(FeedError) as info:
            poll(base + "/feed", deadline=5.0)
    assert reason(info) == "body cut short"


def test_server_hanging_up_without_answer():
    with trickle_server(b"", b"", delay=0) as base, pytest.raises(FeedError) as info:
        poll(base + "/feed")
    assert reason(info) == "connection closed by the server"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors(httpserver, status):
    httpserver.expect_request("/feed").respond_with_data(b"<h1>down</h1>", status=status)
    with pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"))
    assert (reason(info), info.value.retry_after, info.value.gone) == (
        f"HTTP {status}", None, False)


@pytest.mark.parametrize("status", [429, 503])
def test_back_off_hints(httpserver, status):
    httpserver.expect_request("/feed").respond_with_data(
        b"slow down", status=status, headers={"Retry-After": "3600"})
    with pytest.raises(FeedError) as info:
        poll(httpserver.url_for("/feed"))
    assert (reason(info), info.value.retry_after) == (f"HTTP {status}", 3600.0)
