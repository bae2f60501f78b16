"""Compose the text of a post from an article, a template and a platform's limits.

Pure: no network, no clock, no store. ``compose`` renders the template, and
when the result is too long gives things up in a fixed order: hashtags (added
only while they fit), then the lead (cut at a sentence, then at a word with
"…", then dropped), then the title (cut at a word with "…"). The link is never
cut or dropped, and nothing is cut inside a URL, a hashtag, a word or a
grapheme cluster. Text without spaces (Chinese, Japanese) is cut between
characters, preferably after a pause mark such as "、".
"""
from __future__ import annotations

import bisect
import string
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote_plus

import regex

from bot import twittertext
from bot.configtypes import TEMPLATE_FIELDS, Utm
from bot.models import Article

ELLIPSIS = "…"
MIN_CUT_LEAD = 15        # a lead cut lighter than this (X weights) says nothing: drop it
_PAUSE_SHARE = 0.7       # take a cut after "、" if it keeps this share of the longest cut
_GRAPHEME = regex.compile(r"\X")


def _twitter(text: str, url_length: int | None) -> int:
    return twittertext.weighted_length(text)   # URLs count X's own 23


def _units(count: Callable[[str], int]) -> Callable[[str, int | None], int]:
    """A counting that counts ``count`` units of the NFC text, each URL as
    ``url_length`` when that is set (else at its real length)."""
    def measure_text(text: str, url_length: int | None) -> int:
        text = _nfc(text)
        if url_length is None:
            return count(text)
        spans = twittertext.url_spans(text)
        starts = [0] + [end for _, end in spans]
        ends = [start for start, _ in spans] + [len(text)]
        return sum(count(text[a:b]) for a, b in zip(starts, ends)) + url_length * len(spans)
    return measure_text


def _graphemes(text: str) -> int:
    return sum(1 for _ in _GRAPHEME.finditer(text))


# How each platform counts a post: an adapter's ``counting`` names one.
COUNTINGS: Mapping[str, Callable[[str, int | None], int]] = {
    "twitter": _twitter,                 # twitter-text v3 weights (X)
    "chars": _units(len),                # code points (Facebook; Mastodon with url_length 23)
    "graphemes": _units(_graphemes),     # extended grapheme clusters (Bluesky)
}


@dataclass(frozen=True)
class Limits:
    """How long a post may be, in one platform's counting.

    ``counting`` is a key of COUNTINGS: "twitter" (twitter-text v3 weights;
    URLs count 23), "chars" (code points of the NFC text) or "graphemes"
    (its extended grapheme clusters); for the last two each URL counts
    ``url_length`` when that is not None, else its real length.
    ``max_bytes``: a second cap on the text's UTF-8 bytes (None: none)."""

    max_length: int
    url_length: int | None
    counting: str
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.counting not in COUNTINGS:
            raise ValueError(f"counting must be one of {tuple(COUNTINGS)}, got {self.counting!r}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be positive, got {self.max_length}")

    @classmethod
    def for_adapter(cls, adapter) -> Limits:
        """The limits an adapter declares: an instance's ``length()`` (a
        Mastodon instance's own limit), or a class's ``max_length`` and
        ``url_length``; and its ``counting`` (see ``bot.adapters.base.Adapter``)."""
        if isinstance(adapter, type):
            return cls(adapter.max_length, adapter.url_length, adapter.counting,
                       getattr(adapter, "max_bytes", None))
        max_length, url_length = adapter.length()
        return cls(max_length, url_length, adapter.counting, getattr(adapter, "max_bytes", None))


def measure(text: str, limits: Limits) -> int:
    """The length of ``text`` as the platform of ``limits`` counts it."""
    return COUNTINGS[limits.counting](text, limits.url_length)


def within(text: str, limits: Limits) -> bool:
    """True when ``text`` keeps to both of the platform's limits."""
    if limits.max_bytes is not None and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        return False
    return measure(text, limits) <= limits.max_length


# ------------------------------------------------------------ hashtags

_TAG_CHARS = r"\p{L}\p{M}\p{Nd}_"
# Words of a hashtag as X reads them ("メ～テレ" is one).
_TAG_WORD = regex.compile("[" + twittertext.HASHTAG_CHARS + "]+")
_INNER_APOSTROPHE = regex.compile(r"(?<=\p{L})['’](?=\p{L})")


