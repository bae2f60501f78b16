"""Find an article's lead: its real opening paragraph, never page furniture.

The lead comes from the feed's summary/content or, when that is too thin, from
the article page (trafilatura extracts the body; our own rules then drop the
furniture it keeps: repeated headline, captions, bylines, reading time,
"Also read", newsletter and social prompts, author bios). The rules are about
kinds of text in several languages, never about one site.

Nothing here reaches the network: ``LeadFinder`` is handed a ``fetch_page``.
"""
from __future__ import annotations

import dataclasses
import html as htmlmod
import logging
import re
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin

import lxml.html
import trafilatura
from lxml import etree

from bot.errors import FeedError
from bot.models import Article

log = logging.getLogger(__name__)

MODES = ("auto", "always", "never")
MIN_LEAD_WORDS = 8       # below this a paragraph is a phrase, not a lead
AUTO_MIN_WORDS = 12      # "auto" trusts the feed's text from this length on

_WORD = re.compile(r"\w+")
# Scripts written without spaces: count characters, two to a word.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")
_BLOCK_TAGS = {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "figure", "figcaption", "table", "tr", "section", "article", "header", "footer",
               "aside", "pre", "dd", "dt", "hr"}
_DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "svg", "button", "form"}
_BREAK = "\u2029"        # paragraph separator used while flattening HTML


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# A paragraph that *starts* like this is furniture whatever follows.
_FURNITURE_START = _rx(
    # captions and credits
    r"(?:video|videos|photo|photos|image|images|picture|pictures|gallery|watch|listen|audio"
    r"|foto|fotos|bild|bilder|bildquelle|quelle|vidéo|vidéos|crédit|crédito|imagen|imágenes"
    r"|fotografía|légende|photograph|credit|source|fuente)\s*(?:credit\s*)?[:|–—]",
    # "also read" and other links out
    r"(?:also|more|further|related)\s+(?:read|reading|see|watch|coverage|stories|articles)\b",
    r"read\s+(?:more|also|next|the\s+full|our)\b", r"see\s+also\b", r"related\s*:",
    r"recommended\s*(?:for\s+you|reading)?\s*:", r"click\s+(?:here|for)\b",
    r"(?:lesen|sehen|hören)\s+sie\s+(?:auch|mehr)", r"mehr\s+(?:zum\s+thema|dazu|lesen)",
    r"auch\s+interessant", r"weiterlesen\b", r"(?:à\s+)?lire\s+(?:aussi|également|la\s+suite)",
    r"voir\s+aussi\b", r"(?:à\s+)?(?:voir|découvrir)\s+aussi", r"l[ée]e\s+(?:también|más)\b",
    r"leer\s+más\b", r"te\s+puede\s+interesar", r"(?:ver|vea)\s+también\b", r"leia\s+(?:também|mais)",
    r"leggi\s+anche\b", r"saiba\s+mais\b",
    # page furniture
    r"story\s+continues\s+below", r"continue\s+reading\b", r"the\s+post\s+.{1,200}\s+appeared\s+first\s+on\b",
    r"(?:reading\s+time|lesezeit|lesedauer|temps\s+de\s+lecture|tiempo\s+de\s+lectura"
    r"|tempo\s+de\s+leitura|tempo\s+di\s+lettura)\s*:",
)

