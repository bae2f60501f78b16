"""bot/fastfeed.py: on every feed it reads, the same Articles as feedparser, or a
decline. Checked on the golden files, the hostile RSS and Atom documents of
test_feeds_properties, and generated well-formed RSS 2.0 and Atom 1.0 (entities,
HTML, unicode, CDATA, dates in many formats, links, authors, WebSub links);
plus the claim behind its sanitiser shortcut, and the ``known`` hook that skips items the caller has seen."""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from feedparser.sanitizer import _sanitize_html
from feedparser.urls import resolve_relative_uris
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import fastfeed
from bot.errors import FeedError
from bot.feeds import parse, read
from test_feeds_properties import good_items, hostile_items, interleave, xml_document

DATA = Path(__file__).parent / "data" / "feeds"
BASE = "https://feeds.example/feed.xml"
MANY = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def both(body: bytes, headers=None):
    """(fast path taken?, what the fast path reads, what feedparser reads):
    Articles, hub and topic (bot.feeds.Parsed), or the FeedError's reason."""
    def run(fast):
        try:
            return read(body, "f", BASE, headers, fast=fast)
        except FeedError as exc:
            return exc.reason
    return fastfeed.read(body) is not None, run(True), run(False)


@pytest.mark.parametrize("path", sorted(DATA.glob("*")), ids=lambda p: p.name)
def test_golden_files_are_equal_or_declined(path):
    _taken, fast, slow = both(path.read_bytes())
    assert fast == slow


def test_the_golden_rss_goes_the_fast_way():
    taken, fast, slow = both((DATA / "rss20.xml").read_bytes())
    assert taken and fast == slow and len(fast.articles) >= 3


@pytest.mark.parametrize("body", [
    b'<rss version="2.0"><channel><item><title>a<!-- c -->b</title>'
    b'<link>https://a.example/</link></item></channel></rss>',
    b'<!DOCTYPE rss [<!ENTITY x "y">]><rss version="2.0"><channel><item><title>&x;</title>'
    b'<link>https://a.example/</link></item></channel></rss>',
    b'<rss version="2.0" xml:base="https://b.example/"><channel><item>'
    b'<link>/x</link></item></channel></rss>',
    b'<rss version="2.0"><channel><item base="https://b.example/"><guid>/x</guid>'
    b'<link>/x</link></item></channel></rss>',
    b'<rss version="2.0"><channel><item><title>a</title><title>b</title></item></channel></rss>',
    b'<rss version="2.0"><channel><item><atom:link xmlns:atom="http://www.w3.org/2005/Atom" '
    b'href="https://a.example/"/></item></channel></rss>',
    b'<rss version="2.0"><channel><item><description><p>x</p></description></item>'
    b'</channel></rss>',
    b'<rss version="0.91"><channel><item><link>https://a.example/</link></item></channel></rss>',
    b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><item>'
    b'<title>caf\xe9</title><link>https://a.example/</link></item></channel></rss>',
    b'<rss version="2.0"><channel><item><link>https://a.example/</link></item>',
], ids=["comment", "doctype", "xml-base", "base", "twice", "atom-link", "markup", "rss091",
        "latin1", "malformed"])
def test_what_it_does_not_model_is_declined(body):
    assert fastfeed.read(body) is None
    _taken, fast, slow = both(body)
    assert fast == slow


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile=st.lists(hostile_items(), min_size=1, max_size=3),
       kind=st.sampled_from(["rss", "atom"]))
def test_hostile_documents_are_equal_or_declined(hostile, kind):
    body = xml_document(kind, interleave(good_items(len(hostile) + 1), hostile), "utf-8")
    _taken, fast, slow = both(body)
    assert fast == slow


# ---------------------------------------------------------------- generated well-formed RSS

words = st.sampled_from(["Storm", "floods", "Tom & Jerry", "<blink>", "caf\u00e9", "\u65b0\u805e",
                         "\U0001f600", "a > b", "\"quoted\"", "it's", "&amp;", "&copy;", "\u00c3\u00a9",
                         "\u0080\u0099", "  ", "x\ty", "1 < 2", "&#8217;", "naïve"])
