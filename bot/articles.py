"""Find an article's lead: its real opening paragraph, never page furniture.

The lead comes from the feed's summary/content or, when that is too thin, from
the article page: trafilatura extracts the body, ``bot.furniture`` drops the
furniture it keeps, and a few checks against the page itself recover an
opening trafilatura lost.

Nothing here reaches the network: ``LeadFinder`` is handed a ``fetch_page``.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import ada_url
import trafilatura
from lxml import etree
from publicsuffixlist import PublicSuffixList

from bot.errors import FeedError
from bot.furniture import (BREAK, clean_blocks, continues_earlier, first_lead, is_prose,
                           lead_from_text, looks_cut, normalise, strip_masthead, strip_title,
                           word_count)
from bot.models import Article

log = logging.getLogger(__name__)

MODES = ("auto", "always", "never")
AUTO_MIN_WORDS = 12      # "auto" trusts the feed's text from this length on
_WORD = re.compile(r"\w+")


# ---- choosing the page's lead --------------------------------------------------------------

def _page_lead(tree, blocks: list[tuple[str, bool]], titles: list[str],
               description: str | None) -> str:
    """The page's first prose block, unless the extractor plainly lost the opening:
    text sitting loose at the top of the body's own container (see
    ``_lost_opening``), or a description that is not in the body while it was
    cut from a longer text ("...") or the body's first block cannot open an
    article ("In addition to ..."). A cut description is completed from the
    page when a paragraph there starts with the same words."""
    lost = _lost_opening(tree, blocks, titles)
    if lost:
        return lost
    lead = first_lead(blocks)
    description = normalise(description or "")
    if not is_prose(description, AUTO_MIN_WORDS) or _in_body(description, blocks):
        return lead
    if _was_cut(description):
        return _completed(tree, description) or description
    return description if continues_earlier(lead) else lead


def _was_cut(text: str) -> bool:
    """Ends in "..." after a sentence of some length (a CMS cut it), not a teaser
    that uses ellipses for effect."""
    ellipses = text.count("...") + text.count("…")
    return looks_cut(text) and ellipses == 1 and word_count(text) >= 20


def _in_body(text: str, blocks: list[tuple[str, bool]], n: int = 8) -> bool:
    """``text`` shares a run of ``n`` words with the first blocks (it was taken from them)."""
    def grams(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    body = grams(_WORD.findall(" ".join(block for block, _ in blocks[:8]).lower()))
    return bool(grams(_WORD.findall(text.lower())) & body)


# ---- openings the extractor lost -----------------------------------------------------------
# trafilatura keeps text in <p> and text after a block inside a container, but
# drops text sitting loose at the very start of a <div> or <section> (no <p>).

_CONTAINERS = ("div", "section", "article", "main", "td")
_INLINE = {"a", "abbr", "b", "cite", "em", "font", "i", "mark", "q", "small", "span", "strong",
           "sub", "sup", "time", "u"}


def _lost_opening(tree, blocks: list[tuple[str, bool]], titles: list[str]) -> str:
    """Prose that opens a container whose later text (loose, or its first
    paragraphs) the extractor kept among the first blocks, while it dropped this
    opening: the lost first paragraph."""
    kept = {_key(text) for text, _ in blocks[:8]}
    for el in tree.iter(*_CONTAINERS):
        if not (el.text or "").strip():
            continue    # the common case, and cheap: nothing loose at the start
        first, *later = _loose_runs(el)
        later += [normalise(p.text_content()) for p in el.iterchildren("p")][:3]
        if later and _key(first) not in kept and any(_key(run) in kept for run in later):
            if clean_blocks([(first, True)], titles) and is_prose(first, AUTO_MIN_WORDS):
                return first
    return ""


def _loose_runs(el) -> list[str]:
    """Paragraphs of text sitting directly in ``el`` (its own text, inline
    children and tails), split at <br> and at block children."""
    runs, current = [], [el.text or ""]
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in _INLINE:
            current.append(child.text_content())
        elif tag and tag not in ("script", "style"):
            runs.append("".join(current))
            current = []
        current.append(child.tail or "")
    runs.append("".join(current))
    return [run for run in map(normalise, runs) if run] or [""]


def _completed(tree, cut: str) -> str:
    """The page's paragraph that ``cut`` ("Apple plans to ...") was cut from: it
    starts with all of cut's words but the last, which may be cut in half."""
    start = _WORD.findall(cut.lower())[:-1]
    if not start:
        return ""
    for el in tree.iter("p", *_CONTAINERS):
        texts = [normalise(el.text_content())] if el.tag == "p" else _loose_runs(el)
        for text in texts:
            if _WORD.findall(text.lower())[:len(start)] == start and len(text) > len(cut):
                return text
    return ""


