"""Rights and paywall notices, and a page's date and site name glued onto its
first paragraph (issue 9)."""
from __future__ import annotations

import pytest

from bot.furniture import clean_paragraphs, strip_masthead, strip_title

PROSE = "The central bank kept its main interest rate unchanged on Thursday, as most economists expected."


@pytest.mark.parametrize("notice", [
    "This copy is for your personal, non-commercial use only. To order presentation-ready copies for "
    "distribution to your colleagues, clients or customers visit https://www.djreprints.com.",
    "Distribution and use of this material are governed by our Subscriber Agreement and by copyright "
    "law. For non-personal use or to order multiple copies, please contact Dow Jones Reprints.",
    "Copyright 2019 The Associated Press. All rights reserved. This material may not be published, "
    "broadcast, rewritten or redistributed.",
    "© 2019 Riverside Gazette", "Copyright © 2019 Example Media Group",
    "Please use the sharing tools found via the share button at the top or side of articles. Copying "
    "articles to share with others is a breach of our T&Cs and Copyright Policy.",
    "This article is more than 5 years old", "Already a subscriber? Sign in to continue reading.",
    "You have 2 free articles left this month.", "We use cookies to improve your experience.",
    "Please disable your ad blocker to continue.", "Alle Rechte vorbehalten.",
    "Tous droits réservés", "Todos los derechos reservados.", "版权所有 © 城市新闻网",
    "無断転載・複製を禁じます。", "저작권자 © 한빛일보 무단전재 및 재배포 금지",
])
def test_notices_are_furniture(notice):
    assert clean_paragraphs(f"<p>{notice}</p><p>{PROSE}</p>") == [PROSE]


@pytest.mark.parametrize("prose", [
    "The names of the victims may not be published under state law, a court ruled on Monday.",
    "Copyright lawyers say the ruling could change how news sites quote each other's reporting.",
    "Regulators said on Tuesday that websites that use cookies must ask before tracking readers.",
])
def test_news_about_rights_is_kept(prose):
    assert clean_paragraphs(prose) == [prose]


SITE = ["The Daily Example"]


@pytest.mark.parametrize("glued, lead", [
    ("19 November 2019 The Daily Example The bridge will close.", "The bridge will close."),
    ("The Daily Example | Nov. 19, 2019, 10:32 a.m. — The bridge will close.", "The bridge will close."),
    ("Monday, November 18, 2019 10:32 AM EST The council met.", "The council met."),
    ("19.11.2019 The Daily Example Die Brücke wird gesperrt.", "Die Brücke wird gesperrt."),
    ("19. November 2019 – Die Brücke wird gesperrt.", "Die Brücke wird gesperrt."),
    ("The Daily Example: Scientists found water on Europa.", "Scientists found water on Europa."),
    ("19 Nov 2019 | The Daily Example", ""),          # a meta line and nothing else
])
def test_a_glued_date_and_site_name_are_stripped(glued, lead):
    assert strip_masthead(glued, SITE) == lead


@pytest.mark.parametrize("text", [
    "10 Downing Street said on Monday that the talks would go on.",
    "LONDON, Nov 19 (Reuters) - The bank held rates.", "Nov 19 (Reuters) - The bank held rates.",
    "The Daily Example reported on Monday that the bridge would close.",
    "The Daily Example's readers voted for the tram.", "2-1 Chelsea beat Arsenal at the Emirates.",
    "March 2020 saw the sharpest fall in output on record.", "2019 Nobel Prize winner Jane Doe said.",
    "Tuesday's vote was the closest in years.",
])
def test_sentences_that_open_with_a_number_or_the_name_stay(text):
    assert strip_masthead(text, SITE) == text


TITLES = ["Harbour bridge to close"]


def test_a_headline_run_into_the_first_paragraph_is_stripped():
    lead = "The harbour bridge will close to all traffic for six weeks from March, the council said."
    assert strip_title(f"Harbour bridge to close {lead}", TITLES) == lead
    assert strip_title(f"HARBOUR BRIDGE TO CLOSE — {lead}", TITLES) == lead


@pytest.mark.parametrize("text", [
    "Harbour bridge to close within weeks, the council said on Monday after the inspection.",
    "Harbour bridge to close The End",          # too little after it to be the opening
    "The harbour bridge will close to all traffic for six weeks from March, the council said.",
])
def test_a_paragraph_that_only_starts_like_the_headline_stays(text):
    assert strip_title(text, TITLES) == text


def test_a_site_name_followed_by_a_space_only_stays():
    assert strip_masthead("The Daily Example Australia has learned that the mine will close.", SITE) == \
        "The Daily Example Australia has learned that the mine will close."
