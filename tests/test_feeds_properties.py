"""bot/feeds.parse against generated RSS 2.0, Atom and JSON Feed documents with
hostile fields: bad URLs, dates at the extremes, huge, empty and control-character
titles, deep nesting, odd encodings. Parsing returns Articles or raises
FeedError, nothing else; one hostile item never loses the good items beside it;
every Article it returns can be stored and posted. Deterministic (conftest's
profile derandomizes), a few seconds in all."""
from __future__ import annotations

import json
import re
from datetime import timezone
from xml.sax.saxutils import escape, quoteattr

import ada_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import feedtext
from bot.errors import FeedError
from bot.feeds import parse
from bot.feedtext import _TextOnly, clean_text, normalise_url, plain_text

BASE = "https://feeds.example/hostile.xml"
FAST = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")

# ---------------------------------------------------------------- hostile fields

urls = st.one_of(
    st.sampled_from([
        "https://[host/", "http://[::1", "http://[::1]:99999/", "javascript:alert(1)",
        "data:image/png;base64,AAAA", "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
        "tag:example.org,2026:1", "//", "https://", "http://ex ample.com/", "mailto:a@b.example",
        "/relative/path", "12345", "", " ", "https://ok.example/a b", "https://münchen.example/",
        "http://\u0000.example/", "https://a.example:0/", "https://user:pw@a.example/",
        "HTTPS://UPPER.EXAMPLE/X", "https://a.example/" + "x" * 5000,
    ]),
    st.text(max_size=60),
    st.builds("https://{}/{}".format, st.text(max_size=20), st.text(max_size=20)),
)
dates = st.one_of(
    st.sampled_from([
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-02t03:04:05z",
        "Mon, 01 Jan 0001 00:00:00 +0100", "Fri, 31 Dec 9999 23:59:59 -0100",
        "Thu, 26 Nov 2026 14:05:00 +0200", "2026-13-45T99:99:99Z", "yesterday", "",
        "-0001-01-01T00:00:00Z", "99999-01-01T00:00:00Z", "1e999",
    ]),
    st.text(max_size=40),
)
titles = st.one_of(
    st.sampled_from(["", " ", "History of the <blink> tag", "Tom &amp; Jerry", "a\x00b",
                     "<script>alert(1)</script>", "]]>", "&lol9;", "\r\n\t", "x" * 100_000]),
    st.text(max_size=200),
    st.text(st.characters(max_codepoint=0x1f), max_size=20),
)


def _texts(allow_surrogates: bool):
    if allow_surrogates:
        return st.one_of(titles, st.text(st.characters(categories=["Cs", "Ll"]), max_size=10))
    return titles.map(lambda t: _SURROGATES.sub("?", t))


_SURROGATES = re.compile("[\ud800-\udfff]")


def hostile_items(allow_surrogates: bool = False):
    return st.fixed_dictionaries({
        "id": st.one_of(st.none(), st.text(max_size=30), urls),
        "link": urls, "image": urls,
        "title": _texts(allow_surrogates), "summary": _texts(allow_surrogates),
        "date": dates, "depth": st.integers(0, 200),
        "stray": st.booleans(),
    })


def good_items(n: int) -> list[dict]:
    return [{"id": f"good-{i}", "link": f"https://good.example/{i}", "title": f"Good {i}",
             "summary": "fine", "date": "2026-01-02T03:04:05Z", "image": "", "depth": 0,
             "stray": False} for i in range(n)]


# ---------------------------------------------------------------- documents


def _xml_text(value: str) -> str:
    # Escaped, so the document stays well-formed where XML allows it; control
    # characters become references, which XML 1.0 forbids (the loose parser's case).
    text = escape(_SURROGATES.sub("?", value))
    return _FORBIDDEN.sub(lambda m: f"&#{ord(m[0])};", text)


def _nest(depth: int) -> str:
    return "<x>" * depth + "deep" + "</x>" * depth


def _title_and_id(item: dict, id_tag: str) -> tuple[str, str]:
    """The escaped title (with the stray-bytes mark if asked) and the id element."""
    title = _xml_text(item["title"]) + ("STRAY" if item["stray"] else "")
    ident = f"<{id_tag}>{_xml_text(item['id'])}</{id_tag}>" if item["id"] is not None else ""
    return title, ident


def rss_item(item: dict) -> str:
    title, guid = _title_and_id(item, "guid")
    return (f"<item><title>{title}</title>"
            f"<link>{_xml_text(item['link'])}</link>{guid}"
            f"<description>{_xml_text(item['summary'])}</description>"
            f"<pubDate>{_xml_text(item['date'])}</pubDate>"
            f"<enclosure url={quoteattr(_xml_text(item['image']))} type=\"image/jpeg\"/>"
            f"{_nest(item['depth'])}</item>")


def atom_entry(item: dict) -> str:
    title, ident = _title_and_id(item, "id")
    return (f"<entry><title type=\"text\">{title}</title>"
            f"<link href={quoteattr(_xml_text(item['link']))}/>{ident}"
            f"<summary type=\"html\">{_xml_text(item['summary'])}</summary>"
            f"<updated>{_xml_text(item['date'])}</updated>{_nest(item['depth'])}</entry>")


def xml_document(kind: str, items: list[dict], encoding: str) -> bytes:
    if kind == "rss":
        body = f"<rss version=\"2.0\"><channel><title>t</title>{''.join(map(rss_item, items))}" \
               "</channel></rss>"
    else:
        body = f"<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title>" \
               f"{''.join(map(atom_entry, items))}</feed>"
    data = f'<?xml version="1.0" encoding="{encoding}"?>{body}'.encode(
        encoding, errors="xmlcharrefreplace")
    # Two stray bytes of invalid UTF-8 where an item asked for them.
    return data.replace(b"STRAY", b"\xff\xfe" if encoding == "utf-8" else b"")


