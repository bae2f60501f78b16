"""compose with hostile text (issues 9 and 15): newer emoji, ZWJ sequences, flags,
bare ccTLD domains, CJK, RTL and control characters; invisible characters
stripped; huge titles bounded."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.compose import Limits, compose
from bot.models import Article
from bot.twittertext import parse, url_spans

X = Limits(280, 23, "twitter")
URL = "https://example.com/news/a"
PIECES = ["🫶🏼", "🐦‍⬛", "🙂‍↕️", "🏃‍➡️", "🐻‍❄️", "🧑‍🤝‍🧑", "🇦🇦", "🇫🇷", "👨‍👩‍👧‍👦", "🫱🏻‍🫲🏿",
          "foo.jp", "it.so", "bit.ly", "ñandú.museum/", "https://t.co/ab1?x=1", "東京都は", "、",
          "مرحبا", "שלום", "\u202e", "\u2066", "\u200b", "\ufeff", "\x00", "\x1b", "\u200d",
          "news", "Zürich", " ", "。", "#tag", "#16"]
texts = st.lists(st.sampled_from(PIECES), max_size=120).map(" ".join) | \
    st.lists(st.sampled_from(PIECES), max_size=120).map("".join)
FAST = settings(max_examples=150, deadline=timedelta(seconds=2), derandomize=True)
INVISIBLE = "\x00\x1b\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u2060\ufeff"


def article(title: str, lead: str = "", url: str = URL) -> Article:
    return Article(feed="f", item_id="1", url=url, title=title, lead=lead)


@FAST
@given(title=texts, lead=texts)
def test_x_post_fits_both_countings_and_keeps_the_url(title, lead):
    post = compose(article(title, lead), "{title}: {lead} {url}", X)
    assert parse(post).weighted_length <= 280
    assert parse(post, as_310=True).weighted_length <= 280
    assert post.endswith(URL) and (len(post) - len(URL), len(post)) in url_spans(post)
    assert not set(post) & set(INVISIBLE)


@pytest.mark.parametrize("text, expected", [
    ("a\x00b\u202ec\u2066d\u200be\ufeff f", "abcde f"),
    ("🐦\u200d⬛ \u200dx", "🐦\u200d⬛ x"),            # a joiner stays inside an emoji only
    ("می\u200cخواهم", "می\u200cخواهم"),              # and where a script needs it
])
def test_invisible_characters_are_stripped(text, expected):
    assert compose(article(text), "{title} {url}", X) == f"{expected} {URL}"


@pytest.mark.parametrize("size", [200_000, 1_000_000])
@pytest.mark.parametrize("word", ["word ", "x", "字", "🐦‍⬛"])
def test_a_huge_title_composes_quickly_and_fits(size, word):
    title = word * (size // len(word))
    start = time.perf_counter()
    post = compose(article(title, title), "{title}: {lead} {url}", X)
    assert time.perf_counter() - start < 0.5      # measured 20-70 ms
    assert parse(post, as_310=True).weighted_length <= 280 and post.endswith(URL)


@pytest.mark.parametrize("text, tags", [
    ("On the #16 bus #0", "#News #メ～テレ"),          # "#16" and "#0" are no hashtags
    ("#http://example.com", "#News #メ～テレ"),        # nor is "#http"
    ("#メ～テレ is on", "#News"),                      # "～" belongs to the hashtag
])
def test_text_hashtags_as_x_reads_them(text, tags):
    a = Article(feed="f", item_id="1", url=URL, title=text, lead="", categories=("News", "メ～テレ"))
    assert compose(a, "{title} {hashtags} {url}", X) == f"{text} {tags} {URL}"