xml_chars = st.characters(min_codepoint=0x20, blacklist_categories=["Cs"],
                          blacklist_characters="\ufffe\uffff")
text = st.lists(st.one_of(words, st.text(xml_chars, max_size=8)), max_size=6).map(" ".join)
urls = st.sampled_from(["https://news.example/a", "http://news.example/a/b.html?x=1&y=2",
                        "/relative/path", "news-1", "https://news.example/a b",
                        "HTTPS://NEWS.EXAMPLE/Up", "urn:uuid:1", "https://news.example/a?x=&amp;",
                        "http:///triple", "https://news.example/%7Efoo", ""])
html = st.recursive(
    text.map(escape),
    lambda inner: st.one_of(
        st.builds("<p>{}</p>".format, inner), st.builds("<b>{}</b>".format, inner),
        st.builds("<em>{}</em>".format, inner), st.builds("{}<br>{}".format, inner, inner),
        st.builds("{}<br />{}".format, inner, inner),
        st.builds('<a href="{}">{}</a>'.format, urls, inner),
        st.builds("<img src={} alt='x'>".format, urls.map(quoteattr)),
        st.builds('<img src="{}" />'.format, urls),
        st.builds("<script>{}</script>".format, inner),
        st.builds('<span style="color:red" onclick="x()">{}</span>'.format, inner),
        st.builds("{}{}".format, inner, inner), st.builds("<ul><li>{}</li></ul>".format, inner),
        st.builds("<p>{}".format, inner)),
    max_leaves=6)
dates = st.sampled_from(["Thu, 26 Nov 2026 14:05:00 +0200", "Wed, 25 Nov 2026 20:00:00 GMT",
                         "2026-11-26T14:05:00Z", "2026-11-26", "26 Nov 2026 14:05 EST",
                         "Thursday, 26-Nov-26 14:05:00 GMT", "not a date", "",
                         "Thu, 26 Nov 2026 14:05:00 +0000 (UTC)", "2026-11-26T14:05:00.123+05:30"])


def element(tag: str, value: str, cdata: bool) -> str:
    body = f"<![CDATA[{value}]]>" if cdata and "]]>" not in value else escape(value)
    return f"<{tag}>{body}</{tag}>"


def media(draw) -> list[str]:
    """Maybe a media:content and a media:thumbnail, as RSS items and Atom entries carry them."""
    parts = []
    if draw(st.booleans()):
        medium = draw(st.sampled_from(['medium="image"', 'type="image/jpeg"', 'medium="video"', ""]))
        parts.append(f"<media:content url={quoteattr(draw(urls))} {medium}/>")
    if draw(st.booleans()):
        parts.append(f"<media:thumbnail url={quoteattr(draw(urls))}/>")
    return parts


@st.composite
def items(draw) -> str:
    cdata = draw(st.booleans())
    parts = []
    if draw(st.booleans()):
        parts.append(element("title", draw(st.one_of(text, html)), cdata))
    if draw(st.booleans()):
        parts.append(element("link", draw(urls), False))
    if draw(st.booleans()):
        permalink = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"',
                                          ' isPermaLink="True"']))
        parts.append(f"<guid{permalink}>{escape(draw(urls))}</guid>")
    for tag in ("description", "content:encoded"):
        if draw(st.booleans()):
            parts.append(element(tag, draw(html), cdata))
    if draw(st.booleans()):
        parts.append(element(draw(st.sampled_from(["pubDate", "dc:date"])), draw(dates), False))
    for term in draw(st.lists(text, max_size=3)):
        parts.append(element("category", term, cdata))
    if draw(st.booleans()):
        parts.append(element(draw(st.sampled_from(["author", "dc:creator"])),
                             draw(st.sampled_from(["Jo Smith", "desk@news.example (Desk)",
                                                   "jo@news.example", "<b>Jo</b>", "(Jo)"])),
                             False))
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["image/png", "IMAGE/JPEG", "audio/mpeg"]))
        parts.append(f"<enclosure url={quoteattr(draw(urls))} type={quoteattr(kind)} length=\"1\"/>")
    parts += media(draw)
    order = draw(st.permutations(parts))
    return "<item>" + "".join(order) + "</item>"