def hashtags_for(categories: Sequence[str], text: str, hashtag_map: Mapping[str, str],
                 max_hashtags: int) -> list[str]:
    """Up to ``max_hashtags`` hashtags for an item.

    First the tags of ``hashtag_map`` whose keyword occurs in ``text`` as a
    whole word, any case (the account asked for those; earliest mention
    first), then the item's ``categories``. Names are CamelCased when they
    have several words ("North Korea" → "#NorthKorea"), punctuation is
    dropped, a tag needs a letter ("#2024" is none), and a tag already in
    ``text`` or already chosen (any case) is skipped."""
    text = _nfc(text)
    hits = []
    for order, (keyword, tag) in enumerate(hashtag_map.items()):
        found = _keyword_pattern(_nfc(keyword)).search(text) if keyword.strip() else None
        if found:
            hits.append((found.start(), order, tag))
    names = [tag for _, _, tag in sorted(hits)] + list(categories)
    seen = {text[start:end].casefold() for start, end in twittertext.hashtag_spans(text)}
    tags: list[str] = []
    for name in names:
        tag = _to_hashtag(_nfc(name))
        if len(tags) >= max_hashtags:
            break
        if tag and tag.casefold() not in seen:
            tags.append(tag)
            seen.add(tag.casefold())
    return tags


@lru_cache(maxsize=512)
def _keyword_pattern(keyword: str) -> regex.Pattern:
    words = r"\s+".join(regex.escape(word) for word in keyword.split())
    return regex.compile(f"(?<![{_TAG_CHARS}]){words}(?![{_TAG_CHARS}])", regex.IGNORECASE)


def _to_hashtag(name: str) -> str | None:
    words = _TAG_WORD.findall(_INNER_APOSTROPHE.sub("", name))
    if len(words) > 1:
        # Keep a word's own capitals ("iPhone"); capitalise the others.
        words = [w if any(c.isupper() for c in w) else w[0].upper() + w[1:] for w in words]
    tag = "#" + "".join(words)
    # Only a tag X links whole ("#2024" is none).
    return tag if twittertext.hashtag_spans(tag) == [(0, len(tag))] else None


# ------------------------------------------------------------ templates

_SEP = r"[\s:;,.|/·•~\-–—：；，、]"
_TAIL_SEP = regex.compile(f"{_SEP}*\\Z")
_HEAD_SEP = regex.compile(f"\\A{_SEP}*")
_PAIRS = {"(": ")", "[": "]", "{": "}", "«": "»", "“": "”", "‘": "’", "「": "」", "（": "）"}
_CLOSERS = frozenset(_PAIRS.values())


