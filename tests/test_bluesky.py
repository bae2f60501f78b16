"""The Bluesky adapter against the fake PDS (tests/fakes/bluesky_api.py), and its text rules.

The shared contract runs in tests/test_adapter_contract.py; these are what only
Bluesky has: facets in UTF-8 byte offsets, the derived record key (a retry after
a timeout makes one record), the link card and its blob, the session's refresh.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.bluesky import BlueskyAdapter
from bot.adapters.bluesky_text import (LINK_FEATURE, TAG_FEATURE, clean_text, facets, is_tid,
                                       record_key)
from bot.errors import AlreadyPosted, AuthFailed, RateLimited, Rejected, Suspended, Transient
from bot.models import Post
from bot.secret import Secret
from fakes import fake_api  # noqa: F401  (fixture)
from fakes.bluesky_api import BSKY_DID, BSKY_HANDLE, BSKY_PASSWORD

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def post(**fields) -> Post:
    base = dict(key="herald-7", account="acct", text="Council approves budget #Budget "
                "https://news.example/budget", link="https://news.example/budget",
                image_url="https://news.example/budget.png", title="Council approves budget",
                description="The council voted 7-2 for the new park.")
    return Post(**{**base, **fields})


def make(url: str, password: str = BSKY_PASSWORD, fetch=lambda url: PNG, **options):
    opts = {"service": url, "handle": BSKY_HANDLE, **options}
    return BlueskyAdapter("acct", opts, {"app_password": Secret(password)},
                          clock=lambda: NOW, fetch_media=fetch)


@pytest.fixture
def state(fake_api):
    return fake_api.states["bluesky"]


def calls(fake_api, nsid: str) -> int:
    return sum(r["path"] == f"/xrpc/{nsid}" for r in fake_api.requests)


# --- facets: UTF-8 byte offsets

def test_facets_count_bytes_not_characters():
    text = "Café 🇫🇷 e\u0301 ＃東京 see https://news.example/é?q=1. #Park"
    found = facets(text, "")
    data = text.encode("utf-8")
    spans = [data[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode() for f in found]
    assert spans == ["＃東京", "https://news.example/é?q=1", "#Park"]
    # "Café " 6 bytes, the flag 8, " e\u0301 " 5; "＃" 3 and "東京" 6
    assert found[0]["index"] == {"byteStart": 19, "byteEnd": 28}
    assert [f["features"][0]["$type"] for f in found] == [TAG_FEATURE, LINK_FEATURE, TAG_FEATURE]


def test_the_posts_own_link_is_marked_as_written():
    link = "https://en.example/wiki/Park_(city)."
    [facet] = facets(f"Read {link}", link)
    assert facet["features"][0]["uri"] == link
    assert facet["index"]["byteEnd"] == len(f"Read {link}".encode())


@pytest.mark.parametrize("text", ["#123", "a#tag", "# tag", "#!!!", "#" + "x" * 65])
def test_what_is_not_a_tag(text):
    assert facets(text) == []


def test_tags_lose_trailing_punctuation():
    [facet] = facets("Vote #Budget2026!")
    assert facet["features"][0]["tag"] == "Budget2026"


PIECES = st.sampled_from(["Café", "🇫🇷", "👩‍👩‍👧", "e\u0301", "東京", "한국어", "مرحبا", " ", "\n",
                          "#Tag", "＃東京", "#e\u0301t\u00e9", "#1", "https://news.example/a",
                          "https://x.example/é_(b)", "(https://y.example/p).", ".", "!", "\ud800"])


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=25))
def test_the_bytes_between_offsets_are_the_facets_text(pieces):
    text = clean_text("".join(pieces))
    data = text.encode("utf-8")
    end = 0
    for facet in facets(text, "https://news.example/a"):
        start, stop = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        assert end <= start < stop <= len(data)       # in order, never overlapping
        end = stop
        span = data[start:stop].decode("utf-8")        # whole characters: it decodes
        feature = facet["features"][0]
        if feature["$type"] == LINK_FEATURE:
            assert span == feature["uri"]
        else:
            assert span[0] in "#＃" and span[1:] == feature["tag"]


# --- record keys

@settings(max_examples=200, derandomize=True)
@given(st.text(), st.text(), st.text())
def test_record_keys_are_tids_and_the_same_for_the_same_post(account, key, link):
    rkey = record_key(account, key, link)
    assert is_tid(rkey) and rkey == record_key(account, key, link)


def test_record_keys_differ_by_account_key_and_link():
    keys = {record_key("a", "herald-1", "https://x/1"), record_key("b", "herald-1", "https://x/1"),
            record_key("a", "herald-2", "https://x/1"), record_key("a", "herald-1", "https://x/2")}
    assert len(keys) == 4


# --- publishing

def test_publish_makes_one_record_with_facets_card_and_langs(fake_api, state):
    receipt = make(fake_api.url, languages=["en", "fr"]).publish(post())
    [recorded] = fake_api.posts
    rkey = record_key("acct", "herald-7", "https://news.example/budget")
    assert receipt.platform_id == f"at://{BSKY_DID}/app.bsky.feed.post/{rkey}" == recorded["id"]
    assert receipt.url == f"https://bsky.app/profile/{BSKY_HANDLE}/post/{rkey}"
    record = recorded["record"]
    assert record["langs"] == ["en", "fr"] and record["createdAt"] == "2026-11-27T12:00:00.000Z"
    assert [f["features"][0]["$type"] for f in record["facets"]] == [TAG_FEATURE, LINK_FEATURE]
    external = record["embed"]["external"]
    assert external["uri"] == "https://news.example/budget"
    assert external["title"] == "Council approves budget"
    assert recorded["thumb"] in state.blobs and state.blobs[recorded["thumb"]] == len(PNG)
    assert external["description"] == "The council voted 7-2 for the new park."


@pytest.mark.parametrize("given, langs", [("de", ["de"]), ("en, fr", ["en", "fr"]),
                                          ("en,fr,de,es", ["en", "fr", "de"])])
def test_languages_are_a_comma_separated_string(fake_api, given, langs):
    make(fake_api.url, languages=given).publish(post())
    assert fake_api.posts[0]["record"]["langs"] == langs


def test_the_articles_language_tags_the_post_when_none_is_configured(fake_api):
    make(fake_api.url).publish(post(language="pt-BR"))
    make(fake_api.url, languages="en").publish(post(key="herald-8", language="pt-BR"))
    assert [p["record"].get("langs") for p in fake_api.posts] == [["pt-BR"], ["en"]]


def test_no_card_when_told(fake_api):
    make(fake_api.url, link_card=False).publish(post())
    assert "embed" not in fake_api.posts[0]["record"]
    assert calls(fake_api, "com.atproto.repo.uploadBlob") == 0


@pytest.mark.parametrize("fetch, why", [
    (lambda url: b"<html>not an image</html>", "not a PNG"),
    (lambda url: PNG + b"\0" * 1_000_000, "larger than"),
    (None, "no media fetcher"),
])
def test_a_thumb_that_cannot_be_had_costs_only_the_thumb(fake_api, caplog, fetch, why):
    receipt = make(fake_api.url, fetch=fetch).publish(post())
    [recorded] = fake_api.posts
    assert receipt.platform_id == recorded["id"] and recorded["thumb"] is None
    assert recorded["record"]["embed"]["external"]["uri"] == "https://news.example/budget"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "without image" in warning.getMessage() and why in warning.getMessage()
    assert calls(fake_api, "com.atproto.repo.uploadBlob") == 0


def test_a_retry_after_a_timeout_makes_one_record(fake_api):
    adapter = make(fake_api.url, read_timeout=0.3)
    fake_api.script("slow-accept", path="createRecord", seconds=1.0)
    with pytest.raises(Transient):
        adapter.publish(post())
    assert len(fake_api.posts) == 1        # the PDS made it; we never heard
    with pytest.raises(AlreadyPosted) as info:
        adapter.publish(post())
    [recorded] = fake_api.posts
    assert info.value.platform_id == recorded["id"]


def test_a_conflict_answer_is_already_posted_too(fake_api, state):
    state.duplicate = "400"                # a PDS that names the conflict
    adapter = make(fake_api.url)
    first = adapter.publish(post())
    with pytest.raises(AlreadyPosted) as info:
        adapter.publish(post())
    assert info.value.platform_id == first.platform_id and len(fake_api.posts) == 1
    assert info.value.url == first.url, "the permalink is kept for status"


def test_a_real_server_error_stays_transient(fake_api):
    fake_api.script("500", path="createRecord")
    with pytest.raises(Transient):
        make(fake_api.url).publish(post())
    assert fake_api.posts == [] and calls(fake_api, "com.atproto.repo.getRecord") == 1


def test_too_long_is_rejected_with_the_pds_words(fake_api):
    with pytest.raises(Rejected, match="longer than 300 graphemes"):
        make(fake_api.url).publish(post(text="é" * 301, link=""))


def test_300_graphemes_of_combining_marks_are_accepted(fake_api):
    make(fake_api.url).publish(post(text="e\u0301" * 300, link=""))
    assert len(fake_api.posts) == 1


def test_rate_limit_lasts_until_ratelimit_reset(fake_api):
    reset = int(NOW.timestamp()) + 600
    fake_api.script("429", path="createRecord", reset=reset)
    with pytest.raises(RateLimited) as info:
        make(fake_api.url).publish(post())
    assert info.value.until == datetime.fromtimestamp(reset, timezone.utc)


def test_a_taken_down_account_is_suspended(fake_api):
    fake_api.script("takedown", path="createSession")
    with pytest.raises(Suspended) as info:
        make(fake_api.url).publish(post())
    assert "resume acct" in info.value.action


def test_a_wrong_password_is_auth_failed(fake_api):
    with pytest.raises(AuthFailed, match="Invalid identifier or password"):
        make(fake_api.url, password="wrong-pass-0001").publish(post())


# --- the session

def test_one_login_serves_many_posts(fake_api, state):
    adapter = make(fake_api.url)
    for n in range(3):
        adapter.publish(post(key=f"herald-{n}", link=f"https://news.example/{n}"))
    assert state.logins == 1 and len(fake_api.posts) == 3


def test_an_expired_access_token_is_refreshed(fake_api, state):
    adapter = make(fake_api.url)
    adapter.publish(post(key="herald-1"))
    state.expire_access()
    adapter.publish(post(key="herald-2"))
    assert (state.logins, state.refreshes, len(fake_api.posts)) == (1, 1, 2)


def test_a_refused_refresh_logs_in_again(fake_api, state):
    adapter = make(fake_api.url)
    adapter.publish(post(key="herald-1"))
    state.expire_access()
    state.expire_refresh()
    adapter.publish(post(key="herald-2"))
    assert (state.logins, len(fake_api.posts)) == (2, 2)


def test_a_session_that_cannot_be_renewed_is_auth_failed(fake_api, state):
    adapter = make(fake_api.url)
    adapter.verify()
    state.expire_access()
    state.expire_refresh()
    state.accounts[BSKY_HANDLE].password = "revoked-app-password"
    with pytest.raises(AuthFailed):
        adapter.publish(post())
    assert fake_api.posts == []


def test_verify_names_handle_and_did(fake_api):
    assert make(fake_api.url).verify() == f"@{BSKY_HANDLE} ({BSKY_DID})"


def test_tokens_never_reach_logs_reprs_or_errors(fake_api, state, caplog):
    caplog.set_level(logging.DEBUG)
    adapter = make(fake_api.url)
    adapter.publish(post(key="herald-1"))
    state.expire_access()
    state.expire_refresh()
    adapter.verify()                     # refresh refused, logged in again
    state.expire_access()
    adapter.find_recent(post(key="herald-1"), NOW - timedelta(days=1))   # refreshed
    errors = []
    for faults in (["400"], ["429"], ["502"], ["expired", "expired@refreshSession", "401@createSession"]):
        for fault in faults:
            kind, _, path = fault.partition("@")
            fake_api.script(kind, path=path or "createRecord")
        with pytest.raises(Exception) as info:
            adapter.publish(post(key="herald-2"))
        errors.append(info.value)
    assert isinstance(errors[-1], AuthFailed)
    issued = state.logins + state.refreshes
    tokens = {f"fake-bsky-{kind}-{n:04d}" for kind in ("access", "refresh")
              for n in range(1, issued + 1)} | {BSKY_PASSWORD}
    assert issued == 3              # two logins and a refresh: six tokens
    assert any(r.name.startswith("urllib3") for r in caplog.records)   # DEBUG really on
    seen = caplog.text + repr(adapter) + repr(vars(adapter)) + repr(adapter._tokens) + "".join(
        f"{e} {e!r} {e.__cause__} {e.__cause__!r}" for e in errors)
    assert not [t for t in tokens if t in seen]


# --- find_recent

def test_find_recent_finds_the_record_by_its_key_when_the_text_changed(fake_api):
    adapter = make(fake_api.url)
    receipt = adapter.publish(post())
    edited = post(text="A new headline https://news.example/elsewhere", link="https://other/")
    assert adapter.find_recent(dataclasses.replace(edited, link=post().link),
                               NOW - timedelta(days=1)) == receipt


def test_find_recent_skips_other_authors_and_reposts(fake_api):
    adapter = make(fake_api.url)
    adapter.publish(post())
    other = post(key="herald-9", link="https://news.example/none", text="Nothing like it")
    assert adapter.find_recent(other, NOW - timedelta(days=1)) is None