hub_urls = st.sampled_from(["https://hub.example/", "http://pubsubhubbub.appspot.com",
                            "/hub", "ftp://hub.example/", "", " https://hub.example/x ",
                            "https://news.example/feed.xml?a=1&b=2", "https://[bad/"])


@st.composite
def channel_links(draw) -> str:
    """atom:link elements of a channel: hub, self and others, in many spellings."""
    out = []
    for _ in range(draw(st.integers(0, 4))):
        rel = draw(st.sampled_from(["hub", "self", "HUB", "Self", "alternate", None]))
        key = draw(st.sampled_from(["href", "href", "url", "uri", "HREF"]))
        attrs = ("" if rel is None else f" rel={quoteattr(rel)}") + f" {key}={quoteattr(draw(hub_urls))}"
        if draw(st.booleans()):
            attrs += ' type="application/rss+xml"'
        out.append(f"<atom:link{attrs}/>")
    return "".join(out)


def rss_document(item_list, head: str = "") -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">'
            '<channel><title>t</title><link>https://news.example/</link>' + head
            + "".join(item_list) + "</channel></rss>").encode("utf-8")


@MANY
@given(item_list=st.lists(items(), max_size=4))
def test_generated_rss_is_equal_or_declined(item_list):
    taken, fast, slow = both(rss_document(item_list))
    assert fast == slow
    assert taken  # every generated document is inside the subset the fast path reads


@MANY
@given(head=channel_links(), item_list=st.lists(items(), max_size=2))
def test_generated_websub_links_are_read_alike(head, item_list):
    taken, fast, slow = both(rss_document(item_list, head))
    assert fast == slow
    assert taken  # every generated document is inside the subset the fast path reads


# ---------------------------------------------------------------- generated well-formed Atom

text_types = st.sampled_from([None, "text", "html", "HTML", "text/html", "text/plain"])


def atom_text(tag: str, draw) -> str:
    kind = draw(text_types)
    value = draw(html) if kind and "html" in kind.lower() else draw(st.one_of(text, html))
    attr = "" if kind is None else f" type={quoteattr(kind)}"
    return f"<{tag}{attr}>{escape(value)}</{tag}>"


@st.composite
def atom_links(draw) -> str:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        rel = draw(st.sampled_from([None, "alternate", "enclosure", "related", "self", "ALTERNATE"]))
        kind = draw(st.sampled_from([None, "text/html", "image/png", "IMAGE/JPEG", "application/pdf",
                                     "xhtml", "html"]))
        url = draw(urls)
        key = draw(st.sampled_from(["href", "href", "url", "uri"])) if url else "href"
        attrs = f" {key}={quoteattr(url)}"  # an empty url= is no href: feedparser reads text
        attrs += "" if rel is None else f" rel={quoteattr(rel)}"
        attrs += "" if kind is None else f" type={quoteattr(kind)}"
        out.append(f"<link{attrs}/>")
    return "".join(out)


@st.composite
def atom_entries(draw) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(atom_text("title", draw))
    if draw(st.booleans()):
        parts.append(f"<id>{escape(draw(urls))}</id>")
    parts.append(draw(atom_links()))
    for tag in ("summary", "content"):
        if draw(st.booleans()):
            parts.append(atom_text(tag, draw))
    for tag in ("published", "updated"):
        if draw(st.booleans()):
            parts.append(f"<{tag}>{escape(draw(dates))}</{tag}>")
    if draw(st.booleans()):
        name = draw(st.sampled_from(["Jo Smith", "jo@news.example", "<b>Jo</b>", "", "  Jo  ",
                                     "caf\u00c3\u00a9 \u0080"]))
        uri = f"<uri>{escape(draw(urls))}</uri>" if draw(st.booleans()) else ""
        parts.append(f"<author><name>{escape(name)}</name>{uri}</author>")
    for term in draw(st.lists(text, max_size=3)):
        label = ' label="L"' if draw(st.booleans()) else ""
        parts.append(f"<category term={quoteattr(term)}{label}/>")
    parts += media(draw)
    return "<entry>" + "".join(draw(st.permutations(parts))) + "</entry>"