def _key(text: str, n: int = 8) -> str:
    """The first ``n`` words, lower-cased: how a paragraph is recognised elsewhere."""
    return " ".join(_WORD.findall(text.lower())[:n])


# ---- article pages -------------------------------------------------------------------------

@dataclass(frozen=True)
class PageInfo:
    """What an article page tells us. ``lead`` is "" when the page has no real lead."""

    lead: str
    title: str | None
    image: str | None
    canonical_url: str | None
    author: str | None
    published: datetime | None


def extract_page(html: str | bytes, url: str) -> PageInfo:
    """Extract lead and metadata from an article page (trafilatura, then our clean-up).

    ``url`` is where the page was fetched from; relative links resolve against it,
    and ``canonical_url`` is kept only on the same site (see ``same_site``).
    Never raises on bad markup: an unreadable page gives an empty PageInfo, an
    unparsable link only an empty field."""
    tree = _parse(html)
    if tree is None:
        return PageInfo("", None, None, None, None, None)
    meta = _page_meta(tree, url)
    meta["canonical"] = same_site(meta.get("canonical"), url)
    _drop_cards(tree)
    doc, blocks, titles = _extract(tree, url, meta, fast=True)
    if not first_lead(blocks):     # the fast pass found no prose: let the fallbacks try
        doc, blocks, titles = _extract(tree, url, meta, fast=False)
    if doc is None:
        return PageInfo("", meta.get("title"), meta.get("image"), meta.get("canonical"),
                        meta.get("author"), meta.get("published"))
    return PageInfo(
        lead=_page_lead(tree, blocks, titles, meta.get("description") or doc.description),
        title=meta.get("title") or doc.title,
        image=meta.get("image") or _absolute(url, doc.image),
        canonical_url=meta.get("canonical"),
        author=meta.get("author") or doc.author,
        published=meta.get("published") or _day(doc.date),
    )


def _extract(tree, url: str, meta: dict, fast: bool):
    """trafilatura's document, its first blocks cleaned of furniture, and the
    headline's forms. ``fast`` skips the comparison with readability and jusText:
    a third of the time, and the same lead wherever the fast pass finds one."""
    doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, favor_precision=True,
                                      include_comments=False, fast=fast,
                                      date_extraction_params=_DATE_PARAMS)
    if doc is None:
        return None, [], []
    titles = [t for t in (meta.get("title"), doc.title, meta.get("h1")) if t]
    names = [n for n in {*meta["site_names"], doc.sitename} if n and word_count(n) <= 6]
    # The lead is near the top: cleaning the whole body of a long page is wasted time.
    head = [(strip_masthead(strip_title(text, titles), names), ok)
            for text, ok in _body_blocks(doc.body)[:_HEAD_BLOCKS]]
    return doc, clean_blocks(head, titles), titles


_HEAD_BLOCKS = 40

# No extensive search: it turns a bare year in a title into "1 January".
_DATE_PARAMS = {"extensive_search": False, "original_date": True}


def _parse(html: str | bytes):
    try:
        return trafilatura.load_html(html)
    except (etree.ParserError, ValueError):
        return None


