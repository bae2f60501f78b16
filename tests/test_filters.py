"""Route filters: keywords (whole words, case- and accent-insensitive, CJK
substrings), categories, regexes with a timeout; each decision a short reason."""
from __future__ import annotations

import re
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import filters
from bot.configtypes import Filters
from bot.filters import decide, fold
from bot.models import Article


def item(title="", lead="", categories=(), summary="") -> Article:
    return Article(feed="f", item_id="1", url="https://n.example/1", title=title, lead=lead,
                   categories=tuple(categories), summary=summary)


CASES = [  # (filters, article, expected reason or None)
    (Filters(), item("Anything"), None),
    (Filters(exclude=("sport",)), item("Le SPORT ce soir"), 'excluded keyword "sport"'),
    (Filters(exclude=("sport",)), item("Sports roundup"), None),                      # whole words
    (Filters(exclude=("sport",)), item("Transport strike"), None),
    (Filters(exclude=("sport",)), item("", lead="After the sport: results"), 'excluded keyword "sport"'),
    (Filters(exclude=("Élection",)), item("ELECTION night"), 'excluded keyword "Élection"'),
    (Filters(exclude=("election",)), item("Élection présidentielle"), 'excluded keyword "election"'),
    (Filters(exclude=("straße",)), item("Neue STRASSE gebaut"), 'excluded keyword "straße"'),
    (Filters(exclude=("live blog",)), item("Our live\n  blog today"), 'excluded keyword "live blog"'),
    (Filters(exclude=("trump",)), item("Trump's tariffs"), 'excluded keyword "trump"'),
    (Filters(exclude=("東京",)), item("東京都の天気"), 'excluded keyword "東京"'),             # no spaces in CJK
    (Filters(exclude=("オリンピック",)), item("パリオリンピック開幕"), 'excluded keyword "オリンピック"'),
    (Filters(exclude=("ข่าว",)), item("ข่าววันนี้"), 'excluded keyword "ข่าว"'),                # Thai
    (Filters(exclude=("tokyo",)), item("東京tokyo駅"), 'excluded keyword "tokyo"'),            # Latin among CJK
    (Filters(exclude=("tokyo",)), item("tokyoite"), None),
    (Filters(include=("vote", "élection")), item("Election day"), None),
    (Filters(include=("vote", "élection")), item("Weather"), "no included keyword (vote, élection)"),
    (Filters(include=("sport",), exclude=("sport",)), item("sport"), 'excluded keyword "sport"'),  # exclude wins
    (Filters(include=("budget",)), item("Title", summary="<p>The <b>budget</b> vote</p>"), None),  # summary w/o lead
    (Filters(categories=("World",)), item("x", categories=["world"]), None),
    (Filters(categories=("World",)), item("x", categories=["Opinion"]), 'category "Opinion" not included'),
    (Filters(categories=("World",)), item("x"), "no category (included: World)"),
    (Filters(exclude_categories=("Opinión",)), item("x", categories=["OPINION "]), 'category "OPINION" excluded'),
    (Filters(match=r"^breaking\b"), item("Breaking: a thing"), None),
    (Filters(match=r"^breaking\b"), item("A thing", lead="breaking news"), None),     # title or lead
    (Filters(match=r"^breaking\b"), item("A thing"), "does not match /^breaking\\b/"),
    (Filters(not_match=r"\bquiz\b"), item("The Friday QUIZ"), "matches /\\bquiz\\b/"),
    (Filters(not_match=r"\bquiz\b"), item("Quizzes"), None),
]


@pytest.mark.parametrize("rules, article, expected", CASES)
def test_decisions_and_their_reasons(rules, article, expected):
    assert decide(rules, article) == expected


def test_no_filters_pass_everything():
    assert decide(None, item("x")) is None and filters.decider(None)(item("x")) is None


def test_a_catastrophic_regex_is_cut_short_and_filters_the_item_out():
    rules = Filters(match=r"(x+x+)+y")
    started = time.monotonic()
    assert decide(rules, item("x" * 100_000)) == "a filter regex timed out"
    assert time.monotonic() - started < 5   # two searches of TIMEOUT each, over MAX_TEXT characters


def test_patterns_are_checked_once_and_bad_ones_named():
    assert filters.pattern_problem(r"^ok$") is None
    assert filters.pattern_problem("(").startswith("not a valid regular expression")
    assert "at most 500" in filters.pattern_problem("a" * 501)
    assert filters.compiled("^ok$") is filters.compiled("^ok$")


# -- properties --------------------------------------------------------------------

WORD = st.from_regex(r"[a-z]{2,8}", fullmatch=True)
ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0327", "\u030c"]


@st.composite
def disguised(draw, text: str) -> str:
    """``text`` with case changed and accents added at random, letter by letter."""
    out = []
    for char in text:
        char = char.upper() if draw(st.booleans()) else char
        if char.isalpha() and draw(st.booleans()):
            char = unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), char + draw(st.sampled_from(ACCENTS)))
        out.append(char)
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(WORD, min_size=1, max_size=8), st.lists(WORD, min_size=1, max_size=3),
       st.lists(WORD, max_size=3), st.data())
def test_accents_and_case_never_change_the_decision(words, include, exclude, data):
    title = " ".join(words)
    rules = Filters(include=tuple(include), exclude=tuple(exclude))
    plain = decide(rules, item(title))
    assert decide(rules, item(data.draw(disguised(title)))) == plain
    other = Filters(include=tuple(data.draw(disguised(k)) for k in include),
                    exclude=tuple(data.draw(disguised(k)) for k in exclude))
    assert (decide(other, item(title)) is None) == (plain is None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(WORD, st.sampled_from(["-", ",", "'s", "!", "東京", "é"])), min_size=1, max_size=12),
       st.lists(WORD, max_size=3), st.lists(WORD, max_size=3))
def test_an_item_passes_exactly_when_it_has_an_included_word_and_no_excluded_one(parts, include, exclude):
    title = " ".join(parts)
    tokens = set(re.findall(r"[a-z]+", fold(title)))   # an independent oracle: ASCII words
    expected_pass = not tokens & set(exclude) and (not include or bool(tokens & set(include)))
    reason = decide(Filters(include=tuple(include), exclude=tuple(exclude)), item(title))
    assert (reason is None) == expected_pass, reason
    if tokens & set(exclude):
        assert reason.startswith("excluded keyword")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(min_size=1, max_size=20).filter(str.split),
       st.sampled_from(["(a+)+$", r"\bx", "(?i)ü", "[^a]*b"]))
def test_hostile_text_never_raises(text, keyword, pattern):
    rules = Filters(include=(keyword,), exclude=(keyword[::-1],), categories=(keyword,), match=pattern,
                    not_match=pattern)
    reason = decide(rules, item(text, lead=text, categories=[text]))
    assert reason is None or isinstance(reason, str)


@given(st.text(max_size=50))
def test_folding_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


def test_a_keyword_that_folds_to_nothing_matches_nothing():
    assert decide(Filters(include=("\u0301",), exclude=("\u0301",)), item("é")) is None


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=40) | st.text("()[]{}?*+|\\^$.<>=!:-,0123456789pPx", max_size=30))
def test_any_pattern_is_accepted_or_refused_with_a_reason(pattern):
    problem = filters.pattern_problem(pattern)
    assert problem is None or problem.startswith(("not a valid regular expression", "expected"))
    if problem is None:
        decide(Filters(match=pattern), item("some title " * 50))
