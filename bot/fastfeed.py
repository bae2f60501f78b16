"""A fast reader for plain RSS 2.0 that gives what feedparser gives, or declines.

feedparser spends most of a 50-item feed in its Python SAX handlers and in
re-writing every description through its HTML sanitiser. Most feeds are
well-formed UTF-8 RSS 2.0 whose items use a handful of elements; for those,
lxml finds the items in C and the fields are built here with feedparser's own
finishing steps (its URI join, date parser, sanitiser, character fix-ups), so
the entries are the ones feedparser would make. ``entries`` returns None, and
the caller uses feedparser, for anything outside that subset: another format
or encoding, a DOCTYPE (entities), xml:base, an element or attribute in an
item it does not model, a field given twice, markup inside a field, an author
with an e-mail address, malformed XML.

Entries are plain dicts with feedparser's keys, so bot.feeds builds Articles
from both the same way. ``Entry.cheap`` holds the id and link, known before the
costly fields: a caller that knows an item already never pays for the rest.
"""
from __future__ import annotations

import re
from typing import NamedTuple
from feedparser.datetimes import _parse_date
from feedparser.mixin import _cp1252, _FeedParserMixin
from feedparser.sanitizer import _sanitize_html
from feedparser.urls import _urljoin, resolve_relative_uris
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
# Item children read here, once at most each, with the attributes allowed on them.
SINGLE = {"title": (), "link": (), "description": (), "guid": ("isPermaLink",),
          "pubDate": (), "author": (), "comments": (), f"{CONTENT}encoded": (),
          f"{DC}creator": (), f"{DC}date": ()}
# Children that may repeat; None allows any attribute (they are copied as feedparser does).
REPEATED = {"category": ("domain",), "enclosure": ("url", "length", "type"),
            f"{MEDIA}content": None, f"{MEDIA}thumbnail": None}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          remove_comments=False, strip_cdata=True)
_AUTHOR_EMAIL = re.compile(  # feedparser's, as written there
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
# An HTML fragment feedparser's relative-URI pass and sanitiser give back unchanged
# (tests/test_fastfeed.py holds that claim against both on generated fragments).
# Atomic groups and possessive quantifiers: no backtracking, linear in the text.
_URL = r'https?://[A-Za-z0-9.-]++(?>/(?>[A-Za-z0-9_~%-]++(?>\.[A-Za-z0-9_~%-]++)*+)?+)*+'
_TEXT = r'(?>[^<>&"\'\x00-\x08\x0b-\x1f\x7f-\x9f]++|&(?>amp|lt|gt);)'
_TAG = (r'</?(?:p|b|i|em|strong|ul|ol|li|blockquote|h[1-6])>|<br />'
        rf'|<a href="{_URL}">|</a>|<img (?:alt="[^<>&"\'\x00-\x1f\x7f-\x9f]*" )?src="{_URL}" />')
_SAFE_HTML = re.compile(rf'(?>{_TEXT}|{_TAG})*+')
_OPEN_CLOSE = re.compile(r'<(/?)([a-z0-9]+)[ >]')


class Entry(dict):
    """A feedparser-shaped entry; ``complete()`` adds the costly fields."""

    def __init__(self, item, cheap: dict):
        super().__init__(cheap)
        self._item = item

    def complete(self) -> Entry:
        if self._item is not None:
            self.update(_costly(self._item))
            self._item = None
        return self


class Feed(NamedTuple):
    """A document the fast path read: its entries, and the feed-level links
    (feedparser's ``feed.links``) where WebSub's hub and self are found."""

    entries: list[Entry]
    links: list[dict]


def read(body: bytes) -> Feed | None:
    """``body``'s items as feedparser entries, with only the cheap fields
    filled, and its links; None when the fast path does not fully understand
    the document."""
    root = _root(body)
    if root is None or root.tag != "rss" or root.get("version") != "2.0":
        return None
    channels = [child for child in root if child.tag == "channel"]
    if len(channels) != 1 or root.xpath("boolean(//@xml:base)"):
        return None
    items = [child for child in channels[0] if child.tag == "item"]
    if sum(1 for _ in root.iter("{*}item", "{*}entry", "item", "entry")) != len(items):
        return None  # items elsewhere (RSS 0.9 style, Atom entries): feedparser reads those
    links = _channel_links(channels[0])
    if links is None:
        return None
    built = []
    for item in items:
        fields = _fields(item)
        if fields is None:
            return None
        built.append(Entry(fields, _cheap(fields)))
    return Feed(built, links)


def _channel_links(channel) -> list[dict] | None:
    """The channel's atom:link elements as feedparser lists them; None when a
    link element with attributes sits anywhere else outside the items (in an
    image, or without the Atom namespace), where feedparser's reading varies."""
    links = []
    for child in channel:
        if child.tag == "item":
            continue
        for element in child.iter():
            tag = element.tag
            if not isinstance(tag, str) or not (tag == "link" or tag.endswith("}link")):
                continue
            if element is child and tag == f"{ATOM}link" and not len(element):
                links.append(_link(element))
            elif element.keys():
                return None
    return links


def _link(element) -> dict:
    """An Atom link as feedparser's ``_start_link`` records it (href from url,
    uri or href, in that order; rel "alternate" when absent)."""
    attrs = _attrs(element)
    attrs.setdefault("rel", "alternate")
    href = next((attrs[key] for key in ("url", "uri", "href") if key in attrs), None)
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    if "href" in attrs:
        attrs["href"] = _urljoin("", attrs["href"])
    return attrs


def _root(body: bytes):
    try:
        tree = etree.fromstring(body, _PARSER).getroottree()
    except (etree.XMLSyntaxError, ValueError):
        return None
    info = tree.docinfo
    encoding = (info.encoding or "utf-8").lower().replace("-", "")
    if info.doctype or info.internalDTD is not None or encoding != "utf8":
        return None
    return tree.getroot()


def _fields(item) -> dict | None:
    """``item``'s children by tag, or None when one is outside the subset."""
    fields: dict = {}
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            return None  # a comment or processing instruction splits text in two
        allowed = SINGLE.get(tag, REPEATED.get(tag, ()))
        if tag not in SINGLE and tag not in REPEATED:
            return None
        if allowed is not None and any(key not in allowed for key in child.keys()):
            return None
        if len(child) or (tag in SINGLE and tag in fields):
            return None
        fields.setdefault(tag, []).append(child)
    if "author" in fields and f"{DC}creator" in fields or item.keys():
        return None
    return fields


# ---------------------------------------------------------------- the fields


def _finish(text: str | None) -> str:
    """What feedparser's ``pop`` does to every text after the markup passes:
    the UTF-8-read-as-Latin-1 repair and the Windows-1252 code points."""
    text = text or ""
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_cp1252)