def _drop_cards(tree) -> None:
    """Remove pop-up cards nested inside paragraphs (a picture and several links in
    a span): hidden by CSS in a browser, they read as junk inside the sentence."""
    card_path = "*[self::span or self::div][.//img][count(.//a) >= 2]"
    for card in tree.xpath(f"//p//{card_path}[not(.//{card_path})]"):
        if card.getparent() is not None:
            card.drop_tree()


_BLOCKS = {"p", "head", "list", "quote", "table", "code", "graphic", "div"}
_LEAD_BLOCKS = {"p", "quote", "div"}


def _body_blocks(body) -> list[tuple[str, bool]]:
    """(text, may_be_lead) per block of trafilatura's XML body; headings, lists and
    tables may not be leads. Loose text between blocks is a paragraph of its own."""
    if body is None:
        return []
    for lb in body.iter("lb"):
        lb.tail = BREAK + (lb.tail or "")
    return [(normalise(part), ok) for text, ok in _raw_blocks(body) for part in text.split(BREAK)
            if part.strip()]


def _raw_blocks(parent) -> list[tuple[str, bool]]:
    blocks, loose = [], [parent.text or ""]
    for el in parent:
        if el.tag in _BLOCKS:
            blocks.append(("".join(loose), True))
            blocks.extend(_table_cells(el) if el.tag == "table" else
                          [("".join(el.itertext()), el.tag in _LEAD_BLOCKS)])
            loose = []
        else:
            loose.append("".join(el.itertext()))
        loose.append(el.tail or "")
    blocks.append(("".join(loose), True))
    return blocks


def _table_cells(table) -> list[tuple[str, bool]]:
    """A table read cell by cell: old sites lay the whole article out in one, and a
    cell's paragraphs are then the article's; a row of figures is never prose."""
    return [block for row in table for cell in row for block in _raw_blocks(cell)]


def _page_meta(tree, url: str) -> dict:
    """og:/article: metadata and the canonical link, read before trafilatura prunes the tree."""
    meta: dict = {}
    for el in tree.iter("meta"):
        key = (el.get("property") or el.get("name") or el.get("itemprop") or "").lower()
        value = normalise(el.get("content") or "")
        if value and key not in meta:
            meta[key] = value
    found = {
        "title": meta.get("og:title") or meta.get("twitter:title"),
        "description": meta.get("og:description") or meta.get("description"),
        "image": _absolute(url, meta.get("og:image") or meta.get("twitter:image")),
        "author": _author(meta),
        "published": _when(meta.get("article:published_time") or meta.get("datepublished")),
    }
    found["site_names"] = [meta.get("og:site_name"), meta.get("application-name"),
                           _title_suffix(tree.findtext(".//title") or "")]
    h1 = tree.find(".//h1")
    found["h1"] = normalise(h1.text_content()) if h1 is not None else None
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            found["canonical"] = _absolute(url, link.get("href"))
            break
    return found


def _title_suffix(title: str) -> str | None:
    """The site's name as a <title> ends with it: "Bridge to close | The Daily Example"."""
    parts = re.split(r"\s+[|–—-]\s+", normalise(title))
    return parts[-1] if len(parts) > 1 else None


def _author(meta: dict) -> str | None:
    author = meta.get("author") or meta.get("article:author") or meta.get("dc.creator")
    if not author or author.startswith(("http://", "https://")):
        return None     # article:author is often a profile URL, not a name
    return author


def _absolute(base: str, link: str | None) -> str | None:
    """``link`` resolved against ``base`` as a browser would (WHATWG URL rules), or
    None when it does not parse or is not http(s): a bad link costs only its field."""
    url = _parse_url(link.strip(), base) if link else None
    return url.href if url is not None and url.protocol in ("http:", "https:") else None


def _parse_url(link: str, base: str | None = None) -> ada_url.URL | None:
    try:
        return ada_url.URL(link, base) if base else ada_url.URL(link)
    except ValueError:      # ada_url's one error for input it cannot parse
        return None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _day(value: str | None) -> datetime | None:
    """trafilatura's dates are day-only: midnight UTC of that day."""
    return _when(value[:10]) if value else None


