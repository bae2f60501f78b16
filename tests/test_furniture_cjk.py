"""Furniture rules on Chinese, Japanese and Korean text (issue 9): scripts without
case are never "a place name in capitals", and 。！？ end sentences."""
from __future__ import annotations

import pytest

from bot.furniture import clean_paragraphs, is_prose, lead_from_text

LEADS = {
    "ja": "東京都は２日、新型コロナウイルスの感染者が新たに１００人確認されたと発表した。",
    "ja-question": "なぜ東京の家賃はこの十年でこれほど上がり続けているのだろうか？",
    "zh": "北京市政府周二宣布，将从下月起在全市范围内推行新的垃圾分类规定。",
    "zh-hant": "台北市政府今日表示，捷運環狀線北段工程將於明年年底前全面完工！",
    "ko": "서울시는 2일 새로운 대중교통 요금 체계를 다음 달부터 시행한다고 밝혔다.",
}


@pytest.mark.parametrize("lang", LEADS)
def test_an_opening_paragraph_is_the_lead(lang):
    assert lead_from_text(f"<p>{LEADS[lang]}</p>") == LEADS[lang]


@pytest.mark.parametrize("furniture", [
    "2024年3月2日 10:30", "2024年3月2日", "２０２４年３月２日 １０時３０分",
    "2024년 3월 2일 10시 30분", "写真：共同通信", "Photo: Yonhap",
])
@pytest.mark.parametrize("lang", ["ja", "zh", "ko"])
def test_dates_and_credits_before_the_lead_are_passed_over(furniture, lang):
    html = f"<p>{furniture}</p><p>{LEADS[lang]}</p>"
    assert lead_from_text(html) == LEADS[lang]


@pytest.mark.parametrize("short", ["東京都の発表", "垃圾分类新规", "서울시 새 요금 체계 발표"])
def test_a_short_caseless_paragraph_is_not_a_dateline(short):
    # kept as text, though too short to be a lead
    assert clean_paragraphs(f"<p>{short}</p>") == [short]
    assert not is_prose(short)


def test_a_place_in_capitals_is_still_a_dateline():
    assert clean_paragraphs("<p>BAAR, SWITZERLAND</p>") == []


def test_numbers_within_cjk_sentences_do_not_make_them_tables():
    text = "日経平均株価は２日、前日比３２０円高の３万８０００円で取引を終えた。"
    assert is_prose(text)
    assert not is_prose("1位 3:12 2位 3:15 3位 3:20 4位 3:21 5位 3:25 6位 3:30")