# A paragraph of up to _PROMPT_MAX_WORDS words containing this is a prompt, not
# prose. Phrases, not single verbs: "teilen" or "subscribe" alone occur in news.
_PROMPT = _rx(
    r"^subscribe\b", r"\bsubscribe\s+(?:to\s+our|now|today|here)\b", r"\bour\s+(?:\w+\s+){0,2}newsletters?\b",
    r"^newsletter\b", r"^sign\s+up\b", r"\bsign\s+up\s+(?:for|to)\s+(?:our|the\s+(?:\w+\s+){0,2}newsletter)\b",
    r"\bfollow\s+us\b", r"\bconnect\s+with\s+us\b", r"\bshare\s+(?:this|it)\s+(?:article|story|post|page|with)\b",
    r"\blike\s+us\s+on\b", r"\bjoin\s+(?:us\s+on|our)\b", r"\bdownload\s+our\s+app\b",
    r"\bfolgen\s+sie\s+uns\b", r"\babonnieren\s+sie\b", r"\bnewsletter\s+abonnieren\b", r"^(?:jetzt\s+|artikel\s+)?teilen\b",
    r"\babonnez-vous\b", r"\bsuivez-nous\b", r"\binscrivez-vous\b", r"^partager\b", r"\bpartager\s+(?:cet|sur)\b",
    r"\bsuscr[ií]bete\b", r"\bs[ií]guenos\b", r"^compartir\b", r"\bcomparte\s+est[ae]\b",
    r"\binscreva-se\b", r"\bsiga-nos\b",
    r"\bgetty\s+images\b", r"\bshutterstock\b", r"\bistock(?:photo)?\b",
)
_PROMPT_MAX_WORDS = 40
# A paragraph of up to _STAMP_MAX_WORDS words containing this is a time stamp or
# a reading time ("Updated 3 hours ago", "5 min read", "vor 3 Stunden").
_STAMP = _rx(
    r"\bmin(?:ute)?s?\.?\s+(?:read|lesen|de\s+lecture|de\s+lectura|de\s+leitura|di\s+lettura)\b",
    r"\bminuten\s+lesezeit\b",
    r"\b(?:hours?|minutes?|days?)\s+ago\b", r"\bvor\s+\d+\s+(?:stunden?|minuten?|tagen?)\b",
    r"\bil\s+y\s+a\s+\d+\s+(?:heures?|minutes?|jours?)\b", r"\bhace\s+\d+\s+(?:horas?|minutos?|días?)\b",
    r"^(?:updated|last\s+updated|published|posted|aktualisiert|veröffentlicht|mis\s+à\s+jour"
    r"|publié\s+le|actualizado|publicado|atualizado)\s*(?:on|am|le|el|em|at|:|\d)",
)
_STAMP_MAX_WORDS = 12

# Whole-paragraph furniture: author bio headings and section links.
_FURNITURE_WHOLE = _rx(
    r"(?:about|über|à\s+propos\s+de|acerca\s+de|sobre)\s+(?:the\s+author|den\s+autor|l'auteur|el\s+autor"
    r"|[A-ZÀ-Þ][\w'’.-]*(?:\s+[A-ZÀ-Þ][\w'’.-]*){0,3})",
    r"(?:more|latest)\s+(?:in|from|on|stories|news)\b.{0,40}", r"mehr\s+(?:aus|zu|von)\b.{0,40}",
    r"plus\s+(?:de|d'|sur)\b.{0,40}", r"más\s+(?:en|de|sobre)\b.{0,40}",
    r"(?:comments?|kommentare|commentaires|comentarios)\s*(?:\(\d+\))?",
    r"(?:share|teilen|partager|compartir)",
    r"(?:back\s+)?to\s+top", r"nach\s+oben", r"haut\s+de\s+page", r"volver\s+arriba",
    r"advertisement|anzeige|werbung|publicité|publicidad|sponsored(?:\s+content)?",
)
# Ends like a credit: "(Reuters/Jane Doe)", "(AP Photo)", "| Getty Images".
_CREDIT_END = _rx(
    r"\((?:[^()]{0,40}/[^()]{0,40}|[^()]*\b(?:photo|foto|image|bild|getty|credit|crédit|crédito|courtesy"
    r"|(?-i:AP|AFP|EPA|dpa|Reuters|Xinhua))\b[^()]*)\)\s*$",
    r"(?:getty\s+images|shutterstock|istock|via\s+reuters|/\s*ap|afp)\s*$",
)
# A caption run into the text before it ("Headline Video: Putin in Moscow"):
# split there, so that each part is judged on its own.
_CAPTION_INSIDE = re.compile(r"(?<=\S)\s+(?=(?:Video|Photo|Image|Foto|Bild|Vidéo|Imagen)\s?:\s)")
_BYLINE = re.compile(r"^(?:by|von|par|por|di|door|av|af)\s+(.+)$", re.IGNORECASE)
# Lower-case words a byline or dateline line may hold besides names.
_META_WORDS = set(
    "and und et y e de del da von van der den la le el staff writer reporter correspondent editor "
    "contributor updated published posted min mins minute minutes read ago hour hours day days "
    "am pm at on the in news agency with redaktion rédaction redacción of".split()
)
_MONTHS = set(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july "
    "august september october november december januar februar märz mai juni juli oktober dezember "
    "janvier février mars avril juin juillet août septembre octobre novembre décembre enero febrero "
    "marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre mon tue wed thu fri "
    "sat sun monday tuesday wednesday thursday friday saturday sunday utc gmt est edt cet cest pst "
    "pdt ist".split()
)
_TRUNCATED_END = re.compile(r"(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.\.\.)\s*$")
# Openings that continue an earlier text: a paragraph starting so is not the first.
_CONTINUES = _rx(
    r"(?:in\s+addition|additionally|also|moreover|furthermore|however|meanwhile|but|and|still"
    r"|außerdem|zudem|allerdings|doch|en\s+outre|de\s+plus|cependant|pourtant|además|sin\s+embargo"
    r"|también|no\s+obstante)\b",
)
_SENTENCE_END = re.compile(r"[.!?…:;。！？»\"”’')]\s*$")