# ---- enriching articles --------------------------------------------------------------------

class LeadFinder:
    """Fills ``Article.lead`` from the feed's text or the article page.

    ``fetch_page(url)`` returns the page body or raises ``FeedError``; with
    ``None`` only the feed's text is used. Page results are kept in a bounded
    LRU cache per URL (failures are not cached, so the next poll retries)."""

    def __init__(self, fetch_page: Callable[[str], bytes] | None, cache_size: int = 256):
        self._fetch = fetch_page
        self._cache: OrderedDict[str, PageInfo] = OrderedDict()
        self._cache_size = max(cache_size, 0)

    def enrich(self, article: Article, mode: str = "auto") -> Article:
        """A copy of ``article`` with ``lead`` filled.

        ``mode``: "never" uses the feed's text only; "always" the page first and
        the feed's text as fallback; "auto" the feed's text when it gives a
        usable lead, else the page. From a fetched page, ``image`` and
        ``author`` fill what the feed lacked and ``url`` becomes the page's
        canonical URL when it names one on the same site."""
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        feed_lead = lead_from_text(article.summary, article.title)
        if mode == "never" or (mode == "auto" and _good_enough(feed_lead)) or not self._fetch:
            return dataclasses.replace(article, lead=feed_lead)
        page = self.page(article.url)
        if page is None:
            return dataclasses.replace(article, lead=feed_lead)
        return dataclasses.replace(
            article,
            lead=page.lead or feed_lead,
            image=article.image or page.image,
            author=article.author or page.author,
            url=same_site(page.canonical_url, article.url) or article.url,
        )

    def page(self, url: str) -> PageInfo | None:
        """The page at ``url``, from the cache or fetched; None when fetching failed."""
        if url in self._cache:
            self._cache.move_to_end(url)
            return self._cache[url]
        try:
            body = self._fetch(url)
        except FeedError as exc:
            log.warning("article page %s not fetched: %s", url, exc.reason)
            return None
        info = extract_page(body, url)
        self._remember(url, info)
        return info

    def _remember(self, url: str, info: PageInfo) -> None:
        self._cache[url] = info
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _good_enough(lead: str) -> bool:
    """A feed lead "auto" keeps: real prose of some length, not cut short by the feed."""
    return is_prose(lead, AUTO_MIN_WORDS) and not looks_cut(lead)


def same_site(canonical: str | None, url: str) -> str | None:
    """``canonical`` when a browser would open it on the article's site: the same
    registrable domain (Public Suffix List), or the same IP address. Hosts are
    compared as parsed by WHATWG rules, so "https://evil.example\\@news.example/"
    is on evil.example. A host with no registrable domain ("https://test/", "co.uk")
    is never the same site, nor is a canonical that does not parse."""
    a, b = (_parse_url(u) if u else None for u in (canonical, url))
    if a is None or b is None or a.protocol not in ("http:", "https:"):
        return None
    if a.host_type != ada_url.HostType.DEFAULT or b.host_type != ada_url.HostType.DEFAULT:
        return a.href if a.hostname == b.hostname else None
    site = _PSL.privatesuffix(a.hostname)
    return a.href if site and site == _PSL.privatesuffix(b.hostname) else None


# Loaded once: parsing the bundled list takes a tenth of a second.
_PSL = PublicSuffixList()


# A headline or lead past these lengths is a broken or hostile feed, not news:
# keep a prefix (cut at a space), so storing and composing stay cheap.
MAX_TITLE = 1_000
MAX_LEAD = 10_000


def bounded(article: Article) -> Article:
    """``article`` with its title and lead cut to MAX_TITLE / MAX_LEAD characters."""
    title, lead = _prefix(article.title, MAX_TITLE), _prefix(article.lead, MAX_LEAD)
    if title is article.title and lead is article.lead:
        return article
    return dataclasses.replace(article, title=title, lead=lead)


def _prefix(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ", limit // 2)
    return (cut[:space] if space > 0 else cut).rstrip() + "…"
