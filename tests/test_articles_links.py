"""Links read from article pages (issue 15): a canonical link replaces the item's
link only on the same site as a browser parses it; a link that does not parse
costs only its own field."""
from __future__ import annotations

import ada_url
import pytest
from hypothesis import given
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from bot.articles import LeadFinder, extract_page, same_site
from bot.models import Article

URL = "https://www.dailynews.co.uk/city/bridge"
LEAD = ("The harbour bridge will close to all traffic for six weeks from March while engineers "
        "replace corroded cables, the city council said on Monday.")


def page(canonical: str = "", image: str = "/img/bridge.jpg") -> str:
    return (f'<html><head><link rel="canonical" href="{canonical}">'
            f'<meta property="og:image" content="{image}"><title>Bridge to close</title></head>'
            f"<body><article><h1>Bridge to close</h1><p>{LEAD}</p>"
            f"<p>{LEAD.replace('six', 'eight')}</p></article></body></html>")


@pytest.mark.parametrize("canonical", [
    "https://www.dailynews.co.uk/city/bridge-repairs",
    "https://dailynews.co.uk/city/bridge-repairs",          # the bare registrable domain
    "https://amp.dailynews.co.uk/city/bridge-repairs",      # a sibling subdomain
    "http://WWW.DAILYNEWS.CO.UK/city/bridge-repairs",        # case is not a difference
    "/city/bridge-repairs",                                    # relative to the page
])
def test_canonical_on_the_same_site_is_adopted(canonical):
    info = extract_page(page(canonical), URL)
    assert info.canonical_url.endswith("/city/bridge-repairs")
    assert ada_url.URL(info.canonical_url).hostname.endswith("dailynews.co.uk")


@pytest.mark.parametrize("canonical", [
    "https://evil.example\\@dailynews.co.uk/x",     # a browser opens evil.example
    "https://evil.example\\.dailynews.co.uk/x",
    "https://evil.example/\\dailynews.co.uk",
    "https://github.io/x", "https://bob.github.io/x",  # a parent or other owners
    "https://co.uk/x",                                  # a public suffix has no owner
    "https://uk/x", "https://test/",                    # bare top-level domains
    "https://192.0.2.7/x", "https://[2001:db8::1]/x",   # an address is not the site's name
    "https://news.example.com/x",
    "javascript:alert(1)", "ftp://www.dailynews.co.uk/x",
    "http://[bad/x", "https://", "https://exa mple.co.uk/", "",
])
def test_canonical_elsewhere_or_unparsable_is_ignored(canonical):
    info = extract_page(page(canonical), URL)
    assert info.canonical_url is None
    assert info.lead == LEAD and info.image == "https://www.dailynews.co.uk/img/bridge.jpg"


def test_shared_hosting_names_are_different_sites():
    # github.io is a suffix on the PSL's private list: alice and bob are two owners
    assert same_site("https://bob.github.io/x", "https://alice.github.io/a") is None
    assert same_site("https://alice.github.io/x", "https://www.alice.github.io/a")


def test_an_ip_address_is_the_same_site_only_as_itself():
    assert same_site("http://192.0.2.7/story", "http://192.0.2.7/s?id=1") == "http://192.0.2.7/story"
    assert same_site("http://192.0.2.8/story", "http://192.0.2.7/s?id=1") is None
    assert same_site("http://0xC0.0.2.7/story", "http://192.0.2.7/a")      # the same address
    assert same_site("http://example.org/", "http://192.0.2.7/a") is None


def test_an_item_link_without_a_registrable_domain_adopts_nothing():
    assert same_site("https://test/a", "https://test/b") is None
    assert same_site("https://localhost/a", "https://localhost/b") is None


def test_international_names_compare_in_either_spelling():
    assert same_site("https://www.例子.中国/a", "https://xn--fsqu00a.xn--fiqs8s/b") == \
        "https://www.xn--fsqu00a.xn--fiqs8s/a"


@pytest.mark.parametrize("image", ["http://[bad/x.jpg", "javascript:void(0)", "https://"])
def test_an_unparsable_image_costs_only_the_image(image):
    info = extract_page(page("/city/bridge-repairs", image=image), URL)
    assert info.image is None
    assert info.lead == LEAD and info.canonical_url.endswith("/city/bridge-repairs")


def test_enrich_keeps_the_item_link_when_the_canonical_is_elsewhere():
    body = page("https://evil.example\\@www.dailynews.co.uk/x").encode()
    article = Article(feed="city", item_id=URL, url=URL, title="Bridge to close", summary="")
    out = LeadFinder(lambda url: body).enrich(article, mode="always")
    assert out.url == URL and out.lead == LEAD


# ---- properties ------------------------------------------------------------------------------

LABELS = st.sampled_from(["news", "www", "evil", "example", "co", "uk", "com", "github", "io",
                          "test", "amp", "xn--fiqs8s", "1", "192"])
HOSTS = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
TRICKS = st.sampled_from(["https://{a}\\@{b}/x", "https://{a}\\{b}/x", "https://{a}/@{b}",
                          "https://{a}@{b}/x", "https://{a}#@{b}/", "https://{a}?@{b}/",
                          "https://{a}:443\\@{b}/", "https://{b}.{a}/x", "https://{a}/"])
PSL = PublicSuffixList()


def browser_site(link: str) -> str | None:
    """The registrable domain of the host a WHATWG parser (a browser) finds in ``link``."""
    try:
        return PSL.privatesuffix(ada_url.URL(link).hostname)
    except ValueError:
        return None


@given(TRICKS, HOSTS, HOSTS)
def test_an_adopted_canonical_opens_on_the_items_site(trick, a, b):
    url = f"https://{b}/story"
    adopted = same_site(trick.format(a=a, b=b), url)
    if adopted is not None:
        assert browser_site(adopted) is not None and browser_site(adopted) == browser_site(url)


@given(st.text(max_size=40), st.text(max_size=40))
def test_same_site_never_raises(canonical, url):
    adopted = same_site(canonical, url)
    assert adopted is None or adopted.startswith(("http://", "https://"))
