"""bot/feeds.py on the cases that crashed or read wrong (issues 15 and 9): one bad
field costs that field, one bad item that item, each logged once with the feed's
name; encodings; plain versus HTML text; JSON Feed by its spec."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.config import FeedConfig, HttpSettings
from bot.errors import FeedError
from bot.feeds import FeedState, fetch, parse
from bot.http import HttpClient
from bot.jsonfeed import parse_date
from bot.models import Article

DATA = Path(__file__).parent / "data" / "feeds"
BASE = "https://base.example/feeds/main.xml"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def golden(name: str, headers: dict | None = None) -> list[Article]:
    return parse((DATA / name).read_bytes(), "edge", BASE, headers)


def json_feed(*items, **top) -> bytes:
    doc = {"version": "https://jsonfeed.org/version/1.1", **top, "items": list(items)}
    return json.dumps(doc, ensure_ascii=False).encode()


def rss(*items: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            + "".join(items) + "</channel></rss>").encode()


def atom(*entries: str) -> bytes:
    return ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            + "".join(entries) + "</feed>").encode()


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------- links and images


def test_bad_links_cost_only_their_items(caplog):
    articles = golden("hostile-links.xml")
    assert [(a.title, a.url) for a in articles] == [
        ("Good before", "https://links.example/before"),
        ("Permalink guid", "https://links.example/permalink"),
        ("Guid first, then link", "https://links.example/guid-first"),
        ("Bad media, good thumbnail", "https://links.example/media"),
        ("Bad enclosure", "https://links.example/enclosure"),
        ("Data URI image", "https://links.example/data"),
        ("Good after", "https://base.example/after"),
    ]
    skipped = [m for m in warnings(caplog) if "skipped item" in m]
    assert len(skipped) == 6 and all(m.startswith("feed edge: ") for m in skipped)
    assert any("'https://[host/' is not an http(s) URL" in m for m in skipped)


def test_urn_and_tag_ids_never_become_links():
    articles = golden("hostile-links.xml")
    assert all(a.url.startswith(("https://", "http://")) for a in articles)
    by_title = {a.title: a for a in articles}
    # The id stays the item's id; only the link must be a web address.
    guid_first = by_title["Guid first, then link"]
    assert guid_first.item_id == "urn:uuid:5e9a0c1e-0000-4000-8000-000000000001"
    assert "Only a urn guid" not in by_title and "Only a tag guid" not in by_title


def test_atom_entry_with_only_a_urn_id_is_dropped(caplog):
    body = atom('<entry><title>No link</title><id>urn:uuid:1</id></entry>',
                '<entry><title>Linked</title><id>tag:a.example,2026:2</id>'
                '<link href="https://a.example/2"/></entry>')
    [article] = parse(body, "edge", BASE)
    assert (article.item_id, article.url) == ("tag:a.example,2026:2", "https://a.example/2")
    assert warnings(caplog) == [
        "feed edge: skipped item 'urn:uuid:1': its link 'urn:uuid:1' is not an http(s) URL"]


def test_bad_image_urls_cost_only_the_image(caplog):
    caplog.set_level(logging.INFO)
    by_title = {a.title: a for a in golden("hostile-links.xml")}
    assert by_title["Bad media, good thumbnail"].image == "https://base.example/img/thumb.jpg"
    assert by_title["Bad enclosure"].image is None
    assert by_title["Data URI image"].image is None
    ignored = [r.getMessage() for r in caplog.records if "ignored the image" in r.getMessage()]
    assert len(ignored) == 3 and all(m.startswith("feed edge: item ") for m in ignored)


@pytest.mark.parametrize("link", ["https://[host/", "http://[::1", "http://ex ample.com/",
                                  "https://a.example:99999/", "ftp://a.example/f", "https://"])
def test_json_item_with_unusable_link_is_dropped(link):
    body = json_feed({"id": "bad", "url": link, "image": link},
                     {"id": "good", "url": "https://a.example/good", "image": link})
    [article] = parse(body, "edge", BASE)
    assert (article.item_id, article.image) == ("good", None)


def test_spaces_in_a_link_are_encoded():
    [article] = parse(rss("<item><link>https://a.example/my story</link></item>"), "e", BASE)
    assert article.url == "https://a.example/my%20story"


# ---------------------------------------------------------------- encodings


def test_two_stray_bytes_do_not_change_the_whole_feeds_charset(caplog):
    articles = golden("utf8-stray-bytes.xml")
    assert [a.title for a in articles] == [
        "Café au lait", "Crème brûlée", "Naïve \ufffd\ufffd bytes", "Zürich"]
    assert warnings(caplog) == ["feed edge: 2 invalid UTF-8 sequences replaced"]


def test_stray_bytes_in_a_json_feed():
    body = json_feed({"id": "1", "url": "https://a.example/1", "title": "Café"},
                     {"id": "2", "url": "https://a.example/2", "title": "bad XX"})
    [one, two] = parse(body.replace(b"XX", b"\xff\xfe"), "edge", BASE)
    assert (one.title, two.title) == ("Café", "bad \ufffd\ufffd")


def test_latin1_file_declared_utf8_still_reads_as_latin1():
    # No valid multi-byte character at all: the body is not UTF-8, whatever it says.
    body = rss("<item><title>Caf\xe9 Z\xfcrich</title><link>https://a.example/1</link></item>")
    [article] = parse(body.decode().encode("latin-1"), "edge", BASE)
    assert article.title == "Café Zürich"


def test_charset_from_the_http_header_reaches_the_parser():
    headers = {"Content-Type": "application/rss+xml; charset=EUC-KR"}
    [article] = golden("euc-kr.xml", headers)
    assert article.title == "2026년 예산안 통과"
    assert article.summary == "국회가 2026년 예산안을 통과시켰다."


def test_fetch_passes_the_response_headers(httpserver):
    httpserver.expect_request("/kr").respond_with_data(
        (DATA / "euc-kr.xml").read_bytes(), content_type="text/xml; charset=euc-kr")
    feed = FeedConfig(name="kr", url=httpserver.url_for("/kr"))
    result = fetch(HttpClient(HttpSettings()), feed, FeedState())
    assert [a.title for a in result.articles] == ["2026년 예산안 통과"]


@pytest.mark.parametrize("content_type", ["text/xml", "text/html", "text/plain",
                                          "application/octet-stream", None])
def test_odd_content_types_read_the_xml_declaration(caplog, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = rss("<item><title>Café</title><link>https://a.example/1</link></item>")
    [article] = parse(body, "edge", BASE, headers)
    assert article.title == "Café" and warnings(caplog) == []


def test_a_default_latin1_header_on_a_utf8_body_is_overruled():
    body = rss("<item><title>Café</title><link>https://a.example/1</link></item>")
    [article] = parse(body, "edge", BASE, {"content-type": "text/xml; charset=ISO-8859-1"})
    assert article.title == "Café"


# ---------------------------------------------------------------- plain text and HTML


def test_atom_text_title_keeps_its_angle_brackets():
    body = atom('<entry><title type="text">History of the &lt;blink&gt; tag</title>'
                '<id>tag:a,2026:1</id><link href="https://a.example/1"/></entry>')
    [article] = parse(body, "edge", BASE)
    assert article.title == "History of the <blink> tag"


def test_html_title_drops_script_and_style():
    body = atom('<entry><title type="html">Hi &lt;script&gt;alert(1)&lt;/script&gt;'
                '&lt;style&gt;p { color: red }&lt;/style&gt;&lt;b&gt;there&lt;/b&gt;</title>'
                '<id>tag:a,2026:1</id><link href="https://a.example/1"/></entry>')
    [article] = parse(body, "edge", BASE)
    assert article.title == "Hi there"


def test_json_feed_edge_cases():
    assert golden("jsonfeed-edge.json") == [
        Article(feed="edge", item_id="1", url="https://edge.example/one",
                title="Why <div> soup is bad", published=utc(2026, 1, 2, 3, 4, 5),
                categories=("Markup",), author="Feed Desk"),
        Article(feed="edge", item_id="2", url="https://edge.example/two", title="Tom &amp; Jerry",
                published=utc(2026, 1, 2, 2, 4, 5), author="Feed Desk"),
        Article(feed="edge", item_id="1.0", url="https://edge.example/float", title="Float id",
                published=utc(2026, 1, 2, 22), author="Feed Desk"),
        Article(feed="edge", item_id="3", url="https://edge.example/min", title="Year one",
                author="Feed Desk"),
        Article(feed="edge", item_id="4", url="https://edge.example/max", title="Year 9999",
                published=utc(2026, 1, 4), author="Feed Desk"),
        Article(feed="edge", item_id="6", url="https://edge.example/control",
                title="Nul and bell", summary="Line one\nline two\tand a tab",
                author="Own Byline"),
    ]


def test_json_feed_items_without_usable_id_are_logged_once_each(caplog):
    golden("jsonfeed-edge.json")
    lines = warnings(caplog)
    assert lines.count("feed edge: skipped an item without a usable id") == 5
    assert "feed edge: skipped item '5': its link 'mailto:desk@edge.example' is not an http(s) URL" \
        in lines


# ---------------------------------------------------------------- JSON Feed by the spec


@pytest.mark.parametrize("version", ["https://jsonfeed.org/version/1",
                                     "https://jsonfeed.org/version/1.1"])
def test_json_feed_versions_read(version):
    body = json.dumps({"version": version, "items": [{"id": "a", "url": "https://a.example/"}]})
    assert [a.item_id for a in parse(body.encode(), "edge", BASE)] == ["a"]


@pytest.mark.parametrize("version, found", [
    ("https://jsonfeed.org/version/2", "'https://jsonfeed.org/version/2'"),
    ("http://jsonfeed.org/version/1", "'http://jsonfeed.org/version/1'"),
    ("1.1", "'1.1'"),
    (5, "int"),
])
def test_other_json_feed_versions_say_what_was_found(version, found):
    body = json.dumps({"version": version, "items": []}).encode()
    with pytest.raises(FeedError) as info:
        parse(body, "edge", BASE)
    assert info.value.reason == f"not a feed: JSON Feed version {found}; Herald reads 1 and 1.1"


def test_json_feed_without_items_list():
    with pytest.raises(FeedError, match="without an items list"):
        parse(b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "edge", BASE)


def test_numeric_ids_stay_distinct_and_match_their_strings():
    ids = ["1", "2", '"1"', "1" + "0" * 5000, "2.5", "1.0"]  # as written in the JSON
    items = ", ".join(f'{{"id": {i}, "url": "https://a.example/{n}"}}' for n, i in enumerate(ids))
    body = f'{{"version": "https://jsonfeed.org/version/1", "items": [{items}]}}'.encode()
    found = [a.item_id for a in parse(body, "edge", BASE)]
    # 1 and "1" are one item (the spec coerces numbers to strings); past Python's
    # digit limit an id stays as written instead of failing the feed.
    assert found == ["1", "2", "1", "1" + "0" * 5000, "2.5", "1.0"]


def test_tags_as_a_string_are_one_tag():
    body = json_feed({"id": "a", "url": "https://a.example/", "tags": "Politics"},
                     {"id": "b", "url": "https://a.example/b", "tags": {"x": 1}})
    assert [a.categories for a in parse(body, "edge", BASE)] == [("Politics",), ()]


def test_feed_authors_of_json_feed_11_are_inherited():
    body = json_feed({"id": "a", "url": "https://a.example/"},
                     {"id": "b", "url": "https://a.example/b", "authors": [{"url": "x"}]},
                     authors=["not an object", {"name": "Desk"}])
    assert [a.author for a in parse(body, "edge", BASE)] == ["Desk", "Desk"]


@pytest.mark.parametrize("text, expected", [
    ("2026-01-02T03:04:05Z", utc(2026, 1, 2, 3, 4, 5)),
    ("2026-01-02t03:04:05z", utc(2026, 1, 2, 3, 4, 5)),
    ("2026-01-02T03:04:05.123+02:00", utc(2026, 1, 2, 1, 4, 5, 123000)),
    ("2026-01-02T03:04:05", utc(2026, 1, 2, 3, 4, 5)),  # no offset: taken as UTC
    ("Fri, 02 Jan 2026 03:04:05 GMT", utc(2026, 1, 2, 3, 4, 5)),
    ("Fri, 02 Jan 2026 03:04:05 -0500", utc(2026, 1, 2, 8, 4, 5)),
    ("0001-01-01T00:00:00+01:00", None),
    ("9999-12-31T23:59:59-01:00", None),
    ("yesterday", None),
    ("", None),
])
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_deeply_nested_json_is_a_feed_error():
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [' + (
        b"[" * 100_000) + (b"]" * 100_000) + b"]}"
    with pytest.raises(FeedError) as info:
        parse(body, "edge", BASE)
    assert info.value.reason == "not a feed: JSON nested too deeply"


def test_deeply_nested_json_fails_the_feed_by_name(httpserver, caplog):
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000
    httpserver.expect_request("/deep.json").respond_with_data(body)
    with pytest.raises(FeedError, match="nested too deeply"):
        fetch(HttpClient(HttpSettings()), FeedConfig(name="deep", url=httpserver.url_for(
            "/deep.json")), FeedState())


# ---------------------------------------------------------------- control characters


def test_nul_and_controls_are_stripped_from_rss_text():
    body = rss("<item><title>a&#0;b\x01c\x1fd</title><link>https://a.example/1</link>"
               "<description>one\r\ntwo\x0bthree\tfour</description></item>")
    [article] = parse(body, "edge", BASE)
    assert (article.title, article.summary) == ("abcd", "one\ntwothree\tfour")


def test_lone_surrogates_become_replacement_characters():
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "a\\ud800", ' \
           b'"url": "https://a.example/", "title": "x\\udfffy", "tags": ["\\u0000"]}]}'
    [article] = parse(body, "edge", BASE)
    assert (article.item_id, article.title, article.categories) == ("a\ufffd", "x\ufffdy", ())
    article.title.encode("utf-8")  # encodable, so the store and the platforms can take it
