"""Page furniture: the text around an article that is not the article.

Rules that split feed summary/content (HTML or plain text) into paragraphs and
drop furniture: the repeated headline, captions and credits, bylines,
datelines and reading times standing alone, "Also read" links, newsletter and
social prompts, author bios, section links. They are about kinds of text in
several languages (English, German, French, Spanish, some Portuguese and
Italian), never about one site. ``bot.articles`` applies them to feed text and
to the blocks trafilatura extracts from article pages.
"""
from __future__ import annotations

import html as htmlmod
import re
import unicodedata
from collections import Counter

import lxml.html
from lxml import etree

MIN_LEAD_WORDS = 8       # below this a paragraph is a phrase, not a lead
BREAK = "\u2029"         # paragraph separator used while flattening HTML

_WORD = re.compile(r"\w+")
# Scripts written without spaces: count characters, two to a word.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")
_BLOCK_TAGS = {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "figure", "figcaption", "table", "tr", "section", "article", "header", "footer",
               "aside", "pre", "dd", "dt", "hr"}
_DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "svg", "button", "form"}


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
# Rights, reprint and paywall notices: whole paragraphs of up to _NOTICE_MAX_WORDS
# words that speak about the copy, not the story. Formulas, so that news about
# copyright or cookies is not caught.
_NOTICE = _rx(
    r"\bpersonal,?\s+non-?commercial\s+use\b", r"\border\s+(?:presentation-ready|multiple)\s+copies\b",
    r"\breprints?\s+(?:and|&)\s+permissions\b", r"\bcopying\s+articles\s+to\s+share\b",
    r"\bmay\s+not\s+be\s+(?:published|reproduced|copied),?\s+(?:broadcast|rewritten|redistributed|distributed)",
    r"\ball\s+rights\s+reserved\b", r"\balle\s+rechte\s+vorbehalten\b", r"\btous\s+droits\s+réservés\b",
    r"\btodos\s+los\s+derechos\s+reservados\b", r"\btutti\s+i\s+diritti\s+riservati\b",
    r"\btodos\s+os\s+direitos\s+reservados\b", r"版权所有|版權所有|無断転載|무단\s*전재",
    r"^(?:©|\(c\)\s|copyright\s+(?:©\s*)?\d{4})",
    r"^this\s+(?:article|story)\s+is\s+more\s+than\s+\w+\s+(?:years?|months?)\s+old\b",
    r"\bwe\s+use\s+cookies\b", r"\byou\s+have\s+(?:\w+\s+)?(?:free\s+)?(?:articles?|stories)\s+(?:left|remaining)\b",
    r"\balready\s+a\s+subscriber\b", r"\b(?:enable|turn\s+on)\s+javascript\b", r"\bad\s*-?blocker\b",
)
_NOTICE_MAX_WORDS = 80

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
# A number, or a date or time written with CJK units: "2024年3月2日", "10시 30분".
_CJK_DATE = re.compile(r"(?:\d+[年月日时時分秒년월일시분초]?)+")
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
    return first_lead([(p, True) for p in clean_paragraphs(text_or_html, title)])


# ---- splitting and normalising -------------------------------------------------------------

def _split(text: str) -> list[str]:
    if re.search(r"<(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^>]*)?/?>", text):
        chunks = _flatten_html(text).split(BREAK)
    else:
        chunks = _unwrap(htmlmod.unescape(text).splitlines())
    parts = (part for chunk in chunks for part in _CAPTION_INSIDE.split(normalise(chunk)))
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
            el.tail = BREAK + (el.tail or "")
            el.text = BREAK + (el.text or "") if tag != "br" else el.text
    return htmlmod.unescape(root.text_content())


def normalise(text: str) -> str:
    """NFC, no zero-width characters or soft hyphens, single spaces, stripped."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[\u200b-\u200d\u2060\ufeff\u00ad]", "", text)
    return re.sub(r"\s+", " ", text).strip()


# ---- furniture -----------------------------------------------------------------------------

def _clean(paragraphs: list[str], title: str | None) -> list[str]:
    blocks = clean_blocks([(p, True) for p in paragraphs], [title] if title else [])
    return [text for text, _ in blocks]


def clean_blocks(blocks: list[tuple[str, bool]], titles: list[str]) -> list[tuple[str, bool]]:
    """Drop furniture from (text, may_be_lead) blocks; ``titles`` are the
    headline's forms, so that a block repeating one of them goes too."""
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
    if len(words) <= _NOTICE_MAX_WORDS and _NOTICE.search(para):
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
    if word_count(para) > 12 or para.rstrip()[-1] in ".!?。！？":
        return False
    if all(_CJK_DATE.fullmatch(w) or w.lower() in _MONTHS | {"am", "pm", "h", "uhr"} for w in words):
        return True
    if len(words) <= 5 and _in_capitals(para):
        return True
    return "|" in para and all(_is_meta_word(w) for w in words)