def _parse_template(template: str) -> tuple[list[str], list[str], int | None]:
    """Split a template into literals and field names, ``lits[i]`` coming
    before ``names[i]`` and ``lits[-1]`` after the last field; and the cap of
    ``{lead:N}`` (None without one; the smallest when given twice)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc}") from exc
    lits, names, caps = [""], [], []
    for literal, name, spec, conversion in parts:
        lits[-1] += literal
        if name is not None:
            if name not in TEMPLATE_FIELDS:
                raise ValueError(f"unknown template field {{{name}}}; known: "
                                 + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS))
            if spec or conversion:
                caps.append(_lead_cap(name, spec, conversion))
            names.append(name)
            lits.append("")
    return lits, names, min(caps, default=None)


def _lead_cap(name: str, spec: str, conversion: str | None) -> int:
    if name != "lead" or conversion or not (spec.isascii() and spec.isdigit() and int(spec) >= 1):
        raise ValueError(f"only {{lead:N}} takes a format (N characters, 1 or more), got "
                         f"{{{name}{'!' + conversion if conversion else ''}:{spec}}}")
    return int(spec)


def _render(lits: list[str], values: list[str]) -> str:
    """Join literals and field values, taking out the separators an empty
    field leaves behind ("Title:  https://…" becomes "Title https://…")."""
    lits, values = list(lits), list(values)
    i = 0
    while i < len(values):
        if values[i]:
            i += 1
            continue
        nothing_after = not any(values[i + 1:])
        lits[i:i + 2] = [_merge(lits[i], lits[i + 1], i == 0, nothing_after)]
        del values[i]
    return _tidy("".join(lit + value for lit, value in zip(lits, values + [""], strict=True)))


def _merge(left: str, right: str, nothing_before: bool, nothing_after: bool) -> str:
    """The literal to keep between ``left`` and ``right`` once the field
    between them is gone."""
    head = left[:_TAIL_SEP.search(left).start()]
    left_sep = left[len(head):]
    right_sep = _HEAD_SEP.match(right)[0]
    tail = right[len(right_sep):]
    if head and tail and _PAIRS.get(head[-1]) == tail[0]:      # "()" left empty
        return _merge(head[:-1], tail[1:], nothing_before, nothing_after)
    if nothing_before and not head:
        return tail
    if nothing_after and not tail:
        return head
    if (head and head[-1] in _PAIRS) or (tail and tail[0] in _CLOSERS):
        return head + tail
    return head + _keep_separator(left_sep, right_sep) + tail


def _keep_separator(left_sep: str, right_sep: str) -> str:
    # The same mark on both sides (" | {source} | ") stays once; otherwise
    # the mark belonged to the missing field and only white space remains.
    if left_sep.strip() and left_sep.strip() == right_sep.strip():
        return right_sep
    spaces = ["".join(c for c in sep if c.isspace()) for sep in (left_sep, right_sep)]
    return max(spaces, key=lambda s: (s.count("\n"), len(s))) or " "


def _tidy(text: str) -> str:
    text = regex.sub(r"[^\S\n]+", " ", text)
    text = regex.sub(r" ?\n ?", "\n", text)
    return regex.sub(r"\n{3,}", "\n\n", text).strip()


# ------------------------------------------------------------ cutting

# Scripts written without spaces, and emoji (often strung together): a cut
# may fall between any two of their grapheme clusters.
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Bopomofo}"
                                 r"\u3000-\u303f\uff00-\uffef"
                                 r"\p{Extended_Pictographic}\p{Regional_Indicator}]")
_PAUSES = frozenset("、，；：")
# Left at the end of a cut, these would dangle before the "…". (Field
# values have had their white space collapsed to single spaces.)
_TRAILING_JUNK = " ,;:、，；：-–—([{“‘«「『（"
_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr prof gen sen rep gov lt col sgt "
                           "capt no nr vs etc approx inc ltd co corp".split())
_SENTENCE_END = regex.compile(
    r"[.!?…]+[\"'”’»)\]]*(?=\s+[^\s\p{Ll}]|\s*\Z)|[。！？]+[」』”’）)]*")


def _protected(text: str) -> list[tuple[int, int]]:
    """Spans no cut may fall inside: URLs and hashtags or mentions, sorted."""
    spans = twittertext.url_spans(text) + twittertext.hashtag_spans(text)
    return sorted(spans + [m.span() for m in regex.finditer(f"[@＠][{_TAG_CHARS}]+", text)])


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    # Spans are sorted and, but for a hashtag in a URL, disjoint: only the
    # last one starting before ``pos`` (or its neighbour) can hold it.
    index = bisect.bisect_left(spans, (pos,)) - 1
    return any(start < pos < end for start, end in spans[max(index - 1, 0):index + 1])


class _Cuts(Sequence):
    """Prefixes of a text, each ending at one of ``ends`` and followed by
    ``tail``; built only when asked for, so a long text costs no copies."""

    def __init__(self, text: str, ends: list[int], tail: str = "") -> None:
        self.text, self.ends, self.tail = text, ends, tail

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, index):
        return self.text[:self.ends[index]] + self.tail


def _sentence_cuts(text: str) -> Sequence[str]:
    """Prefixes of ``text`` that end a sentence, shortest first."""
    spans, last = _protected(text), len(text.rstrip())
    ends = [_end_before_space(text, m.end()) for m in _SENTENCE_END.finditer(text)
            if not _inside(m.end(), spans) and m.end() < last and not _abbreviation(text, m)]
    return _Cuts(text, ends)


def _end_before_space(text: str, end: int, junk: str = " ") -> int:
    while end and text[end - 1] in junk:
        end -= 1
    return end


def _abbreviation(text: str, match: regex.Match) -> bool:
    """True when the full stop of ``match`` closes "U.S." or "Dr." rather
    than a sentence."""
    if not match[0].startswith("."):
        return False
    word = regex.search(r"[\p{L}.]*\Z", text[max(match.start() - 64, 0):match.start()])[0]
    return "." in word or len(word) == 1 or word.casefold() in _ABBREVIATIONS


def _word_cuts(text: str, any_grapheme: bool = False) -> Sequence[str]:
    """Prefixes of ``text`` cut at a word (or, between characters of
    scripts written without spaces, at a grapheme) followed by "…",
    shortest first. ``any_grapheme`` allows any grapheme boundary outside
    URLs and hashtags: the last resort for one overlong word."""
    spans = _protected(text)
    graphemes = regex.findall(r"\X", text)
    ends, pos = [], 0
    for before, after in zip(graphemes, graphemes[1:], strict=False):
        pos += len(before)
        if _inside(pos, spans):
            continue
        if any_grapheme or after[0].isspace() or _NO_SPACE_SCRIPT.match(before) \
                or _NO_SPACE_SCRIPT.match(after):
            end = _end_before_space(text, pos, _TRAILING_JUNK)
            if end and (not ends or ends[-1] != end):
                ends.append(end)
    return _Cuts(text, ends, ELLIPSIS)


def _longest(candidates: Sequence[str], fits: Callable[[str], bool]) -> int | None:
    """Index of the longest candidate that fits; candidates grow in length
    (so fitting is monotone enough for a binary search)."""
    low, high, best = 0, len(candidates) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(candidates[middle]):
            best, low = middle, middle + 1
        else:
            high = middle - 1
    return best


def _best_word_cut(text: str, fits: Callable[[str], bool], any_grapheme: bool = False) -> str | None:
    cuts = _word_cuts(text, any_grapheme)
    best = _longest(cuts, fits)
    if best is None:
        return None
    for index in range(best, -1, -1):
        end = cuts.ends[index]
        if end < _PAUSE_SHARE * cuts.ends[best]:
            break
        if text[end:end + 1] in _PAUSES:      # "、" came right after the kept text
            return cuts[index]
    return cuts[best]


# ------------------------------------------------------------ compose


def compose(article: Article, template: str, limits: Limits, *,
            hashtag_map: Mapping[str, str] = {}, max_hashtags: int = 2,
            source: str = "", utm: Mapping[str, str] | None = None) -> str:
    """The text of a post for ``article``, at most ``limits.max_length`` long.

    ``template`` uses the fields of ``bot.config.TEMPLATE_FIELDS``
    (``{title}``, ``{lead}``, ``{url}``, ``{hashtags}``, ``{source}``,
    ``{author}``) in ``str.format`` style, ``{{``/``}}`` for braces;
    ``{lead:N}`` caps the lead at N characters, cut at a word with "…" (the
    only format spec). ``utm`` (see ``utm_params``) is added to the link's
    query (``tracked``). An empty field takes its separator with it. Never
    empty; raises ValueError for a bad template, or when even the URL alone
    is longer than the limit."""
    lits, names, lead_cap = _parse_template(template)
    lits = [_strip_invisible(lit) for lit in lits]
    url = _strip_invisible(_nfc(article.url.strip()))
    fields = {
        "title": _field(article.title, limits), "lead": _capped(_field(article.lead, limits), lead_cap),
        "url": tracked(url, utm) if utm else url,
        "source": _clean(source), "author": _clean(article.author or ""),
    }
    tags = hashtags_for(article.categories, f"{fields['title']}\n{fields['lead']}",
                        hashtag_map, max_hashtags) if "hashtags" in names else []

    def render(title: str, lead: str, hashtags: Sequence[str] = ()) -> str:
        values = {**fields, "title": title, "lead": lead, "hashtags": " ".join(hashtags)}
        return _render(lits, [values[name] for name in names])

    def fits(text: str) -> bool:
        return bool(text) and within(text, limits)

    title, lead = fields["title"], fields["lead"]
    for choice in [(title, lead), *_shorter_posts(title, lead, render, fits, "url" in names)]:
        # hashtags go in while they fit, after the text has been made to fit
        for count in range(len(tags) if choice else -1, -1, -1):
            if fits(text := render(*choice, tags[:count])):
                return text
    if fits(fields["url"]):
        return fields["url"]
    raise ValueError(f"the link alone is longer than {limits.max_length}: {fields['url']!r}")


def _shorter_posts(title: str, lead: str, render: Callable[..., str],
                   fits: Callable[[str], bool], has_url: bool) -> Iterator[tuple[str, str] | None]:
    """Ever shorter (title, lead) pairs, in the order things are given up; each
    fits without hashtags, or is None when that step has nothing to offer.
    Computed lazily."""
    def fits_lead(cut: str) -> bool:
        return fits(render(title, cut))

    def fits_title(cut: str) -> bool:
        return fits(render(cut, ""))

    sentences = _sentence_cuts(lead)
    best = _longest(sentences, fits_lead)
    yield None if best is None else (title, sentences[best])
    cut = _best_word_cut(lead, fits_lead)
    # Weighed the X way so that a few CJK characters count as a few words.
    worthwhile = cut and twittertext.weighted_length(cut) >= MIN_CUT_LEAD
    yield (title, cut) if worthwhile else None
    yield (title, "") if lead and fits(render(title, "")) else None
    cut = _best_word_cut(title, fits_title)
    yield None if cut is None else (cut, "")
    yield ("", "") if has_url and fits(render("", "")) else None
    cut = _best_word_cut(title, fits_title, any_grapheme=True)
    yield None if cut is None else (cut, "")


def _capped(lead: str, cap: int | None) -> str:
    """``lead`` in at most ``cap`` characters (code points, "…" included), cut
    at a word (between characters in scripts without spaces), else at a
    grapheme when one word is longer than the cap."""
    if cap is None or len(lead) <= cap:
        return lead
    fits = lambda cut: len(cut) <= cap   # noqa: E731
    return _best_word_cut(lead, fits) or _best_word_cut(lead, fits, any_grapheme=True) or ""


# ------------------------------------------------------------ tracking parameters


def utm_params(utm: Utm | None, account: str, platform: str, feed: str) -> dict[str, str]:
    """``utm_source``/``utm_medium``/``utm_campaign`` from ``utm``, their
    ``{account}``, ``{platform}`` and ``{feed}`` filled in; a value that comes
    out empty is left out. {} without ``utm``. ValueError for another
    placeholder (the config refuses them) or malformed braces."""
    if utm is None:
        return {}
    values = {"account": account, "platform": platform, "feed": feed}
    out = {}
    for key, text in (("utm_source", utm.source), ("utm_medium", utm.medium), ("utm_campaign", utm.campaign)):
        filled = _fill(text or "", values)
        if filled.strip():
            out[key] = filled.strip()
    return out


def _fill(text: str, values: Mapping[str, str]) -> str:
    # by hand, not str.format: "{account.__class__}" must not reach an attribute
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            if name not in values or spec or conversion:
                raise ValueError(f"unknown placeholder {{{name}}} in {text!r}; known: "
                                 "{account}, {platform}, {feed}")
            out.append(values[name])
    return "".join(out)


def tracked(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query, percent-encoded, after the
    parameters it has; one it already has (any case) is left as it is, and
    the fragment stays last. A URL that is not http(s) is returned as is."""
    if not params or not regex.match(r"(?i)https?://", url):
        return url
    rest, hash_mark, fragment = url.partition("#")
    base, question, query = rest.partition("?")
    have = {unquote_plus(pair.partition("=")[0]).casefold() for pair in query.split("&") if pair}
    added = [f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in params.items()
             if key.casefold() not in have]
    if not added:
        return url
    query = "&".join([query.rstrip("&")] + added if query.rstrip("&") else added)
    return f"{base}?{query}{hash_mark}{fragment}"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Never in a post: controls (NUL is refused by PostgreSQL, others garble),
