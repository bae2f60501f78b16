"""bot.compose: limits, measuring, hashtags, templates and shortening."""
from __future__ import annotations

import unicodedata
from datetime import timedelta

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.console import ConsoleAdapter
from bot.compose import ELLIPSIS, Limits, compose, hashtags_for, measure
from bot.models import Article
from bot.twittertext import url_spans, weighted_length

X = Limits(280, 23, "twitter")
URL = "https://example.com/news/2018/03/us-woos-russia-for-one-call"
SEED_LEAD = (
    "Over the past months, the United States and Russia appeared to be in rift over several "
    "issues, including both countries’ commitment to global denuclearization and on Syria. "
    "But things got a little lighter and tension appeared on a low level now that presidents "
    "of both countries had talked things out over the phone.")


def article(title="A title", lead="", url=URL, **kw) -> Article:
    return Article(feed="f", item_id="1", url=url, title=title, lead=lead, **kw)


# ------------------------------------------------------------ Limits, measure


def test_limits_for_adapter_reads_class_attributes():
    assert Limits.for_adapter(ConsoleAdapter) == Limits(280, 23, "twitter")


@pytest.mark.parametrize("kwargs", [dict(max_length=280, url_length=23, counting="words"),
                                    dict(max_length=0, url_length=None, counting="chars")])
def test_limits_reject_nonsense(kwargs):
    with pytest.raises(ValueError):
        Limits(**kwargs)


@pytest.mark.parametrize("text, limits, length", [
    ("abc " + URL, X, 27),
    ("日本", X, 4),
    ("abc " + URL, Limits(500, None, "chars"), 4 + len(URL)),
    ("abc " + URL, Limits(500, 30, "chars"), 34),
    ("e\u0301 日本", Limits(500, None, "chars"), 4),          # NFC first
    ("👨‍👩‍👧‍👦", Limits(500, None, "chars"), 7),              # code points, not weights
])
def test_measure(text, limits, length):
    assert measure(text, limits) == length


# ------------------------------------------------------------ hashtags


@pytest.mark.parametrize("categories, text, mapping, most, expected", [
    (["North Korea"], "", {}, 2, ["#NorthKorea"]),
    (["politics"], "", {}, 2, ["#politics"]),                  # one word keeps its case
    (["iPhone sales"], "", {}, 2, ["#iPhoneSales"]),
    (["U.S. politics", "women's rights"], "", {}, 5, ["#USPolitics", "#WomensRights"]),
    (["Zürich", "zürich", "ZÜRICH"], "", {}, 5, ["#Zürich"]),  # duplicates, any case
    (["2024", "!!!", "_", "", "#"], "", {}, 5, []),             # no letter, no tag
    (["a", "b", "c"], "", {}, 2, ["#a", "#b"]),
    (["a"], "", {}, 0, []),
    ([], "Talks in PYONGYANG today", {"pyongyang": "North Korea"}, 2, ["#NorthKorea"]),
    ([], "Pyongyangers", {"pyongyang": "#NK"}, 2, []),          # whole words only
    ([], "north  korea talks", {"North Korea": "#NK"}, 2, ["#NK"]),
    ([], "Rain in Bern, then Zürich", {"zürich": "Zürich", "bern": "Bern"}, 2, ["#Bern", "#Zürich"]),
    (["Weather"], "Rain in Bern", {"bern": "Bern"}, 2, ["#Bern", "#Weather"]),
    (["Brexit"], "#brexit vote", {}, 2, []),                   # already in the text
    (["東京"], "", {}, 2, ["#東京"]),
])
def test_hashtags_for(categories, text, mapping, most, expected):
    assert hashtags_for(categories, text, mapping, most) == expected


# ------------------------------------------------------------ templates


SHORT = "A short lead."


