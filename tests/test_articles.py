"""Tests for bot.articles: furniture clean-up, leads from feed text and pages, LeadFinder."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.articles import LeadFinder, PageInfo, extract_page
from bot.furniture import clean_paragraphs, lead_from_text
from bot.errors import FeedError
from bot.models import Article

DATA = Path(__file__).parent / "data"
PAGES = DATA / "pages"
SEED_TITLE = "US Woos Russia For ‘One Call’"
SEED_START = "Over the past months, the United States and Russia appeared to be in rift"
LEAD_EN = ("The harbour bridge will close to all traffic for six weeks from March while engineers "
           "replace corroded cables, the city council said on Monday.")


# ---- clean_paragraphs: each kind of furniture, in several languages ---------------------------

FURNITURE = {
    "headline": ["US Woos Russia For ‘One Call’"],
    "caption": ["Video: Putin y Obama Dialogan en la Cumbre del G20", "Photo: Jane Doe/Reuters",
                "Image: Getty", "Police stand guard outside the court on Monday. (Reuters/Jane Doe)",
                "Firefighters at the scene. Getty Images",
                "Foto: dpa", "Bild: Hans Meier/picture alliance", "Photo : AFP", "Foto: EFE"],
    "byline": ["By Jane Doe | Reuters | 3 min read", "By Jane Doe and John Smith",
               "Von Hans Müller", "Par Jean Dupont", "Por Juan Pérez"],
    "dateline/time": ["Updated 3 hours ago", "5 min read", "Monday, November 18, 2019 10:32 AM EST",
                      "BAAR, SWITZERLAND", "Lesezeit: 3 Minuten", "Aktualisiert am 12.03.2024",
                      "vor 3 Stunden", "Temps de lecture : 3 min", "Mis à jour le 12 mars 2024",
                      "Tiempo de lectura: 3 minutos", "Actualizado el 12 de marzo de 2024"],
    "read more": ["Also Read: Nuclear War Looms As North Korea Threatens", "Read more: Why it matters",
                  "Lesen Sie auch: Die Bahn streikt", "Mehr zum Thema", "Lire aussi : La grève continue",
                  "Lee también: La huelga sigue"],
    "prompt": ["Connect with us", "Follow us on Twitter", "Share this article",
               "Want updates? Subscribe to our newsletter or follow us on Twitter and Facebook.",
               "Folgen Sie uns auf Facebook", "Abonnez-vous à notre newsletter",
               "Suivez-nous sur Twitter", "Síguenos en Twitter", "Suscríbete a nuestro boletín"],
    "bio and sections": ["About Jereco Paloma", "About the author", "To Top", "More in Politics",
                         "Nach oben", "Advertisement", "The post Foo appeared first on Bar."],
}


@pytest.mark.parametrize("text", [t for texts in FURNITURE.values() for t in texts])
def test_furniture_is_dropped(text):
    prose = "The central bank kept its main interest rate unchanged on Thursday, as most economists expected."
    assert clean_paragraphs(f"<p>{text}</p><p>{prose}</p>", title=SEED_TITLE) == [prose]


@pytest.mark.parametrize("text", [
    "FRANKFURT (Reuters) — The European Central Bank held interest rates steady on Thursday.",
    "By the end of the year, the company expects to have hired 500 engineers in Berlin and Paris.",
    "Photos released online show the actress looking stunning in new make-up photos.",
    "Share prices fell sharply on Monday after the company warned that profits would miss forecasts.",
    "Von allen Bewerbern hat die Stadt nur drei eingeladen, wie ein Sprecher am Montag sagte.",
    "Par ailleurs, le gouvernement a annoncé une nouvelle aide pour les agriculteurs touchés.",
    "Por primera vez en diez años, el paro bajó del diez por ciento en la región, según el INE.",
    "To top it all off, the minister resigned on Friday after a week of damaging revelations.",
    "Some ten million people subscribe to the service, the company said in its newsletter on Monday.",
    "Published on Monday, the report found that one in five bridges in the region needs urgent repair.",
    "The fire broke out two hours ago in the old town, and the police have closed several streets.",
    "Die Länder teilen sich die Kosten für den Ausbau der Strecke, wie das Ministerium mitteilte.",
    "Les deux pays vont partager leurs données sur les migrations, a annoncé le ministre lundi.",
    "Los dos países acordaron compartir información de inteligencia sobre el tráfico de armas.",
    "Die Krankenkassen führen zum Jahresbeginn die elektronische Patientenakte ein (ePA)",
])
def test_prose_is_kept(text):
    assert clean_paragraphs(text, title=SEED_TITLE) == [text]


def test_entities_and_whitespace_are_normalised():
    html = "<p>Tom &amp; Jerry&nbsp;went\n   home &#8212; again.</p>"
    assert clean_paragraphs(html) == ["Tom & Jerry went home — again."]


def test_plain_text_splits_on_lines_and_joins_hard_wraps():
    text = "Headline here\nA long sentence that was wrapped\nin the middle by the feed.\n\nSecond one."
    assert clean_paragraphs(text) == ["Headline here",
                                      "A long sentence that was wrapped in the middle by the feed.",
                                      "Second one."]


def test_html_breaks_split_paragraphs():
    html = "<div>Video: a caption<br>The minister said on Monday that the talks would go on.</div>"
    assert clean_paragraphs(html) == ["The minister said on Monday that the talks would go on."]


# ---- lead_from_text ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_text():
    return (DATA / "seed-article.txt").read_text(encoding="utf-8")


def seed_as_html(text):
    return "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n") if p.strip())


@pytest.mark.parametrize("form", ["text", "html"])
@pytest.mark.parametrize("title", [SEED_TITLE, None])
def test_seed_article_lead(seed_text, form, title):
    source = seed_text if form == "text" else seed_as_html(seed_text)
    lead = lead_from_text(source, title)
    assert lead.startswith(SEED_START)
    assert lead.endswith("talked things out over the phone.")     # a whole paragraph, not cut
    for junk in ("Connect with us", "Video:", "Also Read", "About Jereco"):
        assert junk not in lead


def test_seed_article_bio_is_dropped(seed_text):
    paragraphs = clean_paragraphs(seed_text, SEED_TITLE)
    assert not any(p.startswith(("Jereco is", "About", "Also Read", "Want to get")) for p in paragraphs)


@pytest.mark.parametrize("text", [
    "",
    "<p>Breaking news</p>",
    "<p>US Woos Russia For ‘One Call’</p>",
    "<p>Apples 1.20; Pears 2.40; Plums 3.10; Cherries 5.99; Grapes 4.50; Kiwis 0.80</p>",
    "<p>1. Smith 22.31 2. Jones 22.45 3. Brown 22.90 4. Lee 23.02 5. Kim 23.40</p>",
    "<p>LOOK WHAT YOU MADE ME DO, SAID THE SINGER TO EVERYONE</p>",
    "<p>Photo: AFP</p><p>By Jane Doe</p>",
])
def test_no_usable_lead(text):
    assert lead_from_text(text, SEED_TITLE) == ""


def test_lead_after_furniture_in_german():
    html = ("<p>Von Hans Müller</p><p>Lesezeit: 3 Minuten</p><p>Foto: dpa</p>"
            "<p>Die Bahn stellt ihre Nachtzüge nach Wien im Dezember ein, weil die Wagen zu alt sind.</p>")
    assert lead_from_text(html).startswith("Die Bahn stellt")


# ---- extract_page --------------------------------------------------------------------------

def page(name):
    return (PAGES / name).read_bytes()


def test_extract_page_english():
    info = extract_page(page("news-en.html"), "https://news.example.org/a/1?utm=x")
    assert info.lead.startswith("The harbour bridge will close to all traffic")
    assert info.lead.endswith("long delays on the ring road.")
    assert info.title == "Harbour bridge to close for repairs"
    assert info.image == "https://news.example.org/images/bridge.jpg"      # made absolute
    assert info.canonical_url == "https://news.example.org/city/harbour-bridge-repairs"
    assert info.author == "Jane Doe"
    assert info.published == datetime(2024, 2, 12, 7, 30, tzinfo=timezone.utc)


def test_extract_page_german_with_relative_canonical():
    info = extract_page(page("news-de.html").decode("utf-8"), "https://zeitung.example.de/x/123")
    assert info.lead.startswith("Die Bahn stellt ihre Nachtzugverbindung")
    assert info.canonical_url == "https://zeitung.example.de/verkehr/nachtzuege-wien"
    assert info.published is None


def test_extract_page_results_table_has_no_lead():
    info = extract_page(page("results.html"), "https://sport.example.org/results")
    assert info.lead == ""
    assert info.published is None      # no date guessed from "2024" in the title


def test_extract_page_uses_description_when_body_lost_the_opening():
    info = extract_page(page("lost-lead.html"), "https://news.example.org/b/2")
    assert info.lead.startswith("Three people have died in clashes")


# trafilatura loses an opening that sits loose in a <section> or <div> (no <p>) when
# its later loose text is kept, and a standfirst in the <header>; these pages are
# shaped so that it does.
LOOSE_OPENING = ("Spring has arrived early this year, and several large retailers have cut the prices of "
                 "garden tools and bicycles ahead of the Easter weekend.")
FERRY_OPENING = ("The ferry operator serving the islands of the northern archipelago plans to replace its "
                 "two oldest diesel ships with fully electric ones by the summer of 2027, according to a "
                 "statement published on Wednesday by the regional port authority.")


def test_extract_page_recovers_opening_loose_in_a_section():
    info = extract_page(page("loose-opening.html"), "https://deals.example.org/weekend")
    assert info.lead.startswith(LOOSE_OPENING)
    assert info.lead.endswith("may change at any time.")


def test_extract_page_recovers_opening_loose_in_a_div_before_line_breaks():
    info = extract_page(page("cut-description.html"), "https://news.example.org/ferries")
    assert info.lead == FERRY_OPENING + " The shipyard that will build them was not named in the statement."


def test_extract_page_does_not_recover_loose_furniture():
    prompt = b"Follow us on Twitter and Facebook to get the best deals of the day, every day of the week."
    html = re.sub(rb"Spring has arrived[^<]*", prompt, page("loose-opening.html"))
    info = extract_page(html, "https://deals.example.org/weekend")
    assert info.lead and not info.lead.startswith("Follow us")


def test_extract_page_completes_a_cut_description_from_the_page():
    info = extract_page(page("standfirst.html"), "https://news.example.org/ferries")
    assert info.lead == FERRY_OPENING


def test_extract_page_keeps_a_cut_description_the_page_does_not_complete():
    html = page("standfirst.html").replace(b"by the summer of 2027, according", b"by 2027, according")
    info = extract_page(html, "https://news.example.org/ferries")
    assert info.lead.startswith("The ferry operator") and info.lead.endswith("summer of 2027,...")


def test_extract_page_retries_without_fast_mode_when_it_finds_nothing():
    # trafilatura's fast pass finds no text in this short page; its fallbacks do
    info = extract_page(page("short-deals.html"), "https://deals.example.org/short")
    assert info.lead.startswith(LOOSE_OPENING)


@pytest.mark.parametrize("junk", [b"", b"\x00\x01\x02", "<html></html>", "just words"])
def test_extract_page_survives_junk(junk):
    info = extract_page(junk, "https://news.example.org/c/3")
    assert isinstance(info, PageInfo) and info.lead == ""


# ---- LeadFinder ----------------------------------------------------------------------------

class FakeFetch:
    """A fetch_page that serves pages from a dict and records each call."""

    def __init__(self, pages):
        self.pages = pages
        self.calls = []

    def __call__(self, url):
        self.calls.append(url)
        body = self.pages[url]
        if isinstance(body, Exception):
            raise body
        return body


URL = "https://news.example.org/a/1"
GOOD_SUMMARY = ("<p>Photo: AFP</p><p>The city council voted on Monday to close the harbour bridge for six "
                "weeks of repairs from March, despite protests from shop owners.</p>")


def article(summary="", url=URL, **kw):
    return Article(feed="city", item_id=url, url=url, title="Harbour bridge to close for repairs",
                   summary=summary, **kw)


@pytest.fixture
def fetch():
    return FakeFetch({URL: page("news-en.html"), "https://news.example.org/de": page("news-de.html"),
                      "https://news.example.org/down": FeedError("HTTP 503")})


def test_never_uses_feed_text_only(fetch):
    out = LeadFinder(fetch).enrich(article("<p>Too short.</p>"), mode="never")
    assert out.lead == "" and fetch.calls == []


def test_auto_keeps_a_good_feed_lead(fetch):
    out = LeadFinder(fetch).enrich(article(GOOD_SUMMARY), mode="auto")
    assert out.lead.startswith("The city council voted on Monday") and fetch.calls == []
    assert out.url == URL and out.image is None


def test_auto_fetches_page_when_feed_text_is_thin(fetch):
    out = LeadFinder(fetch).enrich(article("<p>Harbour bridge to close for repairs</p>"), mode="auto")
    assert fetch.calls == [URL]
    assert out.lead.startswith("The harbour bridge will close to all traffic")
    assert out.url == "https://news.example.org/city/harbour-bridge-repairs"
    assert out.image == "https://news.example.org/images/bridge.jpg"
    assert out.author == "Jane Doe"


def test_a_canonical_link_to_another_site_is_ignored():
    elsewhere = page("news-en.html").replace(
        b"https://news.example.org/city/harbour-bridge-repairs", b"https://evil.example.net/x")
    out = LeadFinder(FakeFetch({URL: elsewhere})).enrich(article(), mode="always")
    assert out.url == URL and out.lead.startswith("The harbour bridge will close")


def test_auto_fetches_page_when_feed_text_was_cut(fetch):
    cut = ("<p>The city council voted on Monday to close the harbour bridge for six weeks of "
           "repairs from March, despite [&#8230;]</p>")
    LeadFinder(fetch).enrich(article(cut), mode="auto")
    assert fetch.calls == [URL]


def test_always_prefers_page_and_keeps_feed_image_and_author(fetch):
    feed = article(GOOD_SUMMARY, image="https://cdn.example.org/feed.jpg", author="Desk")
    out = LeadFinder(fetch).enrich(feed, mode="always")
    assert out.lead.startswith("The harbour bridge will close to all traffic")
    assert (out.image, out.author) == ("https://cdn.example.org/feed.jpg", "Desk")
    assert feed.lead == ""          # the input is untouched: enrich returns a copy


def test_page_without_lead_falls_back_to_feed_text():
    fetch = FakeFetch({URL: page("results.html")})
    out = LeadFinder(fetch).enrich(article(GOOD_SUMMARY), mode="always")
    assert out.lead.startswith("The city council voted on Monday")


def test_page_is_fetched_once_per_url(fetch):
    finder = LeadFinder(fetch)
    for _ in range(3):
        finder.enrich(article(), mode="always")
    assert fetch.calls == [URL]


def test_cache_is_bounded_lru(fetch):
    finder = LeadFinder(fetch, cache_size=1)
    for url in (URL, "https://news.example.org/de", URL):
        finder.enrich(article(url=url), mode="always")
    assert fetch.calls == [URL, "https://news.example.org/de", URL]


@pytest.mark.parametrize("summary, expected", [(GOOD_SUMMARY, "The city council voted"), ("", "")])
def test_fetch_failure_logs_and_falls_back(fetch, caplog, summary, expected):
    url = "https://news.example.org/down"
    with caplog.at_level(logging.WARNING, logger="bot.articles"):
        out = LeadFinder(fetch).enrich(article(summary, url=url), mode="always")
    assert out.lead.startswith(expected) and out.url == url
    [record] = caplog.records
    assert url in record.getMessage() and "HTTP 503" in record.getMessage()


def test_failures_are_not_cached(fetch):
    finder = LeadFinder(fetch)
    for _ in range(2):
        finder.enrich(article(url="https://news.example.org/down"), mode="always")
    assert len(fetch.calls) == 2


def test_without_fetcher_only_feed_text_is_used():
    out = LeadFinder(None).enrich(article(GOOD_SUMMARY), mode="always")
    assert out.lead.startswith("The city council voted on Monday")


def test_unknown_mode_is_an_error(fetch):
    with pytest.raises(ValueError, match="auto, always, never"):
        LeadFinder(fetch).enrich(article(), mode="sometimes")



# ---- robustness ----------------------------------------------------------------------------

PIECES = list("ab Z.:|<>/&;#\n\u00a0") + ["<p>", "</p>", "<br>", "&amp;", "Video: ", "By ", "Word "]


@given(st.lists(st.sampled_from(PIECES), max_size=80).map("".join))
def test_clean_paragraphs_never_fails(text):
    paragraphs = clean_paragraphs(text, "Z")
    assert all(p and p == p.strip() and "\n" not in p for p in paragraphs)
    assert lead_from_text(text, "Z") in paragraphs + [""]
