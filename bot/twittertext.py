"""Post length as X counts it: the twitter-text v3 rules, in our own code.

A port of the length parts of twitter-text (github.com/twitter/twitter-text,
Apache-2.0; its config and TLD list are in ``bot/data``). The text is NFC
normalised; each URL counts ``transformedURLLength`` (23); each emoji sequence
counts ``defaultWeight``; any other code point counts the weight of the range
it falls in, else ``defaultWeight``. Weights are scaled by 100, so 200 is "2".

URLs are found with twitter-text's extraction regex (with or without a
scheme, known TLDs only, DNS labels of at most 63 characters once
punycode-encoded), so "example.com" counts 23 but "foo.jp" alone does not.
Indices here are code points of the text as given; the reference library
counts UTF-16 units, which only matters for its display ranges (not ported).
"""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import regex

_DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class TextConfig:
    """One twitter-text weighting config (``twitter-text-config-v3.json``)."""

    max_weighted_length: int
    scale: int
    default_weight: int
    transformed_url_length: int
    ranges: tuple[tuple[int, int, int], ...]   # (first, last, weight), inclusive
    emoji_parsing: bool

    @classmethod
    def load(cls, path: Path) -> TextConfig:
        """Read a twitter-text config JSON file."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            max_weighted_length=raw["maxWeightedTweetLength"],
            scale=raw["scale"],
            default_weight=raw["defaultWeight"],
            transformed_url_length=raw["transformedURLLength"],
            ranges=tuple((r["start"], r["end"], r["weight"]) for r in raw["ranges"]),
            emoji_parsing=bool(raw.get("emojiParsingEnabled", False)),
        )


CONFIG_V3 = TextConfig.load(_DATA / "twitter-text-config-v3.json")
MAX_LENGTH = CONFIG_V3.max_weighted_length   # 280


@dataclass(frozen=True)
class ParseResult:
    """What X would say of a text: its weighted length, whether it may be
    posted, and how full it is in thousandths of the limit."""

    weighted_length: int
    valid: bool
    permillage: int


# ------------------------------------------------------------ URL pattern


def _read_tlds(path: Path) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            current.extend(line.split())
    return sections


def _tld_alternation(names: list[str]) -> str:
    # Longest first so "com" never wins over "comcast"; the lookahead then
    # rejects a TLD glued to more letters.
    alternatives = "|".join(regex.escape(n) for n in sorted(names, key=len, reverse=True))
    return rf"(?:(?:{alternatives})(?=[^0-9a-z@+-]|\Z))"


_TLDS = _read_tlds(_DATA / "twitter-text-tlds.txt")
_INVALID_CHARS = "\ufffe\ufeff\uffff"
_DIRECTIONAL = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_SPACES = "\x09-\x0d\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_PUNCT = r"!\"#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~\\"
_LATIN_ACCENTS = ("\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256"
                  "\u0257\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb"
                  "\u0300-\u036f\u1e00-\u1eff")
_CYRILLIC = "\u0400-\u04ff"

_DC = f"[^{_DIRECTIONAL}{_PUNCT}{_SPACES}\x00-\x1f\x7f{_INVALID_CHARS}]"
_SUBDOMAIN = rf"(?:(?:{_DC}(?:[_-]|{_DC})*)?{_DC}\.)"
_DOMAIN_NAME = rf"(?:(?:{_DC}(?:-|{_DC})*)?{_DC}\.)"
_GTLD = _tld_alternation(_TLDS["generic"])
_CCTLD = _tld_alternation(_TLDS["country"])
_PUNYCODE = r"(?:xn--[-0-9a-z]+)"
_ANY_TLD = f"(?:{_GTLD}|{_CCTLD}|{_PUNYCODE})"
_DOMAIN = f"(?:{_SUBDOMAIN}*{_DOMAIN_NAME}{_ANY_TLD})"
_PRECEDING = f"(?:[^a-z0-9@\uff20$#\uff03{_INVALID_CHARS}]|[{_DIRECTIONAL}]|^)"
_PC = f"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~&|@{_LATIN_ACCENTS}]"
_PARENS = rf"\((?:{_PC}+|(?:{_PC}*\({_PC}+\){_PC}*))\)"
_PATH_END = f"(?:[+\\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|{_PARENS})"
_PATH = f"(?:(?:{_PC}*(?:{_PARENS}{_PC}*)*{_PATH_END})|(?:@{_PC}+/))"
_QUERY = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_QUERY_END = r"[a-z0-9\-_&=#/]"

_FLAGS = regex.IGNORECASE | regex.VERSION0
_EXTRACT_URL = regex.compile(
    f"(?P<before>{_PRECEDING})"
    f"(?P<url>(?P<protocol>https?://)?(?P<domain>{_DOMAIN})(?::[0-9]+)?"
    f"(?P<path>/{_PATH}*)?(?:\\?{_QUERY}*{_QUERY_END})?)", _FLAGS)
_ASCII_DOMAIN = regex.compile(f"(?:(?:[-a-z0-9{_LATIN_ACCENTS}]+)\\.)+{_ANY_TLD}", _FLAGS)
_SHORT_DOMAIN = regex.compile(f"^{_DOMAIN_NAME}{_CCTLD}\\Z", _FLAGS)
_SPECIAL_SHORT = regex.compile(f"^{_DOMAIN_NAME}(?:(?:co|tv)(?=[^0-9a-z@]|\\Z))\\Z", _FLAGS)
_TCO_URL = regex.compile(r"^https?://t\.co/([a-z0-9]+)", _FLAGS)
_NO_PROTOCOL_BAD_BEFORE = regex.compile(r"[-_./]\Z")
_DOTTED_RUN = regex.compile(r"(?<!\S)[^\s.]*\.\S*")
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG = 40
_MAX_LABEL = 63


def _domain_ok(url: str, protocol: str, domain: str) -> bool:
    """twitter-text's ``isValidUrl``: every DNS label 1..63 characters once
    punycode-encoded, and scheme plus URL at most 4096 characters."""
    if domain.startswith("xn--") and not _ASCII_DOMAIN.search(domain):
        return False
    for label in domain.split("."):
        ascii_label = label if label.isascii() else "xn--" + label.encode("punycode").decode()
        if not 1 <= len(ascii_label) <= _MAX_LABEL:
            return False
    return len(protocol) + len(url) <= _MAX_URL_LENGTH


def _spans_without_protocol(match: regex.Match) -> list[tuple[int, int]]:
    # Without a scheme only the ASCII part of a domain links, and a bare
    # "name.cc" (country TLD, no path) does not, except .co and .tv.
    if _NO_PROTOCOL_BAD_BEFORE.search(match["before"]):
        return []
    start, domain, path = match.start("url"), match["domain"], match["path"]
    spans = []
    for ascii_domain in _ASCII_DOMAIN.finditer(domain):
        if path or _SPECIAL_SHORT.search(ascii_domain[0]) or not _SHORT_DOMAIN.search(ascii_domain[0]):
            spans.append((start + ascii_domain.start(), start + ascii_domain.end()))
    if path and spans:
        spans[-1] = (spans[-1][0], match.end("url"))
    return spans


def url_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` code-point spans of the URLs X would link in
    ``text``, in order, as twitter-text's ``extractUrlsWithIndices`` finds
    them. The text is taken as given: normalise it first to match
    ``weighted_length``."""
    # A URL never holds white space, so only runs with a dot need the big
    # pattern; at a run's start, "^" stands in for the space before it.
    spans: list[tuple[int, int]] = []
    for run in _DOTTED_RUN.finditer(text):
        spans.extend((run.start() + s, run.start() + e) for s, e in _spans_in(run[0]))
    return spans


