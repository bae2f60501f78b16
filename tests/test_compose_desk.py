"""compose for the newsroom desk: {lead:N}, tracking parameters (tracked,
utm_params, compose(utm=...)) and how each platform counts the longer link."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.compose import ELLIPSIS, Limits, compose, measure, tracked, utm_params
from bot.configtypes import Utm
from bot.models import Article

X = Limits(280, 23, "twitter")   # a URL counts 23 only with a real TLD (".example" is none)
FACEBOOK_LIKE = Limits(200, None, "chars")      # every URL counts its real length
BLUESKY_LIKE = Limits(150, None, "graphemes")
UTM = {"utm_source": "herald", "utm_medium": "social", "utm_campaign": "a-rather-long-campaign-name-for-world-news"}


def article(lead="", title="A headline", url="https://news.example.com/world/2026/12/story-123") -> Article:
    return Article(feed="world", item_id="1", url=url, title=title, lead=lead)


# -- {lead:N} ---------------------------------------------------------------------

LEAD = "The council voted on Tuesday to close the old bridge for repairs."


@pytest.mark.parametrize("cap, expected", [
    (100, LEAD),                                   # short enough: untouched
    (len(LEAD), LEAD),
    (30, "The council voted on Tuesday…"),         # at a word, "…" within the cap
    (12, "The council…"),
    (4, "The…"),
    (3, "Th…"),                                    # one word longer than the cap: at a grapheme
])
def test_lead_cap_cuts_at_a_word_with_an_ellipsis(cap, expected):
    text = compose(article(LEAD), "{lead:%d}" % cap, X)
    assert text == expected and len(text) <= cap


def test_lead_cap_in_a_script_without_spaces():
    lead = "東京都は本日、新しい交通計画を発表した。市民の反応はさまざまだ。"
    text = compose(article(lead), "{lead:10}", X)
    assert text.endswith(ELLIPSIS) and len(text) <= 10 and lead.startswith(text[:-1])


def test_lead_cap_leaves_title_and_link_alone():
    text = compose(article(LEAD), "{title}: {lead:20} {url}", X)
    assert text == "A headline: The council voted… https://news.example.com/world/2026/12/story-123"


@pytest.mark.parametrize("template", ["{title:10}", "{lead:abc}", "{lead!r}", "{lead:0}", "{url:5}"])
def test_other_format_specs_are_refused(template):
    with pytest.raises(ValueError, match=r"only \{lead:N\}"):
        compose(article(LEAD), template, X)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(1, 200))
def test_a_capped_lead_is_a_prefix_within_the_cap(lead, cap):
    text = compose(article(lead, title="T"), "{title} {lead:%d}" % cap, Limits(5000, None, "chars"))
    shown = text[2:] if text.startswith("T ") else ""
    assert len(shown) <= cap
    clean = " ".join(compose(article(lead, title="T"), "{title} {lead}", Limits(5000, None, "chars"))[2:].split())
    assert clean.startswith(shown.removesuffix(ELLIPSIS).rstrip())


# -- tracked -----------------------------------------------------------------------

@pytest.mark.parametrize("url, params, expected", [
    ("https://n.example/a", {"utm_source": "x"}, "https://n.example/a?utm_source=x"),
    ("https://n.example/a?id=7", {"utm_source": "x"}, "https://n.example/a?id=7&utm_source=x"),
    ("https://n.example/a?", {"utm_source": "x"}, "https://n.example/a?utm_source=x"),
    ("https://n.example/a?id=7&", {"utm_source": "x"}, "https://n.example/a?id=7&utm_source=x"),
    ("https://n.example/a#top", {"utm_source": "x"}, "https://n.example/a?utm_source=x#top"),
    ("https://n.example/a?id=1#s?q=2", {"utm_medium": "m"}, "https://n.example/a?id=1&utm_medium=m#s?q=2"),
    ("https://n.example/a?utm_source=cms", {"utm_source": "x", "utm_medium": "m"},
     "https://n.example/a?utm_source=cms&utm_medium=m"),                       # never a duplicate
    ("https://n.example/a?UTM_SOURCE=cms", {"utm_source": "x"}, "https://n.example/a?UTM_SOURCE=cms"),
    ("https://n.example/a?utm_source", {"utm_source": "x"}, "https://n.example/a?utm_source"),
    ("https://n.example/a", {"utm_campaign": "été & co=1/2"},
     "https://n.example/a?utm_campaign=%C3%A9t%C3%A9%20%26%20co%3D1%2F2"),     # percent-encoded
    ("https://n.example/a", {}, "https://n.example/a"),
    ("", {"utm_source": "x"}, ""),
    ("mailto:desk@n.example", {"utm_source": "x"}, "mailto:desk@n.example"),
])
def test_tracked(url, params, expected):
    assert tracked(url, params) == expected


QUERY_PART = st.text("abcé &=%#?/+", max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["id", "utm_source", "p", "utm_medium"]), st.text("abc0", max_size=4)),
                max_size=3),
       st.dictionaries(st.sampled_from(["utm_source", "utm_medium", "utm_campaign"]), QUERY_PART.filter(str.strip)),
       st.text("abc-", max_size=6))
def test_tracked_adds_each_parameter_once_and_keeps_the_rest(existing, params, fragment):
    query = "&".join(f"{k}={v}" for k, v in existing)
    url = "https://n.example/story" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
    out = urlsplit(tracked(url, params))
    pairs = parse_qsl(out.query, keep_blank_values=True)
    keys = [k for k, _ in pairs]
    before = [k for k, _ in existing]
    assert keys[:len(before)] == before and out.fragment == fragment and out.path == "/story"
    for key, value in params.items():
        if key not in before:
            assert keys.count(key) == 1 and dict(pairs)[key] == value


# -- utm_params ---------------------------------------------------------------------

def test_utm_params_fill_the_placeholders():
    utm = Utm(source="{platform}", medium="social", campaign="{feed}-{account}")
    assert utm_params(utm, "newsroom-x", "twitter", "world") == {
        "utm_source": "twitter", "utm_medium": "social", "utm_campaign": "world-newsroom-x"}
    assert utm_params(Utm(campaign="{{literal}}"), "a", "p", "f") == {"utm_campaign": "{literal}"}
    assert utm_params(Utm(source="herald"), "a", "p", "f") == {"utm_source": "herald"}
    assert utm_params(None, "a", "p", "f") == {}


@pytest.mark.parametrize("text", ["{account.__class__}", "{site}", "{feed:>5}", "{0}", "{"])
def test_utm_params_refuse_other_placeholders(text):
    with pytest.raises(ValueError):
        utm_params(Utm(source=text), "a", "p", "f")


# -- how platforms count the tracked link ---------------------------------------------

LONG_LEAD = " ".join(["Officials said the plan would take years to finish and cost more than expected."] * 6)


def test_on_x_the_tracked_link_costs_nothing_more():
    plain = compose(article(LONG_LEAD), "{title}: {lead} {url}", X)
    with_utm = compose(article(LONG_LEAD), "{title}: {lead} {url}", X, utm=UTM)
    url = article().url
    assert with_utm == plain.replace(url, tracked(url, UTM))   # the same words kept
    assert measure(with_utm, X) == measure(plain, X) <= 280
    assert tracked(url, UTM) in with_utm and len(with_utm) > len(plain)


@pytest.mark.parametrize("limits", [FACEBOOK_LIKE, BLUESKY_LIKE], ids=["chars", "graphemes"])
def test_where_links_count_fully_the_text_is_shortened_to_fit(limits):
    plain = compose(article(LONG_LEAD), "{title}: {lead} {url}", limits)
    with_utm = compose(article(LONG_LEAD), "{title}: {lead} {url}", limits, utm=UTM)
    url = tracked(article().url, UTM)
    assert with_utm.endswith(" " + url) and measure(with_utm, limits) <= limits.max_length
    words = lambda text: len(text.split())  # noqa: E731
    assert words(with_utm) < words(plain)   # the lead gave up words for the longer link
    assert measure(plain, limits) <= limits.max_length


def test_a_link_already_tracked_by_the_cms_keeps_its_own_source():
    url = "https://news.example.com/a?utm_source=newsletter"
    text = compose(article("Lead.", url=url), "{title} {url}", X, utm=UTM)
    assert text.endswith("?utm_source=newsletter&utm_medium=social&utm_campaign=" + UTM["utm_campaign"])