def clean_paragraphs(text_or_html: str, title: str | None = None) -> list[str]:
    """Split feed summary/content into clean paragraphs, furniture dropped.

    Accepts HTML or plain text with blank-line paragraphs; decodes entities and
    normalises whitespace. Drops the repeated headline, captions and credits,
    bylines/datelines/reading-time lines standing alone, "Also read" links,
    newsletter/social prompts, author bios and section links ("More in ...").
    A dateline that opens a sentence ("FRANKFURT (Reuters) - The bank ...")
    is part of that sentence and stays."""
    return _clean(_split(text_or_html or ""), title)


def lead_from_text(text_or_html: str, title: str | None = None) -> str:
    """The first real paragraph of feed summary/content, uncut, or "" when the
    text has no usable lead (too short, or not prose: a phrase, a list of
    prices or results)."""
    return _first_lead([(p, True) for p in clean_paragraphs(text_or_html, title)])


# ---- splitting and normalising -------------------------------------------------------------

def _split(text: str) -> list[str]:
    if re.search(r"<(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^>]*)?/?>", text):
        chunks = _flatten_html(text).split(_BREAK)
    else:
        chunks = _unwrap(htmlmod.unescape(text).splitlines())
    parts = (part for chunk in chunks for part in _CAPTION_INSIDE.split(_normalise(chunk)))
    return [p for p in parts if p]


def _unwrap(lines: list[str]) -> list[str]:
    """Plain-text paragraphs: one per line, except that a line starting in lower
    case continues a previous line that did not end a sentence (hard wrapping)."""
    paragraphs: list[str] = []
    for line in (ln.strip() for ln in lines):
        glued = paragraphs and paragraphs[-1] and line[:1].islower()
        if glued and not _SENTENCE_END.search(paragraphs[-1]):
            paragraphs[-1] += " " + line
        else:
            paragraphs.append(line)
    return paragraphs


def _flatten_html(markup: str) -> str:
    """Text of an HTML fragment with a paragraph break at every block and <br>."""
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return re.sub(r"<[^>]+>", " ", markup)
    for el in list(root.iter()):
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if (not tag or tag in _DROP_TAGS) and el.getparent() is not None:
            el.drop_tree()      # comments, scripts: never text
        elif tag == "br" or tag in _BLOCK_TAGS:
            el.tail = _BREAK + (el.tail or "")
            el.text = _BREAK + (el.text or "") if tag != "br" else el.text
    return htmlmod.unescape(root.text_content())


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[\u200b-\u200d\u2060\ufeff\u00ad]", "", text)
    return re.sub(r"\s+", " ", text).strip()


# ---- furniture -----------------------------------------------------------------------------

