"""The Mastodon adapter against the fake Mastodon (tests/fakes/mastodon_api.py), beyond
the contract suite: idempotent retries, rate-limit times, instance limits, media."""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.adapters.base import LOOKUP_LIMIT
from bot.adapters.mastodon import MastodonAdapter, _matches, alt_text, idempotency_key
from bot.errors import AuthFailed, PublishError, RateLimited, Rejected, Suspended, Transient
from bot.models import Post, Receipt
from bot.secret import Secret
from fakes import FakeApi, fake_api  # noqa: F401  (fixture)
from fakes.mastodon_api import MASTODON_ACCOUNT_ID, MASTODON_TOKEN, PAGE_MAX, rendered
from test_adapter_contract import CONTRACTS, NOW, POST, SINCE, Case
from test_adapters_properties import (EXAMPLES, IDS, JSON, WORDS, answers, assert_in_vocabulary,
                                      ids_in, outcome, send)

MASTODON = Case("mastodon", CONTRACTS["mastodon"])
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def make(url: str, clock=lambda: NOW, **options) -> MastodonAdapter:
    return MastodonAdapter("acct", {"api_base_url": url, **options},
                           {"access_token": Secret(MASTODON_TOKEN)}, clock=clock,
                           fetch_media=lambda url: PNG)


