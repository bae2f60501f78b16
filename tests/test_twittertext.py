"""twitter-text conformance (the weighted-length sections of the official
validate.yml, vendored in tests/data/conformance) and cases of our own,
among them where twitter-text 3.1.0 (npm) counts otherwise."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest
import yaml

from bot import twittertext
from bot.twittertext import CONFIG_V3, MAX_LENGTH, is_valid, parse, url_spans, weighted_length

SUITE = Path(__file__).parent / "data" / "conformance" / "twitter-text-validate.yml"
# The suite's first weighted section predates emoji parsing (config v2,
# which differs from v3 only in that switch); the others use v3.
CONFIG_V2 = dataclasses.replace(CONFIG_V3, emoji_parsing=False)
SECTIONS = {
    "WeightedTweetsCounterTest": CONFIG_V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": CONFIG_V3,
    "UnicodeDirectionalMarkerCounterTest": CONFIG_V3,
}


@functools.lru_cache(maxsize=1)
def _suite() -> dict:
    return yaml.safe_load(SUITE.read_text(encoding="utf-8"))["tests"]


def _params(*sections: str) -> list:
    """One pytest param (section, case) per case of ``sections``."""
    return [pytest.param(section, case, id=f"{section}:{case['description'][:60]}")
            for section in sections for case in _suite()[section]]


def test_vendored_config_is_the_one_herald_uses():
    vendored = SUITE.with_name("twitter-text-config-v3.json")
    assert twittertext.TextConfig.load(vendored) == CONFIG_V3


@pytest.mark.parametrize("section", list(SECTIONS))
def test_suite_section_is_there(section):
    assert _suite()[section], section


@pytest.mark.parametrize("section, case", _params(*SECTIONS))
def test_weighted_length_conformance(section, case):
    result = parse(case["text"], SECTIONS[section])
    expected = case["expected"]
    assert (result.weighted_length, result.valid, result.permillage) == (
        expected["weightedLength"], expected["valid"], expected["permillage"])


@pytest.mark.parametrize("section, case", _params("urls_without_protocol"))
def test_url_without_protocol_is_one_whole_url(section, case):
    assert url_spans(case["text"]) == [(0, len(case["text"]))]


def test_max_length_comes_from_the_v3_config():
    assert MAX_LENGTH == 280
    assert CONFIG_V3.transformed_url_length == 23 and CONFIG_V3.emoji_parsing


@pytest.mark.parametrize("text, spans", [
    ("read https://example.com/a/b?c=d. now", [(5, 32)]),
    ("see example.com, and foo.jp and foo.co", [(4, 15), (32, 38)]),
    ("foo.jp/path", [(0, 11)]),
    ("(https://en.wikipedia.org/wiki/Primer_(film))", [(1, 44)]),
    ("https://t.co/abc123xyz/more", [(0, 22)]),
    ("https://t.co/abc?x=1&y=2. next", [(0, 24)]),     # a t.co link keeps its query
    ("x ñandú.museum/", [(2, 15)]),                   # after a space the "ñ" stays
    ("no url here: 3.14, a.b, mail@example.com", []),
    ("x.-example.com", []),
    ("https://münchen.de/", [(0, 19)]),
])
def test_url_spans(text, spans):
    assert url_spans(text) == spans


@pytest.mark.parametrize("text, length", [
    ("", 0),
    ("abc", 3),
    ("e\u0301", 1),                       # NFC makes one "é"
    ("日本語", 6),
    ("👍🏽", 2),                          # skin tone: one emoji
    ("🇫🇷", 2),                           # flag: one emoji
    ("#️⃣", 2),                           # keycap
    ("©", 1), ("©\ufe0f", 2),             # text-default pictograph
    ("https://example.com/" + "a" * 500, 23),
    ("a\u2014b", 3),                      # em dash is in a weight-1 range
])
def test_weighted_length_cases(text, length):
    assert weighted_length(text) == length


def test_is_valid_boundaries():
    assert is_valid("a" * 280)
    assert not is_valid("a" * 281)
    assert not is_valid("")
    assert not is_valid("ok\ufeff")
    assert is_valid("字" * 140) and not is_valid("字" * 141)


def test_module_has_no_network_imports():
    source = Path(twittertext.__file__).read_text(encoding="utf-8")
    assert "requests" not in source and "urllib.request" not in source


# Measured with node's twitter-text 3.1.0 (bench/twitter_count.py): newer emoji
# count as their parts there, and a bare "foo.jp" counts 23.
@pytest.mark.parametrize("text, v3, as_310", [
    ("🫶🏼", 2, 4), ("🐦‍⬛", 2, 5), ("🙂‍↕️", 2, 5), ("🏃‍➡️", 2, 5), ("🐻‍❄️", 2, 5),
    ("🧑‍🤝‍🧑", 2, 8), ("🇦🇦", 2, 4), ("❤️‍🔥", 2, 5), ("🫱🏻‍🫲🏿", 2, 9), ("🤝🏻", 2, 4),
    ("🇫🇷", 2, 2), ("👨‍👩‍👧‍👦", 2, 2), ("👍🏽", 2, 2), ("👩🏽‍🚀", 2, 2), ("🏴󠁧󠁢󠁳󠁣󠁴󠁿", 2, 2),
    ("👩‍👨‍👦", 2, 5), ("👨‍❤️‍👩", 2, 8), ("#️⃣", 2, 2), ("©️", 2, 2), ("🙂\ufe0f", 2, 4),
    ("foo.jp", 6, 23), ("it.so", 5, 23), ("bit.ly", 6, 23), ("t.co", 23, 23),
    ("ñandú.museum/", 24, 24), ("https://t.co/abc?x=1", 23, 23),
])
def test_both_countings(text, v3, as_310):
    assert parse(text).weighted_length == v3
    assert parse(text, as_310=True).weighted_length == as_310
    assert weighted_length(text) == max(v3, as_310)


def test_is_valid_needs_both_countings():
    assert is_valid("a" * 272 + "🐦‍⬛")            # 274 and 277
    assert not is_valid("a" * 276 + "🐦‍⬛")        # 278 by v3, 281 by 3.1.0