def atom_document(entries, head: str = "") -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:media="http://search.yahoo.com/mrss/" xml:lang="en"><title>t</title>'
            '<id>urn:feed</id><updated>2026-11-26T10:00:00Z</updated>' + head
            + "".join(entries) + "</feed>").encode("utf-8")


@MANY
@given(entries=st.lists(atom_entries(), max_size=4), head=channel_links())
def test_generated_atom_is_equal_or_declined(entries, head):
    taken, fast, slow = both(atom_document(entries, head.replace("atom:link", "link")))
    assert fast == slow
    assert taken  # every generated document is inside the subset the fast path reads


def test_the_golden_atom_without_xml_base_goes_the_fast_way():
    taken, fast, slow = both((DATA / "atom-plain.xml").read_bytes())
    assert taken and fast == slow and len(fast.articles) == 3
    assert fast.hub == "https://hub.harbour.example/"


@pytest.mark.parametrize("entry", [
    '<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></title></entry>',
    '<entry><content src="https://a.example/x"/></entry>',
    '<entry><author><name>a</name><email>a@b.example</email></author></entry>',
    '<entry><author><name>a</name></author><author><name>b</name></author></entry>',
    '<entry><contributor><name>a</name></contributor></entry>',
    '<entry><source><title>s</title></source></entry>',
    '<entry><link>https://a.example/</link></entry>',
    '<entry><category term="a">text</category></entry>',
    '<entry><title type="application/json">x</title></entry>',
    '<entry base="https://b.example/"><link href="/x"/></entry>',
    '<entry><summary>a</summary><summary>b</summary></entry>',
], ids=["xhtml", "src", "email", "two-authors", "contributor", "source", "link-text",
        "category-text", "other-type", "base", "twice"])
def test_atom_it_does_not_model_is_declined(entry):
    body = atom_document([entry])
    assert fastfeed.read(body) is None
    _taken, fast, slow = both(body)
    assert fast == slow


def test_hub_and_self_are_read_on_both_paths():
    head = ('<atom:link rel="self" href="https://news.example/rss"/>'
            '<atom:link rel="hub" href="https://hub.example/"/>'
            '<atom:link rel="hub" href="https://second.example/"/>')
    taken, fast, slow = both(rss_document([], head))
    assert taken and fast == slow
    assert (fast.hub, fast.topic) == ("https://hub.example/", "https://news.example/rss")


@pytest.mark.parametrize("head", [
    '<link rel="hub" href="https://hub.example/"/>',
    '<image><url>https://i.example/a.png</url><atom:link rel="hub" href="https://h.example/"/>'
    '</image>',
    '<x:link xmlns:x="https://other.example/" rel="hub" href="https://h.example/"/>',
], ids=["plain-link", "in-image", "other-namespace"])
def test_links_feedparser_reads_its_own_way_are_declined(head):
    body = rss_document([], head)
    assert fastfeed.read(body) is None
    _taken, fast, slow = both(body)
    assert fast == slow


# ---------------------------------------------------------------- the sanitiser shortcut

safe_urls = st.from_regex(r"https?://[a-z]{1,5}\.example(/[a-z0-9_~-]{1,6}(\.[a-z]{1,4})?){0,3}/?",
                          fullmatch=True)
safe_text = st.text(st.characters(blacklist_characters="<>&\"'", blacklist_categories=["Cs"],
                                  min_codepoint=0x20), max_size=10).map(
    lambda t: "".join(c for c in t if not 0x7f <= ord(c) <= 0x9f))
