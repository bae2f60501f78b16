"""The counting table: one function per platform's way of counting a post."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.compose import COUNTINGS, Limits, compose, measure
from bot.models import Article

URL = "https://news.example.org/a/very/long/path/to/the/story-of-the-day"
FAMILY = "👨\u200d👩\u200d👧"          # one grapheme, five code points
FLAG = "🇩🇪"                          # one grapheme, two code points
ACCENT = "e\u0301"                      # one grapheme, NFC makes it one code point


@pytest.mark.parametrize("counting, url_length, text, expected", [
    ("twitter", 23, f"Hi {URL}", 3 + 23),
    ("twitter", 23, "日本", 4),                       # CJK weighs 2 on X
    ("chars", None, f"Hi {URL}", 3 + len(URL)),
    ("chars", 23, f"Hi {URL}", 3 + 23),              # Mastodon: every URL is 23
    ("chars", 23, FAMILY, 5),
    ("chars", None, ACCENT, 1),
    ("graphemes", None, FAMILY + FLAG + ACCENT, 3),  # Bluesky counts what a reader sees
    ("graphemes", None, f"Hi {URL}", 3 + len(URL)),  # a link at its real length
    ("graphemes", 23, f"{FAMILY} {URL} {FLAG}", 1 + 1 + 23 + 1 + 1),
    ("graphemes", None, "日本", 2),
])
def test_each_counting(counting, url_length, text, expected):
    assert measure(text, Limits(300, url_length, counting)) == expected


def test_an_unknown_counting_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="graphemes"):
        Limits(300, None, "bytes")


class Instance:
    """An adapter instance whose limit came from its server, as Mastodon's does."""

    max_length, url_length, counting = 500, 23, "chars"

    def length(self):
        return 11_000, 30


def test_limits_come_from_the_instance_when_given_one_and_the_class_otherwise():
    assert Limits.for_adapter(Instance()) == Limits(11_000, 30, "chars")
    assert Limits.for_adapter(Instance) == Limits(500, 23, "chars")


def test_compose_fits_graphemes_where_code_points_would_not():
    title = FAMILY * 280 + " end"
    limits = Limits(300, None, "graphemes")
    text = compose(Article("f", "1", URL, title), "{title} {url}", limits)
    assert measure(text, limits) <= 300 and text.endswith(URL)
    assert len(text) > 300, "a family emoji is one of Bluesky's 300, not five"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(max_size=200), st.sampled_from(sorted(COUNTINGS)), st.sampled_from([None, 23]))
def test_every_counting_gives_a_length_compose_can_trust(text, counting, url_length):
    limits = Limits(300, url_length, counting)
    n = measure(text, limits)
    if url_length is None:   # a grapheme holds one code point or more
        chars = measure(text, Limits(300, None, "chars"))
        assert n <= chars if counting == "graphemes" else True
    article = Article("f", "1", URL, text or "x")
    post = compose(article, "{title} {url}", limits)
    assert measure(post, limits) <= 300


BLUESKY = Limits(300, None, "graphemes", 3000)


def test_bluesky_declares_its_byte_cap_beside_its_graphemes():
    from bot.adapters.bluesky import BlueskyAdapter
    assert Limits.for_adapter(BlueskyAdapter) == BLUESKY


def test_compose_keeps_to_the_byte_cap_where_graphemes_alone_would_pass():
    # 280 family emoji are 280 of Bluesky's 300 graphemes but 5,040 bytes:
    # the PDS refuses a text over 3,000 bytes.
    text = compose(Article("f", "1", URL, FAMILY * 280 + " end"), "{title} {url}", BLUESKY)
    assert len(text.encode()) <= 3000 and text.endswith(URL)
    assert 150 < text.count(FAMILY) < 170, "cut by its bytes (18 a family), no shorter"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from([FAMILY, FLAG, ACCENT, "日", "a", " ", "\U0001F600"]), max_size=400))
def test_a_bluesky_post_keeps_to_both_limits(pieces):
    post = compose(Article("f", "1", URL, "".join(pieces) or "x"), "{title} {url}", BLUESKY)
    assert measure(post, BLUESKY) <= 300 and len(post.encode()) <= 3000