def _clean(paragraphs: list[str], title: str | None) -> list[str]:
    blocks = _clean_blocks([(p, True) for p in paragraphs], [title] if title else [])
    return [text for text, _ in blocks]


def _clean_blocks(blocks: list[tuple[str, bool]], titles: list[str]) -> list[tuple[str, bool]]:
    kept = []
    bio_name = None
    for text, may_lead in blocks:
        if bio_name and text.split()[0].strip(".,") == bio_name:
            continue    # the bio text right under an "About <Name>" heading
        bio_name = _bio_name(text)
        if not _is_furniture(text, titles):
            kept.append((text, may_lead))
    return kept


def _is_furniture(para: str, titles: list[str]) -> bool:
    words = _words(para)
    if not words:
        return True
    if any(_repeats(para, title) for title in titles):
        return True
    if _FURNITURE_START.match(para) or _FURNITURE_WHOLE.fullmatch(para.rstrip(" .:")):
        return True
    if len(words) <= _PROMPT_MAX_WORDS and _PROMPT.search(para):
        return True
    if len(words) <= _STAMP_MAX_WORDS and _STAMP.search(para):
        return True
    if len(words) <= 40 and _CREDIT_END.search(para):
        return True
    return _is_byline(para) or _is_dateline(para, words)


def _repeats(para: str, title: str) -> bool:
    """The paragraph is the headline again (maybe with a site name or a kicker)."""
    p, t = Counter(_words(para.lower())), Counter(_words(title.lower()))
    if not t:
        return False
    common = sum((p & t).values())
    return common >= 0.9 * sum(t.values()) and sum(p.values()) <= sum(t.values()) + 4


def _is_byline(para: str) -> bool:
    m = _BYLINE.match(para)
    if not m or len(_words(para)) > 14:
        return False
    return all(_is_meta_word(w) for w in _words(m.group(1)))


def _is_meta_word(word: str) -> bool:
    return word[0].isupper() or word.isdigit() or word.lower() in _META_WORDS | _MONTHS


def _is_dateline(para: str, words: list[str]) -> bool:
    """A date, a time, a place in capitals or "Name | Agency" standing alone."""
    if len(words) > 12 or para.rstrip()[-1] in ".!?":
        return False
    if all(w.isdigit() or w.lower() in _MONTHS | {"am", "pm", "h", "uhr"} for w in words):
        return True
    if len(words) <= 5 and para.upper() == para and any(c.isalpha() for c in para):
        return True
    return "|" in para and all(_is_meta_word(w) for w in words)


def _bio_name(para: str) -> str | None:
    m = re.fullmatch(r"(?i:about|über|à propos de|acerca de|sobre)\s+([A-ZÀ-Þ][\w'’.-]*)(?:\s+\S+){0,3}",
                     para.rstrip(" .:"))
    return m.group(1) if m else None


# ---- choosing the lead ---------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def word_count(text: str) -> int:
    """Words in ``text``, counting two characters as a word in CJK and Thai."""
    unspaced = len(_UNSPACED.findall(text))
    return len(_words(_UNSPACED.sub(" ", text))) + unspaced // 2