# bidi embeddings, overrides and isolates (they can reverse the text that
# follows, the link included), zero-width spaces and BOMs (X refuses U+FEFF),
# non-characters. A joiner stays only between letters, marks or emoji,
# where scripts and emoji sequences need it.
_INVISIBLE = regex.compile(
    r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff\ufffe\uffff]"
    r"|(?<![\p{L}\p{M}\p{Extended_Pictographic}\p{Emoji_Component}])[\u200c\u200d]"
    r"|[\u200c\u200d](?![\p{L}\p{M}\p{Extended_Pictographic}\p{Emoji_Component}])")


def _strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def _clean(text: str) -> str:
    """NFC, without invisible characters, with runs of white space
    (newlines included) made one space."""
    return " ".join(_strip_invisible(_nfc(text)).split())


def _field(raw: str, limits: Limits) -> str:
    """A title or lead cleaned and bounded; a huge one is cut before it is
    even cleaned, at far more than a post can hold."""
    cap = 8 * limits.max_length + 4096
    text = _clean(raw[:cap])
    bounded = _bounded(text, limits)
    if len(raw) > cap and bounded is text:
        bounded = _cut_before(text, len(text)) + ELLIPSIS
    return bounded


def _bounded(text: str, limits: Limits) -> str:
    """``text``, or when it is far longer than any post of ``limits`` could
    hold, a prefix cut at a space (else a grapheme) that is already too long,
    with "…": the expensive fitting then never sees a huge field."""
    size = 2 * limits.max_length + 64
    while size < len(text):
        if measure(text[:size], limits) > limits.max_length:
            return _cut_before(text, size) + ELLIPSIS
        size *= 2
    return text


def _cut_before(text: str, size: int) -> str:
    space = text.rfind(" ", 0, size)
    if space > 0:
        return text[:space]
    graphemes = regex.findall(r"\X", text[:size + 16])
    return "".join(graphemes[:-2]) if len(graphemes) > 2 else ""
