"""twitter-text conformance (the weighted-length sections of the official
validate.yml in shared/conformance) and a few cases of our own."""
from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import pytest
import yaml

from bot import twittertext
from bot.twittertext import CONFIG_V3, MAX_LENGTH, is_valid, parse, url_spans, weighted_length

SHARED = Path(os.environ.get("HERALD_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SUITE = SHARED / "conformance" / "twitter-text-validate.yml"
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
    if not SUITE.exists():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"{SUITE} not found"))]
    return [pytest.param(section, case, id=f"{section}:{case['description'][:60]}")
            for section in sections for case in _suite()[section]]


def test_suite_is_found_in_ci():
    # Locally a checkout without shared/ skips the suite; CI must not.
    assert SUITE.exists() or not os.environ.get("CI"), f"{SUITE} not found"


@pytest.mark.parametrize("section", list(SECTIONS))
def test_suite_section_is_there(section):
    if not SUITE.exists():
        pytest.skip(f"{SUITE} not found")
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