def is_prose(para: str, min_words: int = MIN_LEAD_WORDS) -> bool:
    """True when ``para`` reads like sentences: long enough, mostly words not
    numbers, not shouted in capitals, and ends like a sentence unless long."""
    n = word_count(para)
    if n < min_words:
        return False
    words = _words(para)
    alpha = sum(1 for w in words if not any(c.isdigit() for c in w))
    if alpha < 0.7 * len(words):
        return False
    letters = [c for c in para if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return False
    return bool(_SENTENCE_END.search(para)) or n >= 20


def _page_lead(blocks: list[tuple[str, bool]], description: str | None) -> str:
    """The page's first prose block, unless the page's description is plainly the
    missing opening: it is not in the body, and either it was cut from a longer
    text ("...") or the body's first paragraph cannot be an opening ("In addition
    to ..."): the extractor lost the real first paragraph."""
    lead = _first_lead(blocks)
    description = _normalise(description or "")
    if not is_prose(description, AUTO_MIN_WORDS) or _in_body(description, blocks):
        return lead
    if _was_cut(description) or _CONTINUES.match(lead):
        return description
    return lead


def _was_cut(text: str) -> bool:
    """Ends in "..." after a sentence of some length (a CMS cut it), not a teaser
    that uses ellipses for effect."""
    ellipses = text.count("...") + text.count("…")
    return bool(_TRUNCATED_END.search(text)) and ellipses == 1 and word_count(text) >= 20


def _in_body(text: str, blocks: list[tuple[str, bool]], n: int = 8) -> bool:
    """``text`` shares a run of ``n`` words with the first blocks (it was taken from them)."""
    def grams(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    body = grams(_words(" ".join(block for block, _ in blocks[:8]).lower()))
    return bool(grams(_words(text.lower())) & body)


def _first_lead(blocks: list[tuple[str, bool]]) -> str:
    for text, may_lead in blocks[:6]:
        if may_lead and is_prose(text):
            return text
    return ""


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

    ``url`` is where the page was fetched from; relative links resolve against it.
    Never raises on bad markup: an unreadable page gives an empty PageInfo."""
    tree = _parse(html)
    if tree is None:
        return PageInfo("", None, None, None, None, None)
    meta = _page_meta(tree, url)
    _drop_cards(tree)
    doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, favor_precision=True,
                                      date_extraction_params=_DATE_PARAMS)
    if doc is None:
        return PageInfo("", meta.get("title"), meta.get("image"), meta.get("canonical"),
                        meta.get("author"), meta.get("published"))
    titles = [t for t in (meta.get("title"), doc.title, meta.get("h1")) if t]
    blocks = _clean_blocks(_body_blocks(doc.body), titles)
    return PageInfo(
        lead=_page_lead(blocks, meta.get("description") or doc.description),
        title=meta.get("title") or doc.title,
        image=meta.get("image") or doc.image,
        canonical_url=meta.get("canonical"),
        author=meta.get("author") or doc.author,
        published=meta.get("published") or _day(doc.date),
    )


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
        lb.tail = _BREAK + (lb.tail or "")
    blocks, loose = [], [body.text or ""]
    for el in body:
        if el.tag in _BLOCKS:
            blocks.append(("".join(loose), True))
            blocks.append(("".join(el.itertext()), el.tag in _LEAD_BLOCKS))
            loose = []
        else:
            loose.append("".join(el.itertext()))
        loose.append(el.tail or "")
    blocks.append(("".join(loose), True))
    return [(_normalise(part), ok) for text, ok in blocks for part in text.split(_BREAK)
            if part.strip()]


def _page_meta(tree, url: str) -> dict:
    """og:/article: metadata and the canonical link, read before trafilatura prunes the tree."""
    meta: dict = {}
    for el in tree.iter("meta"):
        key = (el.get("property") or el.get("name") or el.get("itemprop") or "").lower()
        value = _normalise(el.get("content") or "")
        if value and key not in meta:
            meta[key] = value
    found = {
        "title": meta.get("og:title") or meta.get("twitter:title"),
        "description": meta.get("og:description") or meta.get("description"),
        "image": _absolute(url, meta.get("og:image") or meta.get("twitter:image")),
        "author": _author(meta),
        "published": _when(meta.get("article:published_time") or meta.get("datepublished")),
    }
    h1 = tree.find(".//h1")
    found["h1"] = _normalise(h1.text_content()) if h1 is not None else None
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            found["canonical"] = _absolute(url, link.get("href"))
            break
    return found


def _author(meta: dict) -> str | None:
    author = meta.get("author") or meta.get("article:author") or meta.get("dc.creator")
    if not author or author.startswith(("http://", "https://")):
        return None     # article:author is often a profile URL, not a name
    return author


def _absolute(base: str, link: str | None) -> str | None:
    if not link:
        return None
    full = urljoin(base, link.strip())
    return full if full.startswith(("http://", "https://")) else None


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
        canonical URL when it names one."""
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
            url=page.canonical_url or article.url,
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
    return is_prose(lead, AUTO_MIN_WORDS) and not _TRUNCATED_END.search(lead)