def _spans_in(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in _EXTRACT_URL.finditer(text):
        url, protocol = match["url"], match["protocol"] or ""
        if not _domain_ok(url, protocol or "https://", match["domain"]):
            continue
        if not protocol:
            spans.extend(_spans_without_protocol(match))
            continue
        tco = _TCO_URL.match(url)
        if tco and len(tco[1]) > _MAX_TCO_SLUG:
            continue
        end = match.start("url") + len(tco[0]) if tco else match.end("url")
        spans.append((match.start("url"), end))
    return spans


# ------------------------------------------------------------ emoji

_EMOJI_ELEMENT = (
    r"(?:\p{Regional_Indicator}{2}"
    r"|[0-9#*]\ufe0f?\u20e3"
    r"|\p{Extended_Pictographic}[\ufe0e\ufe0f]?\p{Emoji_Modifier}?[\U000e0020-\U000e007f]*)"
)
_EMOJI = regex.compile(f"{_EMOJI_ELEMENT}(?:\u200d{_EMOJI_ELEMENT})*", regex.VERSION0)
# A pictograph drawn as text by default ("©", "☺") is only an emoji when
# something in the sequence asks for emoji presentation.
_EMOJI_MARK = regex.compile(r"[\p{Emoji_Presentation}\p{Emoji_Modifier}\p{Regional_Indicator}"
                            r"\ufe0f\u20e3\u200d\U000e0020-\U000e007f]")


def emoji_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of emoji sequences in ``text`` (ZWJ
    families, flags, keycaps, skin tones), each of which X counts once."""
    return [m.span() for m in _EMOJI.finditer(text)
            if "\ufe0e" not in m[0] and _EMOJI_MARK.search(m[0])]


# ------------------------------------------------------------ counting


def _char_weight(code_point: int, config: TextConfig) -> int:
    if code_point > 0xFFFF:
        # twitter-text weighs an astral character by its low surrogate.
        code_point = 0xDC00 + (code_point - 0x10000) % 0x400
    for first, last, weight in config.ranges:
        if first <= code_point <= last:
            return weight
    return config.default_weight


def _entities(text: str, config: TextConfig) -> dict[int, tuple[int, int]]:
    """start -> (end, scaled weight) for the URLs and emoji in ``text``."""
    found = {}
    if config.emoji_parsing:
        found = {s: (e, config.default_weight) for s, e in emoji_spans(text)}
    url_weight = config.transformed_url_length * config.scale
    found.update({s: (e, url_weight) for s, e in url_spans(text)})
    return found


def parse(text: str, config: TextConfig = CONFIG_V3) -> ParseResult:
    """Weigh ``text`` as X does (twitter-text ``parseTweet``)."""
    text = unicodedata.normalize("NFC", text)
    entities = _entities(text, config)
    scaled, index = 0, 0
    while index < len(text):
        if index in entities:
            index, weight = entities[index]
            scaled += weight
        else:
            scaled += _char_weight(ord(text[index]), config)
            index += 1
    length = scaled // config.scale
    clean = not any(c in text for c in _INVALID_CHARS)
    valid = clean and 0 < length <= config.max_weighted_length
    return ParseResult(length, valid, length * 1000 // config.max_weighted_length)


def weighted_length(text: str, config: TextConfig = CONFIG_V3) -> int:
    """The length X counts for ``text`` (280 is the limit)."""
    return parse(text, config).weighted_length


def is_valid(text: str, config: TextConfig = CONFIG_V3) -> bool:
    """True when X would accept ``text``: not empty, no BOM or non-characters
    (U+FFFE, U+FEFF, U+FFFF), and at most ``MAX_LENGTH`` weighted."""
    return parse(text, config).valid