def _in_capitals(text: str) -> bool:
    """Has letters with case and all are capitals ("BAAR, SWITZERLAND"). Chinese,
    Japanese and Korean have no case: their text is never "in capitals"."""
    cased = [c for c in text if c.isupper() or c.islower()]
    return bool(cased) and all(c.isupper() for c in cased)


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
    # Words of Chinese or Japanese run between punctuation: "東京都は２日" is
    # many words and one number, so their characters are counted apart.
    words = _words(_UNSPACED.sub(" ", para))
    numbers = sum(1 for w in words if any(c.isdigit() for c in w))
    if numbers > 0.3 * n:
        return False
    letters = [c for c in para if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return False
    return bool(_SENTENCE_END.search(para)) or n >= 20


def first_lead(blocks: list[tuple[str, bool]]) -> str:
    """The first block that may be a lead and is prose, among the first six blocks
    of some length, or "". Short phrases ("Share", "12 comments", a tag) do not
    count: a row of buttons must not push the opening out of reach."""
    looked = 0
    for text, may_lead in blocks:
        if may_lead and is_prose(text):
            return text
        looked += word_count(text) >= _PHRASE_WORDS
        if looked == 6:
            break
    return ""


_PHRASE_WORDS = 4


def looks_cut(text: str) -> bool:
    """Ends in "..." or "[…]": a feed or CMS cut a longer text here."""
    return bool(_TRUNCATED_END.search(text))


# ---- a page's meta line glued onto its first paragraph ----------------------------------------

_SEPARATORS = re.compile(r"[\s|•·—–:,/-]*")
# A date or time word: "19", "19.11.2019", "10:32", "19th", "Nov.", "a.m.", "Updated".
_DATE_TOKEN = re.compile(r"(?:\d{1,4}(?:[./:-]\d{1,4}){0,2}(?:st|nd|rd|th)?|[ap]\.m\.|[^\W\d_]+)\.?(?!\w)")
# "10:32", "19.11.2019", "2019-11-19"; not a score ("2-1", "3:1").
_NUMERIC_DATE = re.compile(r"\d{1,2}:\d{2}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_DATE_WORDS = _MONTHS | {"am", "pm", "h", "uhr", "on", "at", "updated", "published", "posted"}


def strip_masthead(text: str, site_names: list[str]) -> str:
    """``text`` without the date, time and site name a page glued before its first
    sentence ("19 November 2019 The Daily Example The council said ..."), or ""
    when the text is nothing else. Stripped only when the prefix holds a date
    (a month and a number, or "19.11.2019", "10:32") or a site name followed by a
    separator, and what is left starts a sentence; "10 Downing Street said" stays."""
    end, dated, named = _masthead(text, site_names)
    rest = text[end:]
    return rest if (dated or named) and (not rest or _opens_sentence(rest)) else text


def _masthead(text: str, site_names: list[str]) -> tuple[int, bool, bool]:
    """Where a run of date words and site names opening ``text`` ends, whether it
    holds a date, and whether a site name in it is followed by a separator."""
    pos, dated, named = 0, False, False
    while True:
        pos = _SEPARATORS.match(text, pos).end()
        name = next((n for n in site_names if text[pos:pos + len(n)].casefold() == n.casefold()
                     and not text[pos + len(n):pos + len(n) + 1].isalnum()), None)
        token = _DATE_TOKEN.match(text, pos)
        if name:
            pos += len(name)
            named = named or bool(_SEPARATORS.match(text, pos).group().strip(" ,"))
        elif token and (token.group()[0].isdigit() or token.group().replace(".", "").lower() in _DATE_WORDS):
            pos = token.end()
            dated = dated or bool(_NUMERIC_DATE.fullmatch(token.group().rstrip(".")))
            dated = dated or (bool(re.search(r"\d", text[:pos])) and _has_month(text[:pos]))
        else:
            return pos, dated, named


def _opens_sentence(text: str) -> bool:
    """Starts like a sentence: a capital, a quote, or a letter of a caseless script."""
    return text[0] in "\"“‘'«„" or (text[0].isalpha() and not text[0].islower())


def strip_title(text: str, titles: list[str]) -> str:
    """``text`` without the headline run into its start ("Bridge to close The
    council said ..."), when a sentence of some length follows it."""
    for title in titles:
        if text[:len(title)].casefold() == title.casefold():
            rest = _SEPARATORS.match(text, len(title)).end()
            if rest > len(title) and not text[rest:rest + 1].islower() and \
                    word_count(text[rest:]) >= MIN_LEAD_WORDS:
                return text[rest:]
    return text


def _has_month(text: str) -> bool:
    return any(w.lower() in _MONTHS for w in _words(text) if not w.isdigit())


def continues_earlier(text: str) -> bool:
    """Opens like a paragraph that follows another ("In addition, ...", "However")."""
    return bool(_CONTINUES.match(text))