safe_html = st.recursive(
    st.one_of(safe_text, st.sampled_from(["&amp;", "&lt;", "&gt;", "<br />", "\n", "\t"])),
    lambda inner: st.one_of(
        st.builds("{}{}".format, inner, inner),
        st.builds("<{0}>{1}</{0}>".format, st.sampled_from(["p", "b", "i", "em", "strong",
                                                            "li", "h2", "blockquote"]), inner),
        st.builds('<a href="{}">{}</a>'.format, safe_urls, inner),
        st.builds('<img alt="{}" src="{}" />'.format, safe_text, safe_urls),
        st.builds('<img src="{}" />'.format, safe_urls)),
    max_leaves=8)


@MANY
@given(fragment=st.one_of(safe_html, html))
def test_the_shortcut_is_taken_only_where_feedparser_changes_nothing(fragment):
    fragment = fragment.strip()
    through = _sanitize_html(resolve_relative_uris(fragment, "", "utf-8", "text/html"),
                             "utf-8", "text/html")
    assert fastfeed._markup(fragment) == through


# ---------------------------------------------------------------- the known hook


def test_known_items_are_left_out_and_not_completed():
    body = rss_document([f"<item><guid>id-{n}</guid><link>https://a.example/{n}</link>"
                         f"<title>t{n}</title></item>" for n in range(5)])
    asked = []

    def known(ids):
        asked.append(list(ids))
        return {"id-1", "id-3"}
    for fast in (True, False):
        articles = parse(body, "f", BASE, known=known, fast=fast)
        assert [a.item_id for a in articles] == ["id-0", "id-2", "id-4"]
        assert [a.title for a in articles] == ["t0", "t2", "t4"]
    assert asked == [[f"id-{n}" for n in range(5)]] * 2
    entries = fastfeed.read(body).entries
    assert all(e._item is not None and "title" not in e for e in entries)


def test_a_huge_author_without_an_at_sign_costs_no_regex_time():
    import time

    from bot.fastfeed import _author_detail
    began = time.monotonic()
    assert _author_detail("A" * 200_000) == {"name": "A" * 200_000}
    assert time.monotonic() - began < 1.0   # the regex took minutes here


@pytest.mark.parametrize("atom", [False, True], ids=["rss", "atom"])
def test_only_wanted_items_get_their_summary(atom):
    if atom:
        body = atom_document([f'<entry><id>id-{n}</id><link href="https://a.example/{n}"/>'
                              f'<title>t{n}</title><summary type="html">&lt;p&gt;s{n} '
                              f'&lt;script&gt;x&lt;/script&gt;&lt;/p&gt;</summary></entry>'
                              for n in range(4)])
    else:
        body = rss_document([f"<item><guid>id-{n}</guid><link>https://a.example/{n}</link>"
                             f"<title>t{n}</title><description>&lt;p&gt;s{n} &lt;script&gt;x"
                             f"&lt;/script&gt;&lt;/p&gt;</description></item>" for n in range(4)])
    offered = []

    def wanted(articles):
        offered.append([(a.item_id, a.summary) for a in articles])
        return {"id-2"}
    some = read(body, "f", BASE, wanted=wanted).articles
    whole = parse(body, "f", BASE)
    assert offered == [[(f"id-{n}", "") for n in range(4)]]
    assert some[2] == whole[2] and whole[2].summary == "<p>s2 </p>"
    assert [a.summary for a in some] == ["", "", "<p>s2 </p>", ""]
    assert [a.__class__(**{**vars(a), "summary": ""}) for a in whole] == \
        [a.__class__(**{**vars(a), "summary": ""}) for a in some]


@MANY
@given(uri=st.one_of(urls, st.text(max_size=20), st.builds("{}:{}{}".format, st.sampled_from(
    ["http", "https", "HTTP", "a+b-c.d", "1x"]), st.sampled_from(["", "/", "//", "///", "////"]),
    st.text(max_size=10))))
def test_join_is_feedparsers_urljoin_without_a_base(uri):
    from feedparser.urls import _urljoin
    assert fastfeed._join(uri) == _urljoin("", uri)
