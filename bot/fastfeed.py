"""A fast reader for plain RSS 2.0 and Atom 1.0 that gives what feedparser gives, or declines.

feedparser spends most of a 50-item feed in its Python SAX handlers and in
re-writing every description through its HTML sanitiser. Most feeds are
well-formed UTF-8 RSS 2.0 or Atom 1.0 whose items use a handful of elements;
for those, lxml finds the items in C and the fields are built here with
feedparser's own finishing steps (its URI join, date parser, sanitiser,
character fix-ups), so the entries are the ones feedparser would make.
``read`` returns None, and the caller uses feedparser, for anything outside
that subset: another format or encoding, a DOCTYPE (entities), xml:base, an
element or attribute in an item it does not model, a field given twice, markup
inside a field (Atom's xhtml), an author with an e-mail address, a link element
it would read differently from feedparser, malformed XML.

Entries are plain dicts with feedparser's keys, so bot.feeds builds Articles
from both the same way. ``Entry.cheap`` holds the id and link, known before the
costly fields: a caller that knows an item already never pays for the rest.
The feed-level links (``Feed.links``) carry WebSub's rel="hub" and rel="self".
"""
from __future__ import annotations

import re
from typing import NamedTuple
from feedparser.datetimes import _parse_date
from feedparser.mixin import _cp1252, _FeedParserMixin
from feedparser.sanitizer import _sanitize_html
from feedparser.urls import _urifixer, resolve_relative_uris
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
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
ALLOWED = {tag: None if attrs is None else frozenset(attrs)
           for tag, attrs in {**SINGLE, **REPEATED}.items()}
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
    """A feedparser-shaped entry; ``complete()`` adds the costly fields, and
    the summary and content unless ``texts=False`` (they cost the sanitiser,
    and only an item that may be posted needs them)."""

    def __init__(self, item, cheap: dict, costly=None, texts=None):
        super().__init__(cheap)
        self._item = item
        self._steps = [costly or _costly, texts or _texts]

    def complete(self, texts: bool = True) -> Entry:
        while self._steps and (texts or len(self._steps) == 2):
            self.update(self._steps.pop(0)(self._item))
        if not self._steps:
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
    # feedparser takes a plain "base" attribute for xml:base too
    if root is None or root.xpath("boolean(//@xml:base | //@base)"):
        return None
    if root.tag == "rss" and root.get("version") == "2.0":
        return _rss(root)
    if root.tag == f"{ATOM}feed" and not set(root.keys()) - {XML_LANG}:
        return _atom(root)
    return None


def _rss(root) -> Feed | None:
    channels = [child for child in root if child.tag == "channel"]
    if len(channels) != 1:
        return None
    items = [child for child in channels[0] if child.tag == "item"]
    return _built(root, channels[0], items, "item", _fields, (_cheap, _costly, _texts))


def _atom(root) -> Feed | None:
    entries = [child for child in root if child.tag == f"{ATOM}entry"]
    return _built(root, root, entries, f"{ATOM}entry", _atom_fields,
                  (_atom_cheap, _atom_costly, _atom_texts))


def _built(root, top, items: list, item_tag: str, fields_of, steps) -> Feed | None:
    """The Feed of ``items`` (children of ``top``), or None when anything in it
    is outside the subset. ``steps``: the cheap, costly and texts builders."""
    cheap, costly, texts = steps
    if sum(1 for _ in root.iter("{*}item", "{*}entry", "item", "entry")) != len(items):
        return None  # items elsewhere (RSS 0.9 style, Atom entries in RSS): feedparser reads those
    links = _feed_links(top, item_tag)
    if links is None:
        return None
    built = []
    for item in items:
        fields = fields_of(item)
        if fields is None:
            return None
        built.append(Entry(fields, cheap(fields), costly, texts))
    return Feed(built, links)


def _feed_links(top, item_tag: str) -> list[dict] | None:
    """The feed's (or channel's) atom:link elements as feedparser lists them;
    None when a link element with attributes sits anywhere else outside the
    items (in an image, or without the Atom namespace), where feedparser's
    reading varies."""
    links = []
    for child in top:
        if child.tag == item_tag:
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
    attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
    href = next((attrs[key] for key in ("url", "uri", "href") if key in attrs), None)
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    if "href" in attrs:
        attrs["href"] = _join(attrs["href"])
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
        tag = child.tag  # a comment or processing instruction (splits text) is no key here
        allowed = ALLOWED.get(tag, False) if isinstance(tag, str) else False
        if allowed is False or len(child) or (tag in SINGLE and tag in fields):
            return None
        keys = child.keys()
        if keys and allowed is not None and not allowed.issuperset(keys):
            return None
        fields.setdefault(tag, []).append(child)
    if "author" in fields and f"{DC}creator" in fields or item.keys():
        return None
    return fields


# ---------------------------------------------------------------- the fields


def _join(uri: str) -> str:
    """feedparser's ``_urljoin("", uri)``: with no base, only its repair of
    "http:///x" (urljoin("", uri) gives uri back); without its template
    substitution, which costs more than the rest of an item's id."""
    match = _urifixer.match(uri)
    return uri if match is None or not match[2] else match[1] + uri[match.end(2):]


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
        entry["id"] = _finish(_join(value) if is_link and value else value)
        if is_link:
            entry["link"] = entry["id"]
    link = _text(fields, "link")
    if link is not None:
        link = _finish(_join(link) if link else link)
        if "&" in link:
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


