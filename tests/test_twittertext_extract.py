"""twitter-text's extract.yml (vendored in tests/data/conformance): the URL and
hashtag cases, against ``url_spans`` and ``hashtag_spans``."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from bot.twittertext import hashtag_spans, url_spans

SUITE = Path(__file__).parent / "data" / "conformance" / "extract.yml"
# Cases Herald does not pass, with the reason; counted by the last test.
KNOWN_EXCEPTIONS = {
    "Extract a hyphenated TLD (usually a typo)":
        "the TLD must not be followed by '-' (validGTLD's lookahead); twitter-text 3.1.0 "
        "itself extracts nothing here",
}


@functools.lru_cache(maxsize=1)
def _suite() -> dict:
    return yaml.safe_load(SUITE.read_text(encoding="utf-8"))["tests"]


def _params(*sections: str) -> list:
    return [pytest.param(case, id=f"{section}:{case['description'][:60]}",
                         marks=_known(case["description"]))
            for section in sections for case in _suite()[section]]


def _known(description: str) -> list:
    reason = KNOWN_EXCEPTIONS.get(description)
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


def _texts(text: str, spans: list[tuple[int, int]], skip: int = 0) -> list[str]:
    return [text[start + skip:end] for start, end in spans]


@pytest.mark.parametrize("case", _params("urls"))
def test_urls(case):
    assert _texts(case["text"], url_spans(case["text"])) == case["expected"]


@pytest.mark.parametrize("case", _params("urls_with_indices"))
def test_urls_with_indices(case):
    expected = [(e["url"], tuple(e["indices"])) for e in case["expected"]]
    spans = url_spans(case["text"])
    assert list(zip(_texts(case["text"], spans), spans, strict=True)) == expected


@pytest.mark.parametrize("case", _params("hashtags", "hashtags_from_astral"))
def test_hashtags(case):
    assert _texts(case["text"], hashtag_spans(case["text"]), skip=1) == case["expected"]


@pytest.mark.parametrize("case", _params("hashtags_with_indices"))
def test_hashtags_with_indices(case):
    expected = [(e["hashtag"], tuple(e["indices"])) for e in case["expected"]]
    spans = hashtag_spans(case["text"])
    assert list(zip(_texts(case["text"], spans, skip=1), spans, strict=True)) == expected


def test_the_suite_is_vendored_and_exceptions_are_few():
    cases = sum(len(_suite()[s]) for s in ("urls", "urls_with_indices", "hashtags",
                                            "hashtags_from_astral", "hashtags_with_indices"))
    assert cases == 155 and len(KNOWN_EXCEPTIONS) <= 3
