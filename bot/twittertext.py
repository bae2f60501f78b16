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
_TCO_URL = regex.compile(f"^https?://t\\.co/([a-z0-9]+)(?:\\?{_QUERY}*{_QUERY_END})?", _FLAGS)
_NO_PROTOCOL_BAD_BEFORE = regex.compile(r"[-_./]\Z")
# A run starts with the white space before it, as the pattern's "before"
# group would consume it; only at the start of the text does "^" stand in.
_DOTTED_RUN = regex.compile(r"(?:\s|^)[^\s.]*\.\S*")
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


def _spans_without_protocol(match: regex.Match, bare_cctld: bool) -> list[tuple[int, int]]:
    # Without a scheme only the ASCII part of a domain links, and (in v3 as
    # published) a bare "name.cc" (country TLD, no path) does not, except
    # .co and .tv; twitter-text 3.1.0 links it anyway (``bare_cctld``).
    if _NO_PROTOCOL_BAD_BEFORE.search(match["before"]):
        return []
    start, domain, path = match.start("url"), match["domain"], match["path"]
    spans = []
    for ascii_domain in _ASCII_DOMAIN.finditer(domain):
        name = ascii_domain[0]
        if path or bare_cctld or _SPECIAL_SHORT.search(name) or not _SHORT_DOMAIN.search(name):
            spans.append((start + ascii_domain.start(), start + ascii_domain.end()))
    if path and spans:
        spans[-1] = (spans[-1][0], match.end("url"))
    return spans


def url_spans(text: str, *, bare_cctld: bool = False) -> list[tuple[int, int]]:
    """The ``(start, end)`` code-point spans of the URLs X would link in
    ``text``, in order, as twitter-text's ``extractUrlsWithIndices`` finds
    them (the v3 conformance suite; ``bare_cctld=True`` as twitter-text
    3.1.0 does, linking "foo.jp"). The text is taken as given: normalise it
    first to match ``weighted_length``."""
    # A URL never holds white space, so only runs with a dot need the big
    # pattern.
    spans: list[tuple[int, int]] = []
    for run in _DOTTED_RUN.finditer(text):
        found = _spans_in(run[0], bare_cctld)
        spans.extend((run.start() + s, run.start() + e) for s, e in found)
    return spans


def _spans_in(text: str, bare_cctld: bool) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in _EXTRACT_URL.finditer(text):
        url, protocol = match["url"], match["protocol"] or ""
        if not _domain_ok(url, protocol or "https://", match["domain"]):
            continue
        if not protocol:
            spans.extend(_spans_without_protocol(match, bare_cctld))
            continue
        tco = _TCO_URL.match(url)
        if tco and len(tco[1]) > _MAX_TCO_SLUG:
            continue
        end = match.start("url") + len(tco[0]) if tco else match.end("url")
        spans.append((match.start("url"), end))
    return spans


# ------------------------------------------------------------ hashtags

# twitter-text's hashtag rules: letters, marks, digits, "_" and a few joiners
# ("～", "・", "·"), at least one letter or mark, not glued to a word before
# it, not followed by another "#" or "://", and never inside a URL.
HASHTAG_CHARS = ("\\p{L}\\p{M}\\p{Nd}_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c"
             "\u30a0\u30fb\u3003\u0f0b\u0f0c\u00b7")
_HASHTAG = regex.compile(
    f"(?:^|(?<=[^&{HASHTAG_CHARS}]))[#\uff03](?![\ufe0f\u20e3])"
    f"[{HASHTAG_CHARS}]*[\\p{{L}}\\p{{M}}][{HASHTAG_CHARS}]*(?![#\uff03]|://|[{HASHTAG_CHARS}])",
    regex.VERSION0)