@pytest.mark.parametrize("template, fields, expected", [
    ("{title}: {lead} {url}", {"lead": SHORT}, f"A title: A short lead. {URL}"),
    ("{title}: {lead} {url}", {}, f"A title {URL}"),
    ("{title}\n\n{lead}\n\n{url}", {}, f"A title\n\n{URL}"),
    ("{title}\n\n{lead} {url}", {}, f"A title\n\n{URL}"),
    ("{title}: {lead}\n{url}", {}, f"A title\n{URL}"),
    ("{lead} — {title} {url}", {}, f"A title {URL}"),
    ("{url} — {lead}", {}, URL),
    ("{title} | {source} | {url}", {}, f"A title | {URL}"),
    ("{title} ({source}) {url}", {}, f"A title {URL}"),
    ("{title} ({source}, {author}) {url}", {"author": "Jo"}, f"A title (Jo) {URL}"),
    ("{title} ({author}, {source}) {url}", {"author": "Jo"}, f"A title (Jo) {URL}"),
    ("{title} ({author}, {source}) {url}", {"author": "Jo", "source": "AP"},
     f"A title (Jo, AP) {URL}"),
    ("{title}. {lead} {url}", {}, f"A title {URL}"),
    ("{title}：{lead} {url}", {}, f"A title {URL}"),
    ("{{{title}}} {url}", {}, f"{{A title}} {URL}"),
    ("{{title}} {url}", {}, f"{{title}} {URL}"),
    ("{title} {hashtags} {url}", {}, f"A title {URL}"),
    ("  {title}   {lead}\t{url}  ", {"lead": "x  y"}, f"A title x y {URL}"),
])
def test_template_rendering(template, fields, expected):
    source = fields.pop("source", "")
    assert compose(article(**fields), template, X, source=source) == expected


def test_title_and_lead_whitespace_is_collapsed():
    post = compose(article(title=" Two\nlines ", lead="a\n\nb"), "{title}: {lead} {url}", X)
    assert post == f"Two lines: a b {URL}"


@pytest.mark.parametrize("template", ["{title} {bogus}", "{title} {0}", "{title", "{title.x}"])
def test_bad_templates_raise(template):
    with pytest.raises(ValueError):
        compose(article(), template, X)


# ------------------------------------------------------------ shortening


def test_seed_article_is_cut_at_the_first_sentence():
    post = compose(article(title="US Woos Russia For ‘One Call’", lead=SEED_LEAD),
                   "{title}: {lead} {url}", X)
    first = SEED_LEAD.split(" But things")[0]
    assert post == f"US Woos Russia For ‘One Call’: {first} {URL}"
    assert weighted_length(post) <= 280


def test_hashtags_fill_the_room_left_after_the_lead_was_cut():
    post = compose(article(title="US Woos Russia For ‘One Call’", lead=SEED_LEAD,
                           categories=("Politics",)),
                   "{title}: {lead} {hashtags} {url}", X)
    first = SEED_LEAD.split(" But things")[0]
    assert post == f"US Woos Russia For ‘One Call’: {first} #Politics {URL}"


def test_lead_is_cut_at_a_word_when_no_sentence_fits():
    post = compose(article(title="Title", lead=SEED_LEAD), "{title}: {lead} {url}",
                   Limits(120, 23, "twitter"))
    body = post[len("Title: "):-len(URL) - 1]
    assert body.endswith(ELLIPSIS) and SEED_LEAD.startswith(body[:-1])
    assert SEED_LEAD[len(body) - 1] == " " and weighted_length(post) <= 120


def test_cut_drops_a_dangling_comma():
    post = compose(article(title="T", lead="One two three four five six, seven eight nine ten"),
                   "{title}: {lead} {url}", Limits(3 + 29 + 1 + 23, 23, "twitter"))  # "…" weighs 2
    assert post == f"T: One two three four five six… {URL}"


def test_abbreviation_is_not_a_sentence_end():
    lead = "The U.S. Senate voted on Tuesday. Then everyone went home for a long weekend."
    post = compose(article(title="T", lead=lead), "{title}: {lead} {url}",
                   Limits(3 + 40 + 24, 23, "twitter"))
    assert post == f"T: The U.S. Senate voted on Tuesday. {URL}"