def json_item(item: dict) -> dict:
    out = {"url": item["link"], "title": item["title"], "content_text": item["summary"],
           "date_published": item["date"], "image": item["image"],
           "_deep": json.loads("[" * item["depth"] + "]" * item["depth"] or "null")}
    if item["id"] is not None:
        out["id"] = item["id"]
    return out


def json_document(items: list[dict]) -> bytes:
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": list(map(json_item, items))}
    return json.dumps(doc).encode()


def interleave(good: list[dict], hostile: list[dict]) -> list[dict]:
    """Each hostile item stands between good ones."""
    out = [good[0]]
    for bad, ok in zip(hostile, good[1:]):
        out += [bad, ok]
    return out


# ---------------------------------------------------------------- what every Article keeps


def assert_postable(articles) -> None:
    for a in articles:
        assert a.url.startswith(("http://", "https://")) and normalise_url(a.url)
        assert a.image is None or a.image.startswith(("http://", "https://"))
        for text in (a.item_id, a.title, a.summary, a.author or "", *a.categories):
            assert not _FORBIDDEN.search(text), repr(text[:80])
            text.encode("utf-8")
        assert a.item_id
        assert a.published is None or a.published.tzinfo == timezone.utc


def parse_or_feed_error(body: bytes):
    try:
        articles = parse(body, "hostile", BASE)
    except FeedError:
        return None
    assert_postable(articles)
    return articles


def good_titles(articles) -> list[str]:
    return [a.title for a in articles if a.item_id.startswith("good-")]


# ---------------------------------------------------------------- properties


@FAST
@given(kind=st.sampled_from(["rss", "atom"]), hostile=st.lists(hostile_items(), min_size=1,
                                                                 max_size=3),
       encoding=st.sampled_from(["utf-8", "utf-16", "iso-8859-1", "windows-1252"]))
def test_hostile_xml_items_keep_the_good_ones(kind, hostile, encoding):
    good = good_items(len(hostile) + 1)
    articles = parse(xml_document(kind, interleave(good, hostile), encoding), "hostile", BASE)
    assert_postable(articles)
    assert good_titles(articles) == [g["title"] for g in good]


@FAST
@given(hostile=st.lists(hostile_items(allow_surrogates=True), min_size=1, max_size=3))
def test_hostile_json_items_keep_the_good_ones(hostile):
    good = good_items(len(hostile) + 1)
    articles = parse(json_document(interleave(good, hostile)), "hostile", BASE)
    assert_postable(articles)
    assert good_titles(articles) == [g["title"] for g in good]


@FAST
@given(kind=st.sampled_from(["rss", "atom", "json"]), hostile=st.lists(hostile_items(),
                                                                         max_size=3),
       cut=st.integers(0, 10_000), noise=st.binary(max_size=40))
def test_damaged_documents_give_articles_or_feed_error(kind, hostile, cut, noise):
    items = interleave(good_items(len(hostile) + 1), hostile)
    body = json_document(items) if kind == "json" else xml_document(kind, items, "utf-8")
    parse_or_feed_error(body[:cut] + noise + body[cut:])
    parse_or_feed_error(body[:cut])


@FAST
@given(body=st.binary(max_size=300))
def test_any_bytes_give_articles_or_feed_error(body):
    parse_or_feed_error(body)
    parse_or_feed_error(b"<rss version=\"2.0\"><channel><item>" + body)
    parse_or_feed_error(b'{"version": "https://jsonfeed.org/version/1", "items": [' + body)


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["rss", "atom", "json-arrays", "json-objects"]),
       depth=st.integers(1_000, 100_000))
def test_deep_nesting_gives_articles_or_feed_error(kind, depth):
    if kind == "json-arrays":
        body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [' + (
            b"[" * depth + b"]" * depth) + b"]}"
    elif kind == "json-objects":
        body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [' + (
            b'{"a":' * depth + b"1" + b"}" * depth) + b"]}"
    else:
        item = dict(good_items(1)[0], depth=depth)
        body = xml_document(kind, [item], "utf-8")
    parse_or_feed_error(body)


@settings(max_examples=500, deadline=None)
@given(html=st.text())
def test_clean_text_shortcut_gives_what_the_html_parser_gives(html):
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    assert clean_text(html) == plain_text("".join(parser.parts))


def _web_url_the_long_way(base_url: str, url: str) -> str:
    """feedtext.web_url's answer without its shortcut for plain URLs."""
    url = url.strip().replace(" ", "%20")
    try:
        absolute = feedtext.urljoin(base_url, url)
        parts = feedtext.urlsplit(absolute)
        parts.port  # noqa: B018
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return absolute if feedtext._whatwg_url(url, base_url) and ada_url.check_url(absolute) else ""


@settings(max_examples=500, deadline=None)
@given(url=st.one_of(
    st.from_regex(r"\Ahttps?://[a-zA-Z0-9.-]{1,12}(/[\w.~%!$&'()*+,=:@/-]{0,12})?"
                  r"(\?[\w.~%=&?-]{0,8})?\Z"),
    st.from_regex(feedtext._PLAIN_URL, fullmatch=True)),
    base=st.sampled_from(["", "https://feeds.example/a/b.xml", "f", "http://[::1", "file:///x"]))
def test_the_plain_url_shortcut_gives_what_the_parsers_give(url, base):
    assert feedtext.web_url(base, url) == _web_url_the_long_way(base, url)