def _text(fields: dict, tag: str) -> str | None:
    found = fields.get(tag)
    return None if found is None else (found[0].text or "").strip()


def _cheap(fields: dict) -> dict:
    entry: dict = {"links": []}
    guid = fields.get("guid")
    if guid is not None:
        is_link = guid[0].get("isPermaLink", "true") == "true"
        value = _text(fields, "guid")
        entry["id"] = _finish(_urljoin("", value) if is_link and value else value)
        if is_link:
            entry["link"] = entry["id"]
    link = _text(fields, "link")
    if link is not None:
        link = _finish(_urljoin("", link) if link else link)
        link = _LINK_ENTITY.sub(r"&\g<1>", link.replace("&amp;", "&"))
        entry["links"].append({"rel": "alternate", "type": "text/html"})
        if link:
            entry["links"][-1]["href"] = link
        entry["link"] = link
    for enclosure in fields.get("enclosure", ()):
        attrs = _attrs(enclosure)
        if attrs.get("url"):
            attrs["href"] = attrs.pop("url")
        entry["links"].append({**attrs, "rel": "enclosure"})
    return entry


def _costly(fields: dict) -> dict:
    entry: dict = {}
    title = _text(fields, "title")
    if title is not None:
        html = _FeedParserMixin.looks_like_html(title)
        entry["title"] = _finish(_markup(title) if html else title)
        entry["title_detail"] = {"type": "text/html" if html else "text/plain"}
    texts = [(tag, _text(fields, tag)) for tag in ("description", f"{CONTENT}encoded")]
    for tag, text in texts:
        if text is not None:
            key = "summary" if tag == "description" else "content"
            value = _finish(_markup(text))
            entry.setdefault("summary", value)  # feedparser copies content to a missing summary
            if key == "content":
                entry["content"] = [{"value": value}]
    _dates(fields, entry)
    author = _text(fields, "author") if "author" in fields else _text(fields, f"{DC}creator")
    if author:
        entry["author"] = _finish(author)
        entry["author_detail"] = _author_detail(entry["author"])
    entry["tags"] = [{"term": _finish(t)} for t in
                     ((c.text or "").strip() for c in fields.get("category", ())) if t]
    entry["media_content"] = [_attrs(m) for m in fields.get(f"{MEDIA}content", ())]
    entry["media_thumbnail"] = [_thumbnail(m) for m in fields.get(f"{MEDIA}thumbnail", ())]
    return entry


def _author_detail(author: str) -> dict:
    """feedparser's split of an RSS author into name and e-mail (its ``_sync_author_detail``)."""
    # The regex is quadratic on a long author; without an "@" it cannot match.
    match = _AUTHOR_EMAIL.search(author) if "@" in author else None
    if not match:
        return {"name": author}
    email = match.group(0)
    for junk in (email, "()", "<>", "&lt;&gt;"):
        author = author.replace(junk, "")
    author = author.strip()
    author = author[1:] if author[:1] == "(" else author
    author = author[:-1] if author[-1:] == ")" else author
    author = author.strip()
    return {"name": author, "email": email} if author else {"email": email}


def _dates(fields: dict, entry: dict) -> None:
    for tag, key in (("pubDate", "published_parsed"), (f"{DC}date", "updated_parsed")):
        text = _text(fields, tag)
        if text is not None:
            entry[key] = _parse_date(_finish(text))


def _thumbnail(element) -> dict:
    attrs = _attrs(element)
    text = (element.text or "").strip()
    if text and "url" not in attrs:
        attrs["url"] = _finish(_urljoin("", text))
    return attrs


def _attrs(element) -> dict:
    # feedparser lower-cases attribute names, and the values of rel and type
    return {k.lower(): (v.lower() if k.lower() in ("rel", "type") else v)
            for k, v in element.items()}


def _markup(html: str) -> str:
    """``html`` through feedparser's relative-URI pass and sanitiser, skipped
    when it is already in the form they give back."""
    if _SAFE_HTML.fullmatch(html) and _balanced(html):
        return html
    html = resolve_relative_uris(html, "", "utf-8", "text/html")
    return _sanitize_html(html, "utf-8", "text/html")


def _balanced(html: str) -> bool:
    stack = []
    for closing, tag in _OPEN_CLOSE.findall(html):
        if tag in ("br", "img"):
            continue
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            return False
    return not stack