def test_lead_dropped_then_title_cut():
    limits = Limits(40, 23, "twitter")
    post = compose(article(title="US Woos Russia For One Call", lead=SEED_LEAD),
                   "{title}: {lead} {url}", limits)
    assert post == f"US Woos Russia… {URL}"


def test_only_the_link_when_nothing_else_fits():
    post = compose(article(title="Unbreakablelongword", lead=SEED_LEAD),
                   "{title}: {lead} {url}", Limits(30, 23, "twitter"))
    assert post == URL


def test_url_that_cannot_fit_raises():
    with pytest.raises(ValueError):
        compose(article(), "{title} {url}", Limits(30, None, "chars"))


def test_without_url_in_template_a_huge_word_is_cut_at_a_grapheme():
    post = compose(article(title="x" * 100), "{title}", Limits(10, None, "chars"))
    assert post == "x" * 9 + ELLIPSIS


def test_hashtags_are_dropped_before_text_is_cut():
    a = article(title="Kim meets Moon", lead="Talks went well.", categories=("Korea", "Peace"))
    template = "{title}: {lead} {hashtags} {url}"
    assert compose(a, template, X) == f"Kim meets Moon: Talks went well. #Korea #Peace {URL}"
    full = len("Kim meets Moon: Talks went well. ") + 23
    assert compose(a, template, Limits(full + 7, 23, "twitter")) == \
        f"Kim meets Moon: Talks went well. #Korea {URL}"
    assert compose(a, template, Limits(full, 23, "twitter")) == \
        f"Kim meets Moon: Talks went well. {URL}"


def test_a_url_inside_the_lead_is_never_cut():
    lead = "See https://example.org/a/very/long/path/that/goes/on for the details of it all."
    post = compose(article(title="T", lead=lead), "{title}: {lead} {url}",
                   Limits(3 + 4 + 23 + 4 + 24, 23, "twitter"))
    assert "https://example.org/a/very/long/path/that/goes/on" in post


# ------------------------------------------------------------ CJK and emoji

JA_LEAD = ("東京都は20日、新型ウイルスの感染者が新たに100人確認されたと発表した。"
           "都内の感染者は累計で3000人を超え、専門家は警戒を呼びかけている。")


def test_japanese_is_cut_at_a_sentence_mark():
    post = compose(article(title="東京", lead=JA_LEAD * 3), "{title}：{lead} {url}",
                   Limits(130, 23, "twitter"))
    assert post == f"東京：{JA_LEAD.split('。')[0]}。 {URL}"


def test_japanese_is_cut_between_characters_preferring_a_pause():
    lead = "新型ウイルスの感染者が新たに100人確認され、専門家は警戒を呼びかけている"
    a = article(title="東京", lead=lead)
    # Room for a few characters past "、": the cut goes back to the pause.
    post = compose(a, "{title}：{lead} {url}", Limits(88, 23, "twitter"))
    assert post == f"東京：新型ウイルスの感染者が新たに100人確認され… {URL}"
    # Far from any pause: cut between characters, never inside "100".
    post = compose(a, "{title}：{lead} {url}", Limits(64, 23, "twitter"))
    assert post == f"東京：新型ウイルスの感染者が新たに100… {URL}"


def test_chinese_without_pause_is_cut_at_a_character():
    lead = "故人西辞黄鹤楼烟花三月下扬州孤帆远影碧空尽唯见长江天际流" * 3
    post = compose(article(title="诗", lead=lead), "{title}: {lead} {url}",
                   Limits(80, 23, "twitter"))
    body = post[len("诗: "):-len(URL) - 1]
    assert body.endswith(ELLIPSIS) and lead.startswith(body[:-1])
    assert weighted_length(post) <= 80 < weighted_length(post) + 4


