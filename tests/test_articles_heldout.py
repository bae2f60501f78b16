"""Held-out pages (issue 9): shapes of real news pages that the benchmark pages do
not show, written to check that the lead rules generalise. Each page's lead is
its opening paragraph, whole, with nothing of the page's furniture."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.articles import extract_page

PAGES = Path(__file__).parent / "data" / "pages"

# page: (how the lead starts, how it ends) — what goes wrong without the rule in brackets
OPENINGS = {
    # a reprint notice first in the body [chosen as the lead]
    "reprint-notice.html": ("Dockworkers at three of the country’s busiest ports", "waiting at anchor."),
    "paywall-reprint-first.html": ("A large semiconductor maker plans", "in the state’s history."),
    # a date and the site's name inline before the first sentence [glued onto it]
    "masthead-glued.html": ("The city council approved on Tuesday", "traffic on the river road."),
    "site-date-separators.html": ("Temperatures climbed above 45C", "for more than 70 years."),
    # the headline in bold at the start of the first paragraph [glued onto it]
    "headline-in-paragraph.html": ("The Saturday farmers' market will move", "all year."),
    # a whole article in one table cell [no lead]
    "table-layout.html": ("The old paper mill on Water Street", "on Monday evening."),
    # the opening loose in the body's <div>, the rest in <p> [the second paragraph]
    "loose-lead-then-paragraphs.html": ("The main university library", "more than 4,000 signatures."),
    # a row of share buttons and tags before the opening [reached only by the slow pass]
    "share-bar.html": ("Rail fares will rise by an average", "for many commuters."),
    # Chinese and Japanese openings [dropped as datelines]; Korean, with a byline and date
    "news-ja.html": ("東京都は２日、", "約１か月ぶり。"),
    "news-zh.html": ("北京市政府周二宣布，", "分为四类投放。"),
    "news-ko.html": ("서울시는 19일", "방식이다."),
}


@pytest.mark.parametrize("name", OPENINGS)
def test_held_out_page_lead_is_its_opening(name):
    start, end = OPENINGS[name]
    lead = extract_page((PAGES / name).read_bytes(), "https://news.example.com/story/1").lead
    assert lead.startswith(start) and lead.endswith(end)


def test_a_reprint_notice_alone_is_no_lead():
    html = (PAGES / "paywall-reprint-first.html").read_text(encoding="utf-8")
    body_start = html.index('<section class="body">')
    only_notice = html[:body_start] + "</article></body></html>"
    assert extract_page(only_notice, "https://news.example.com/story/1").lead == ""