def hashtag_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of the hashtags X would link in ``text``,
    "#" included, as twitter-text's ``extractHashtagsWithIndices`` finds
    them."""
    urls = url_spans(text)
    return [m.span() for m in _HASHTAG.finditer(text)
            if not any(start <= m.start() < end for start, end in urls)]


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


# ------------------------------------------------------------ emoji as twitter-text 3.1.0 sees them

# twitter-text 3.1.0 (npm) finds emoji with twemoji-parser 11, which knows
# the sequences of Emoji 11.0 only: a newer sequence ("🐦‍⬛", "🫶🏼", "🇦🇦")
# counts as its parts there. Only sequences of several code points matter
# (a lone pictograph weighs 2 either way), so these are the Emoji 11.0 ones.
_SKIN = "\U0001f3fb-\U0001f3ff"
# Pictographs that, followed by U+FE0F, make one Emoji 11.0 emoji: the
# text-default ones and the emoji-default ones of the BMP, less two newer.
_LEGACY_VS16 = ("[[[\\p{Emoji}--\\p{Emoji_Presentation}--\\p{Emoji_Component}]"
                "||[\\p{Emoji_Presentation}&&\\x00-\\uffff]||\U0001f004\U0001f21a\U0001f22f]"
                "--\u267e\u26a7]\ufe0f")
# Emoji 11.0's modifier bases (later versions added more, e.g. "🤝", "🫶").
_LEGACY_SKIN_BASE = ("\u261d\u26f7\u26f9\u270a-\u270d\U0001f385\U0001f3c2-\U0001f3c4\U0001f3c7"
                     "\U0001f3ca-\U0001f3cc\U0001f442\U0001f443\U0001f446-\U0001f450"
                     "\U0001f466-\U0001f469\U0001f46e\U0001f470-\U0001f478\U0001f47c"
                     "\U0001f481-\U0001f483\U0001f485-\U0001f487\U0001f4aa\U0001f574\U0001f575"
                     "\U0001f57a\U0001f590\U0001f595\U0001f596\U0001f645-\U0001f647"
                     "\U0001f64b-\U0001f64f\U0001f6a3\U0001f6b4-\U0001f6b6\U0001f6c0\U0001f6cc"
                     "\U0001f918-\U0001f91c\U0001f91e\U0001f91f\U0001f926\U0001f930-\U0001f939"
                     "\U0001f93d\U0001f93e\U0001f9b5\U0001f9b6\U0001f9b8\U0001f9b9\U0001f9d1-\U0001f9dd")
# The region codes of Emoji 11.0's flags.
_LEGACY_FLAGS = frozenset(
    "AC AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO "
    "BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CP CR CU CV CW CX CY CZ DE DG "
    "DJ DK DM DO DZ EA EC EE EG EH ER ES ET EU FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM "
    "GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU IC ID IE IL IM IN IO IQ IR IS IT JE JM JO JP "
    "KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK "
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE "
    "PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM "
    "SN SO SR SS ST SV SX SY SZ TA TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM UN "
    "US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW".split())
_LEGACY_FLAG = "|".join("".join(chr(0x1F1E6 + ord(c) - 65) for c in code) for code in _LEGACY_FLAGS)
_MAN_WOMAN = "[\U0001f468\U0001f469]"
_KID = "[\U0001f466\U0001f467]"
_GENDER = "\u200d[\u2640\u2642]\ufe0f"
_PARENTS = f"(?:\U0001f468(?:\u200d{_MAN_WOMAN})?|\U0001f469(?:\u200d\U0001f469)?)"
# Emoji 11.0's ZWJ sequences: jobs and hair styles, gendered roles,
# families, couples and a few named ones.
_LEGACY_ZWJ = "|".join([
    f"{_MAN_WOMAN}[{_SKIN}]?\u200d(?:[\u2695\u2696\u2708]\ufe0f"
    "|[\U0001f33e\U0001f373\U0001f393\U0001f3a4\U0001f3a8\U0001f3eb\U0001f3ed\U0001f4bb\U0001f4bc"
    "\U0001f527\U0001f52c\U0001f680\U0001f692\U0001f9b0-\U0001f9b3])",
    f"[\U0001f3cb\U0001f3cc\U0001f574\U0001f575\u26f9](?:[{_SKIN}]|\ufe0f){_GENDER}",
    "[\U0001f3c3\U0001f3c4\U0001f3ca\U0001f46e\U0001f471\U0001f473\U0001f477\U0001f481\U0001f482"
    "\U0001f486\U0001f487\U0001f645-\U0001f647\U0001f64b\U0001f64d\U0001f64e\U0001f6a3"
    "\U0001f6b4-\U0001f6b6\U0001f926\U0001f935\U0001f937-\U0001f939\U0001f93d\U0001f93e"
    f"\U0001f9b8\U0001f9b9\U0001f9d6-\U0001f9dd][{_SKIN}]?{_GENDER}",
    f"[\U0001f46f\U0001f93c\U0001f9de\U0001f9df]{_GENDER}",
    f"\U0001f468\u200d\u2764\ufe0f\u200d(?:\U0001f48b\u200d)?\U0001f468",
    f"\U0001f469\u200d\u2764\ufe0f\u200d(?:\U0001f48b\u200d)?{_MAN_WOMAN}",
    f"{_PARENTS}(?:\u200d\U0001f467)?\u200d{_KID}|{_PARENTS}\u200d\U0001f466\u200d\U0001f466",
    "\U0001f3f3\ufe0f\u200d\U0001f308|\U0001f3f4\u200d\u2620\ufe0f|\U0001f441\u200d\U0001f5e8",
])
_LEGACY_TAGS = ("\U0001f3f4\U000e0067\U000e0062(?:"
                "\U000e0065\U000e006e\U000e0067|\U000e0073\U000e0063\U000e0074|\U000e0077\U000e006c\U000e0073)\U000e007f")
_LEGACY_EMOJI = regex.compile(
    f"{_LEGACY_ZWJ}|[0-9#*]\ufe0f?\u20e3|{_LEGACY_TAGS}"
    f"|{_LEGACY_FLAG}|[{_LEGACY_SKIN_BASE}][{_SKIN}]|{_LEGACY_VS16}",
    regex.VERSION1)


def legacy_emoji_spans(text: str) -> list[tuple[int, int]]:
    """The spans of the emoji of several code points that twitter-text
    3.1.0 counts once (Emoji 11.0); anything newer counts as its parts."""
    return [m.span() for m in _LEGACY_EMOJI.finditer(text)]


# ------------------------------------------------------------ counting


def _char_weight(code_point: int, config: TextConfig) -> int:
    if code_point > 0xFFFF:
        # twitter-text weighs an astral character by its low surrogate.
        code_point = 0xDC00 + (code_point - 0x10000) % 0x400
    for first, last, weight in config.ranges:
        if first <= code_point <= last:
            return weight
    return config.default_weight


def _entities(text: str, config: TextConfig, as_310: bool) -> dict[int, tuple[int, int]]:
    """start -> (end, scaled weight) for the URLs and emoji in ``text``."""
    found = {}
    if config.emoji_parsing:
        spans = legacy_emoji_spans(text) if as_310 else emoji_spans(text)
        found = {s: (e, config.default_weight) for s, e in spans}
    url_weight = config.transformed_url_length * config.scale
    found.update({s: (e, url_weight) for s, e in url_spans(text, bare_cctld=as_310)})
    return found


def parse(text: str, config: TextConfig = CONFIG_V3, *, as_310: bool = False) -> ParseResult:
    """Weigh ``text`` as twitter-text v3 is published (``parseTweet`` and its
    conformance suite), or with ``as_310`` as twitter-text 3.1.0 (npm)
    does: emoji newer than Emoji 11.0 by their parts, "foo.jp" a URL."""
    text = unicodedata.normalize("NFC", text)
    entities = _entities(text, config, as_310)
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
    """The length X counts for ``text`` (280 is the limit): the larger of
    the two countings of ``parse``, since which one X's own counter uses
    today is unknown."""
    return max(parse(text, config).weighted_length,
               parse(text, config, as_310=True).weighted_length)


def is_valid(text: str, config: TextConfig = CONFIG_V3) -> bool:
    """True when X would accept ``text`` by both countings: not empty, no
    BOM or non-characters (U+FFFE, U+FEFF, U+FFFF), and at most
    ``MAX_LENGTH`` weighted."""
    return parse(text, config).valid and parse(text, config, as_310=True).valid