def test_emoji_clusters_are_never_split():
    family = "👨‍👩‍👧‍👦"
    lead = family * 40
    post = compose(article(title="T", lead=lead), "{title}: {lead} {url}",
                   Limits(120, 23, "chars"))
    body = post[len("T: "):-len(URL) - 1]
    assert body.endswith(ELLIPSIS)
    assert body[:-1] == family * (len(body[:-1]) // len(family))


# ------------------------------------------------------------ properties

WORDS = ["news", "Russia", "U.S.", "talks,", "Zürich", "(update)", "—", "#Breaking", "@ap",
         "东京", "日本語の", "、", "。", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "e\u0301", "example.com",
         "https://t.co/x1", "a", "supercalifragilistic", "¿qué?", "“quoted”", "1,000"]
texts = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=80).map(" ".join),
    st.lists(st.sampled_from(WORDS), max_size=60).map("".join),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=300),
)
urls = st.builds(lambda host, path: f"https://{host}.com/{path}",
                 st.from_regex(r"[a-z]{1,30}", fullmatch=True),
                 st.from_regex(r"[a-z0-9_/-]{0,200}", fullmatch=True))
categories = st.lists(st.sampled_from(["North Korea", "2024", "Zürich", "économie", "a b c",
                                       "#tag", "", "東京"]), max_size=4).map(tuple)
FAST = settings(max_examples=200, deadline=timedelta(seconds=1))


def _ends_on_whole_word(part: str, source: str) -> bool:
    """``part`` is ``source`` or a prefix of it that stops at a grapheme
    boundary before white space, or next to a character of a script
    written without spaces or an emoji; with "…" when it stops mid-sentence."""
    core = part[:-1] if part.endswith(ELLIPSIS) else part
    if not source.startswith(core):
        return False
    graphemes = regex.findall(r"\X", source)
    if regex.findall(r"\X", core) != graphemes[:len(regex.findall(r"\X", core))]:
        return False
    junk = regex.match(r"[ ,;:、，；：\-–—(\[{“‘«「『（]*", source, pos=len(core))[0]
    return any(_boundary(source, len(core) + k) for k in range(len(junk) + 1))


NO_SPACE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303f\uff00-\uffef"
                         r"\p{Extended_Pictographic}\p{Regional_Indicator}]")


def _boundary(source: str, pos: int) -> bool:
    """A word may end at ``pos``: before white space or the end, or beside a
    character of a script written without spaces, or an emoji."""
    last = (regex.findall(r"\X", source[:pos])[-1:] or [" "])[0]
    return (pos == len(source) or source[pos].isspace()
            or bool(NO_SPACE.match(source, pos)) or bool(NO_SPACE.match(last)))


INVISIBLE = regex.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                          r"\u200b\u2060\ufeff\ufffe\uffff]")


def _clean(text: str) -> str:
    """The text compose starts from (joiners aside, which the generated
    texts here hold only inside emoji)."""
    return " ".join(INVISIBLE.sub("", unicodedata.normalize("NFC", text)).split())


@FAST
@given(title=texts, lead=texts, url=urls, cats=categories)
def test_x_post_fits_keeps_url_and_ends_on_a_word(title, lead, url, cats):
    a = article(title=title, lead=lead, url=url, categories=cats)
    post = compose(a, "{url}\n{title}\n{lead}", X)
    assert post and weighted_length(post) <= 280
    assert post.startswith(url + "\n") or post == url
    assert url_spans(post)[0] == (0, len(url))
    parts = post.split("\n")[1:]
    sources = [s for s in (_clean(title), _clean(lead)) if s]
    for part, source in zip(parts, sources if len(parts) == len(sources) else sources[:1]):
        assert _ends_on_whole_word(part, source), (part, source)


@FAST
@given(title=texts, lead=texts, url=urls, cats=categories,
       template=st.sampled_from(["{title}: {lead} {hashtags} {url}", "{lead} {url} {hashtags}",
                                 "{title} ({author}) {url}", "{url}"]),
       limits=st.sampled_from([X, Limits(300, None, "chars"), Limits(500, 23, "chars"),
                               Limits(63000, None, "chars")]))
def test_any_post_fits_and_keeps_the_url(title, lead, url, cats, template, limits):
    a = article(title=title, lead=lead, url=url, categories=cats)
    post = compose(a, template, limits, hashtag_map={"news": "News"})
    assert post and measure(post, limits) <= limits.max_length
    assert url in post