def _texts(fields: dict) -> dict:
    entry: dict = {}
    for tag in ("description", f"{CONTENT}encoded"):
        text = _text(fields, tag)
        if text is not None:
            value = _finish(_markup(text))
            entry.setdefault("summary", value)  # feedparser copies content to a missing summary
            if tag != "description":
                entry["content"] = [{"value": value}]
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
        attrs["url"] = _finish(_join(text))
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



# ---------------------------------------------------------------- Atom 1.0

# Entry children read here, once at most each, with the attributes allowed on them.
ATOM_SINGLE = {f"{ATOM}{tag}": attrs for tag, attrs in (
    ("title", ("type", XML_LANG)), ("summary", ("type", XML_LANG)),
    ("content", ("type", XML_LANG)), ("id", ()), ("published", ()), ("updated", ()),
    ("author", ()))}
ATOM_REPEATED = {f"{ATOM}link": ("rel", "href", "url", "uri", "type", "hreflang", "title", "length"),
                 f"{ATOM}category": ("term", "scheme", "label"),
                 f"{MEDIA}content": None, f"{MEDIA}thumbnail": None}
TEXT_TYPES = ("text/plain", "text/html")  # of title, summary, content; others decline
HTML_TYPES = ("text/html", "application/xhtml+xml")
_mapped = _FeedParserMixin.map_content_type  # "html" -> "text/html", as feedparser reads a type


def _atom_fields(entry) -> dict | None:
    """``entry``'s children by tag, or None when one is outside the subset."""
    if set(entry.keys()) - {XML_LANG}:
        return None
    fields: dict = {}
    for child in entry:
        tag = child.tag
        allowed = ATOM_SINGLE.get(tag, ATOM_REPEATED.get(tag, ())) if isinstance(tag, str) else ()
        if tag not in ATOM_SINGLE and tag not in ATOM_REPEATED:
            return None  # also comments and processing instructions
        if allowed is not None and any(key not in allowed for key in child.keys()):
            return None
        if (tag in ATOM_SINGLE and tag in fields) or not _atom_child_ok(tag, child):
            return None
        fields.setdefault(tag, []).append(child)
    return fields


def _atom_child_ok(tag: str, child) -> bool:
    if tag == f"{ATOM}author":
        return _author_name(child) is not None
    if len(child):
        return False
    if tag == f"{ATOM}link":
        return "href" in _link(child)  # without one feedparser reads the text instead
    if tag == f"{ATOM}category":
        return not (child.text or "").strip()
    if tag in (f"{ATOM}title", f"{ATOM}summary", f"{ATOM}content"):
        return _mapped(child.get("type") or "text") in TEXT_TYPES
    return True


def _author_name(author) -> str | None:
    """The name of an author with one name (and at most one uri), else None."""
    tags = [child.tag for child in author]
    if tags.count(f"{ATOM}name") != 1 or not set(tags) <= {f"{ATOM}name", f"{ATOM}uri"} \
            or tags.count(f"{ATOM}uri") > 1 or (author.text or "").strip():
        return None
    for child in author:
        if child.keys() or len(child):
            return None
    return (author.find(f"{ATOM}name").text or "").strip()


def _atom_cheap(fields: dict) -> dict:
    entry: dict = {"links": []}
    value = _text(fields, f"{ATOM}id")
    if value is not None:
        entry["id"] = entry["link"] = _finish(_join(value) if value else value)
    for element in fields.get(f"{ATOM}link", ()):
        link = _link(element)
        entry["links"].append(link)
        if link["rel"] == "alternate" and _mapped(link["type"]) in HTML_TYPES:
            entry["link"] = link["href"]  # the last HTML alternate wins, over the id
    return entry


def _atom_costly(fields: dict) -> dict:
    entry: dict = {}
    title = _text(fields, f"{ATOM}title")
    if title is not None:
        kind = _text_type(fields[f"{ATOM}title"][0])
        entry["title"] = _finish(_markup(title) if kind == "text/html" else title)
        entry["title_detail"] = {"type": kind}
    for tag, key in (("published", "published_parsed"), ("updated", "updated_parsed")):
        text = _text(fields, f"{ATOM}{tag}")
        if text is not None:
            entry[key] = _parse_date(_finish(text))
    author = fields.get(f"{ATOM}author")
    name = _author_name(author[0]) if author else None
    if name:  # feedparser keeps an author's name as written (no character fix-ups)
        entry["author"] = name
        entry["author_detail"] = {"name": name}
    entry["tags"] = [{"term": c.get("term")} for c in fields.get(f"{ATOM}category", ())]
    entry["media_content"] = [_attrs(m) for m in fields.get(f"{MEDIA}content", ())]
    entry["media_thumbnail"] = [_thumbnail(m) for m in fields.get(f"{MEDIA}thumbnail", ())]
    return entry


def _atom_texts(fields: dict) -> dict:
    entry: dict = {}
    for tag in ("summary", "content"):  # a summary wins over the content feedparser copies
        text = _text(fields, f"{ATOM}{tag}")
        if text is not None:
            html = _text_type(fields[f"{ATOM}{tag}"][0]) == "text/html"
            value = _finish(_markup(text) if html else text)
            entry.setdefault("summary", value)
            if tag == "content":
                entry["content"] = [{"value": value}]
    return entry


def _text_type(element) -> str:
    return _mapped(element.get("type") or "text")