def statuses_posted(fake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST" and r["path"] == "/api/v1/statuses"]


# --- idempotency

def test_a_retry_after_a_timeout_gets_the_status_the_first_try_made(fake_api):
    adapter = make(fake_api.url, deadline=0.5)
    fake_api.script("slow-accept", seconds=1.5, path="/api/v1/statuses")
    with pytest.raises(Transient, match="outcome unknown"):
        adapter.publish(POST)
    receipt = adapter.publish(POST)
    [status] = fake_api.posts
    assert receipt.platform_id == status["id"], "exactly one status, the first try's"
    keys = {r["headers"]["idempotency-key"] for r in statuses_posted(fake_api)}
    assert len(statuses_posted(fake_api)) == 2 and keys == {idempotency_key(POST)}


def test_different_posts_get_different_keys():
    other = Post(key="herald-2", account="acct", text=POST.text, link="https://news.example/b")
    reset = Post(key=POST.key, account="acct", text=POST.text, link="https://news.example/new")
    assert len({idempotency_key(POST), idempotency_key(other), idempotency_key(reset)}) == 3
    assert idempotency_key(POST) == idempotency_key(POST)


# --- rate limits and refusals

@pytest.mark.parametrize("reset, until", [
    ("2026-11-27T12:40:00.000000Z", datetime(2026, 11, 27, 12, 40, tzinfo=timezone.utc)),
    ("2026-11-27T13:00:00+01:00", datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
     + timedelta(minutes=15)),                       # a past time: the default pause
    (str(int(NOW.timestamp()) + 600), NOW + timedelta(minutes=10)),    # epoch (GoToSocial)
    (None, NOW + timedelta(minutes=5)),              # no header: Mastodon's window
    ("2099-01-01T00:00:00Z", NOW + timedelta(days=32)),   # clamped
])
def test_429_waits_until_x_ratelimit_reset(fake_api, reset, until):
    fake_api.script("429", reset=reset)
    with pytest.raises(RateLimited) as info:
        make(fake_api.url).publish(POST)
    assert info.value.until == until


def test_a_disabled_login_pauses_the_account_with_an_action(fake_api):
    fake_api.script("403-suspended")
    with pytest.raises(Suspended, match="currently disabled") as info:
        make(fake_api.url).publish(POST)
    assert "resume acct" in info.value.action


def test_too_long_is_rejected_with_the_instance_words(fake_api):
    with pytest.raises(Rejected, match="character limit of 500"):
        make(fake_api.url).publish(Post(key="k", account="acct", text="x" * 501, link=""))


def test_a_token_without_read_scope_cannot_look_up_but_is_not_paused(fake_api):
    adapter = make(fake_api.url)
    adapter.verify()
    fake_api.script("403-permissions", path="/statuses")
    with pytest.raises(Rejected, match="cannot look up recent posts"):
        adapter.find_recent(POST, SINCE)


# --- what a status carries

def test_visibility_language_and_content_warning_reach_the_status(fake_api):
    make(fake_api.url, visibility="unlisted", language="de", spoiler_text="Politik").publish(POST)
    [status] = fake_api.posts
    assert (status["visibility"], status["language"], status["spoiler_text"]) == (
        "unlisted", "de", "Politik")


def test_defaults_send_public_and_no_content_warning(fake_api):
    make(fake_api.url).publish(POST)
    [status] = fake_api.posts
    assert (status["visibility"], status["spoiler_text"], status["language"]) == (
        "public", "", None)


# --- instance limits

def test_the_instance_limits_reach_length_and_are_asked_once(fake_api):
    state = fake_api.states["mastodon"]
    state.max_characters, state.url_reserved = 5000, 30
    adapter = make(fake_api.url)
    assert adapter.length() == (5000, 30)
    assert adapter.length() == (5000, 30)
    asked = [r for r in fake_api.requests if r["path"].startswith("/api/v2/instance")]
    assert len(asked) == 1


def test_the_content_warning_counts_against_the_limit(fake_api):
    assert make(fake_api.url, spoiler_text="CW: war").length() == (493, 23)


@pytest.mark.parametrize("body", [
    {"configuration": {"statuses": {"max_characters": "lots"}}},
    {"configuration": {"statuses": {"max_characters": 0, "characters_reserved_per_url": 23}}},
    {"configuration": {"statuses": {"max_characters": 800, "characters_reserved_per_url": True}}},
    {"configuration": []}, ["not", "an", "instance"],
])
def test_an_instance_answer_herald_cannot_read_falls_back_to_500_and_23(fake_api, body):
    fake_api.states["mastodon"].instance_body = body
    assert make(fake_api.url).length() == (500, 23)


def test_a_failed_ask_falls_back_and_is_asked_again_later(fake_api):
    now = [NOW]
    adapter = make(fake_api.url, clock=lambda: now[0])
    fake_api.states["mastodon"].max_characters = 1000
    fake_api.script("503", path="/api/v2/instance")
    assert adapter.length() == (500, 23)
    assert adapter.length() == (500, 23), "not asked again at once"
    now[0] += timedelta(minutes=11)
    assert adapter.length() == (1000, 23)


# --- media

def test_the_image_goes_up_with_the_title_as_alt_text(fake_api):
    make(fake_api.url, attach_image=True).publish(POST)
    [status] = fake_api.posts
    assert [m["description"] for m in status["media"]] == [POST.title]


def test_an_image_still_processing_is_polled_until_ready(fake_api):
    fake_api.states["mastodon"].processing_polls = 3
    adapter = make(fake_api.url, attach_image=True)
    slept: list[float] = []
    adapter._sleep = slept.append
    adapter.publish(POST)
    [status] = fake_api.posts
    assert len(status["media"]) == 1 and len(slept) == 3
    polls = [r for r in fake_api.requests if r["path"].startswith("/api/v1/media/")]
    assert len(polls) == 3


def test_an_image_that_never_finishes_processing_is_left_out_within_the_deadline(fake_api,
                                                                                caplog):
    fake_api.states["mastodon"].processing_polls = 10 ** 6
    adapter = make(fake_api.url, attach_image=True, deadline=5.0)
    clock = [0.0]
    adapter._monotonic = lambda: clock[0]
    adapter._sleep = lambda s: clock.__setitem__(0, clock[0] + s)
    adapter.publish(POST)
    [status] = fake_api.posts
    assert status["media"] == [] and clock[0] <= 5.0
    assert "still processing" in caplog.text


def test_alt_text_is_bounded_and_absent_without_a_title():
    long = Post(key="k", account="a", text="t", link="", title="word " * 1000)
    assert len(alt_text(long)) == 1500
    assert alt_text(Post(key="k", account="a", text="t", link="")) is None


# --- lookups

def test_find_recent_matches_by_text_when_the_link_differs(fake_api):
    adapter = make(fake_api.url)
    receipt = adapter.publish(POST)
    moved = Post(key="x", account="acct", text=POST.text.replace("&", "&"),
                 link="https://elsewhere.example/")
    assert adapter.find_recent(moved, SINCE) == receipt


def test_find_recent_without_verify_asks_who_the_account_is(fake_api):
    receipt = make(fake_api.url).publish(POST)
    assert make(fake_api.url).find_recent(POST, SINCE) == receipt
    assert any(r["path"] == f"/api/v1/accounts/{MASTODON_ACCOUNT_ID}/statuses"
               for r in fake_api.requests)


def test_verify_names_the_account(fake_api):
    assert make(fake_api.url).verify() == f"@herald_test (id {MASTODON_ACCOUNT_ID})"


def test_a_wrong_token_is_auth_failed_and_never_shown(fake_api, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = MastodonAdapter("acct", {"api_base_url": fake_api.url},
                            {"access_token": Secret("wrong-token-abcdef")}, clock=lambda: NOW)
    with pytest.raises(AuthFailed) as info:
        wrong.publish(POST)
    seen = f"{info.value} {info.value!r} {info.value.__cause__!r} {caplog.text} {vars(wrong)!r}"
    assert "wrong-token-abcdef" not in seen and "invalid" in str(info.value)


# --- hostile answers

STATUS_BODIES = st.one_of(
    st.fixed_dictionaries({"id": IDS}, optional={"url": WORDS | JSON, "uri": WORDS,
                                                 "content": WORDS, "created_at": WORDS}),
    st.fixed_dictionaries({"error": JSON}, optional={"error_description": JSON}),
    st.lists(st.fixed_dictionaries({"id": IDS, "created_at": st.sampled_from(
        ["2026-11-27T11:00:00.000Z", "yesterday", ""]) | JSON, "content": WORDS | JSON},
        optional={"reblog": JSON, "card": JSON}), max_size=3),
)
RESETS = st.one_of(st.just("2026-11-27T12:40:00.000Z"), st.just("9999-12-31T23:59:59Z"),
                   st.just("0001-01-01T00:00:00Z"),
                   st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
                   st.integers(-10 ** 12, 10 ** 20).map(str))


def mastodon_answers():
    return answers(STATUS_BODIES).flatmap(lambda a: RESETS.map(
        lambda r: {**a, "headers": {**a["headers"], "X-RateLimit-Reset": r}}))


@pytest.fixture(scope="module")
def fake():
    with FakeApi(hang_seconds=1.0) as api:
        yield api


@EXAMPLES
@given(answer=mastodon_answers())
def test_publish_gives_a_receipt_with_an_id_or_a_publish_error(fake, answer):
    adapter = MASTODON.make(fake.url, deadline=2.0)
    send(fake, adapter, answer, lambda: adapter.publish(POST))


def received(answer: dict) -> bytes | None:
    """The body the client read whole from a scripted raw answer (see fakes.shapes);
    None when it could not: cut short under its Content-Length, or a 204/304."""
    body = answer["body"]
    data = body if isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    if answer["cut"] is not None and answer["cut"] < len(data):
        if answer["length"]:
            return None
        data = data[:answer["cut"]]
    return None if answer["status"] in (204, 304) else data


def read_time(value) -> datetime | None:
    """A created_at as Mastodon writes it (ISO 8601 date and time), else None."""
    if not isinstance(value, str) or not re.match(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d", value):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def page_of(answer: dict) -> list | None:
    """The statuses of a 2xx answer read whole, if it was a JSON list of objects."""
    data = received(answer)
    if not 200 <= answer["status"] < 300 or data is None:
        return None
    try:
        page = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return page if isinstance(page, list) and all(isinstance(s, dict) for s in page) else None


def expected(page: list, post: Post, since: datetime):
    """What a search of one last page must give, by Mastodon's rules: newest first,
    an older status ends it, a status without a readable time leaves it unknown."""
    for status in page:
        when = read_time(status.get("created_at"))
        if when is None:
            return Transient
        if when < since:
            return None
        if _matches(status, post):
            found = status.get("id")
            valid = isinstance(found, (str, int)) and not isinstance(found, bool)
            return str(found).strip() if valid and str(found).strip() else Transient
    return None


def search(fake, answer: dict, since: datetime = SINCE):
    adapter = MASTODON.make(fake.url, deadline=2.0)
    adapter._account_id = MASTODON_ACCOUNT_ID
    fake.script("raw", **answer)
    result = outcome(lambda: adapter.find_recent(POST, since))
    assert fake.next_fault("/") is None, "the scripted answer was used"
    return result


def raw_page(*statuses, **extra) -> dict:
    return {"status": 200, "body": list(statuses), "headers": {}, "content_type":
            "application/json", "cut": None, "length": True, **extra}


def status(n: int, created="2026-11-27T11:00:00.000Z", text="Another story", **extra) -> dict:
    return {"id": str(1_000 + n), "created_at": created, "content": rendered(text),
            "url": f"https://social.example/@herald_test/{1_000 + n}", **extra}


AT_SINCE = NOW - timedelta(minutes=45)    # 11:15 UTC
CREATED = st.sampled_from([
    "2026-11-27T11:00:00.000Z", "2026-11-27T11:45:00Z", "2026-11-27T13:00:00+01:00",
    "2026-11-27 11:30:00", "2026-11-27", "20261127T113000Z", "0", "1764547200", "May", "3",
    "yesterday", ""]) | st.integers() | JSON
PAGE_STATUSES = st.lists(st.fixed_dictionaries(
    {"id": st.sampled_from(["1001", "1002"]) | IDS, "created_at": CREATED,
     "content": st.sampled_from([rendered(POST.text), rendered("Another story")]) | WORDS},
    optional={"reblog": JSON, "card": st.just({"url": POST.link}) | JSON}), max_size=4)


# Mastodon.py read these as dates (int() as epoch seconds, else dateutil filling in
# today's date): "0" ended the search before the post on the same page.
@pytest.mark.parametrize("created", ["0", 0, "1764547200", "May", "2026-11-27", "", None])
def test_a_created_at_herald_cannot_read_never_ends_the_search(fake, created):
    answer = raw_page(status(1, created=created), status(2, text=POST.text))
    assert isinstance(search(fake, answer), Transient)


def test_the_post_before_an_unreadable_status_is_still_found(fake):
    found = search(fake, raw_page(status(1, text=POST.text), status(2, created="May")))
    assert found == Receipt("1001", "https://social.example/@herald_test/1001")
    missing = search(fake, raw_page(status(1), status(2, created="May")))
    assert isinstance(missing, Transient) and "created_at" in str(missing)


def test_a_full_page_without_a_next_link_is_searched_but_never_says_absent(fake):
    full = [status(n) for n in range(PAGE_MAX)]
    assert isinstance(search(fake, raw_page(*full)), Transient)
    full[7] = status(7, text=POST.text)
    assert search(fake, raw_page(*full)).platform_id == "1007"


def test_an_empty_page_is_absent(fake):
    assert search(fake, raw_page()) is None


def lookups(api) -> list[dict]:
    return [r["query"] for r in api.requests
            if r["method"] == "GET" and r["path"].endswith("/statuses")]


def test_exactly_lookup_limit_statuses_since_are_searched_and_one_more_is_rejected():
    now = [NOW - timedelta(days=3)]
    with FakeApi(clock=lambda: now[0]) as api:
        adapter = make(api.url)
        receipt = adapter.publish(POST)
        api.seed("mastodon", LOOKUP_LIMIT - 1, NOW - timedelta(days=1))
        assert adapter.find_recent(POST, NOW - timedelta(days=4)) == receipt, "the 500th"
        pages = lookups(api)
        api.seed("mastodon", 1, NOW - timedelta(days=1))
        with pytest.raises(Rejected, match=f"more than {LOOKUP_LIMIT} statuses"):
            adapter.find_recent(POST, NOW - timedelta(days=4))
        assert adapter.find_recent(POST, NOW - timedelta(days=2)) is None, "all 500 seen"
    assert len(pages) == 13 and pages[0] == {"limit": "40", "exclude_reblogs": "true"}
    max_ids = [int(q["max_id"]) for q in pages[1:]]
    assert max_ids == sorted(set(max_ids), reverse=True), "back through the next links"


@EXAMPLES
@given(answer=mastodon_answers())
@example(answer=raw_page())    # what full-suite runs drew: a 200 [] is a page read whole
@example(answer=raw_page(status(1, created="0"), status(2, text=POST.text)))
def test_find_recent_never_says_absent_from_an_answer_it_could_not_read(fake, answer):
    result = search(fake, answer)
    page = page_of(answer)
    if isinstance(result, Receipt):
        assert page is not None and result.platform_id in ids_in(page)
    elif result is None:
        assert page is not None, "absent only from a page read whole"
        assert expected(page, POST, SINCE) is None, "and every status on it read"
    else:
        assert_in_vocabulary(result, answer)


@EXAMPLES
@given(statuses=PAGE_STATUSES)
def test_a_page_of_hostile_statuses_is_searched_by_mastodon_s_rules(fake, statuses):
    want = expected(statuses, POST, AT_SINCE)
    result = search(fake, raw_page(*statuses), AT_SINCE)
    if want is Transient:
        assert isinstance(result, Transient)
    elif want is None:
        assert result is None
    else:
        assert isinstance(result, Receipt) and result.platform_id == want


@EXAMPLES
@given(answer=mastodon_answers())
def test_verify_and_length_stay_in_the_vocabulary(fake, answer):
    adapter = MASTODON.make(fake.url, deadline=2.0)
    fake.script("raw", **answer)
    result = outcome(adapter.verify)
    assert isinstance(result, str) or not isinstance(result, Receipt)
    assert_in_vocabulary(result, answer) if not isinstance(result, str) else None
    fake.script("raw", **answer)
    chars, per_url = adapter.length()
    assert 1 <= chars <= 1_000_000 and 0 <= per_url <= chars


def test_a_status_linking_another_article_is_not_the_post_whatever_its_text():
    from bot.adapters.mastodon import _matches
    from bot.models import Post

    post = Post(key="k", account="m", text="Live: traffic update https://news.example/b",
                link="https://news.example/b")
    other = {"content": '<p>Live: traffic update <a href="https://news.example/a">news.example/a</a></p>'}
    mine = {"content": '<p>Live: traffic update <a href="https://news.example/b">news.example/b</a></p>'}
    linkless = {"content": "<p>Live: traffic update</p>"}
    assert not _matches(other, post)
    assert _matches(mine, post) and _matches(linkless, post)
