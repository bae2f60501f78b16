"""Platform details of the X and Facebook adapters, against the fake server."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import facebook
import pytest
import requests
from oauthlib import oauth1

from bot.adapters import REGISTRY
from bot.adapters.facebook import FacebookAdapter
from bot.adapters.answers import Answer
from bot.adapters.twitter import OAuth1Signer, TwitterAdapter, rate_wait
from bot.errors import (AlreadyPosted, AuthFailed, FeedError, RateLimited, Rejected,
                        Transient)
from bot.models import Post
from bot.secret import Secret
from fakes import (PAGE_ID, PAGE_TOKEN, X_ACCESS_SECRET, X_ACCESS_TOKEN, X_CONSUMER_KEY,
                   X_CONSUMER_SECRET, X_USER_ID, fake_api)  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)   # before anything the fake holds
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
POST = Post(key="k", account="acct", text="Tom & Jerry return https://news.example/tj",
            link="https://news.example/tj", image_url="https://news.example/tj.png")
X_CREDS = {"consumer_key": X_CONSUMER_KEY, "consumer_secret": X_CONSUMER_SECRET,
           "access_token": X_ACCESS_TOKEN, "access_token_secret": X_ACCESS_SECRET}


class RecordingTransport(requests.adapters.HTTPAdapter):
    """A transport that remembers each request's URL and timeout, then sends it."""

    def __init__(self):
        super().__init__()
        self.sent: list[tuple[str, object]] = []

    def send(self, request, **kwargs):
        self.sent.append((request.url, kwargs.get("timeout")))
        return super().send(request, **kwargs)


def twitter(url, session=None, fetch_media=lambda u: PNG, **options) -> TwitterAdapter:
    return TwitterAdapter("x", {"api_base_url": url, **options},
                          {k: Secret(v) for k, v in X_CREDS.items()}, session=session,
                          clock=lambda: NOW, fetch_media=fetch_media)


def facebook_page(url, session=None, **options) -> FacebookAdapter:
    return FacebookAdapter("fb", {"graph_base_url": url, "page_id": PAGE_ID, **options},
                           {"page_access_token": Secret(PAGE_TOKEN)}, session=session,
                           clock=lambda: NOW)


def test_registry_knows_both_platforms():
    assert REGISTRY["twitter"] is TwitterAdapter and REGISTRY["facebook"] is FacebookAdapter


# --- X

def test_x_client_is_built_lazily(fake_api):
    adapter = twitter(fake_api.url)
    assert adapter._client is None and fake_api.requests == []
    adapter.verify()
    assert adapter._client is not None


def test_x_host_is_rewritten_and_timeouts_applied(fake_api):
    transport = RecordingTransport()
    session = requests.Session()
    session.mount("http://", transport)
    twitter(fake_api.url, session=session, connect_timeout=1.5, read_timeout=7.0).publish(POST)
    assert transport.sent == [(f"{fake_api.url}/2/tweets", (1.5, 7.0))]


def test_x_posting_the_same_text_twice_is_already_posted(fake_api):
    adapter = twitter(fake_api.url)
    adapter.publish(POST)
    with pytest.raises(AlreadyPosted, match="duplicate content"):
        adapter.publish(POST)


@pytest.mark.parametrize("kind, error", [
    ("403", Rejected), ("403-permissions", AuthFailed), ("403-tier", AuthFailed),
    ("403-duplicate", AlreadyPosted),
])
def test_x_403s_are_told_apart_by_their_body(fake_api, kind, error):
    fake_api.script(kind)
    with pytest.raises(error):
        twitter(fake_api.url).publish(POST)


def test_x_429_without_reset_waits_fifteen_minutes(fake_api):
    fake_api.script("429", reset=None)
    with pytest.raises(RateLimited) as info:
        twitter(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(minutes=15)


def test_x_429_with_a_reset_already_past_waits_fifteen_minutes(fake_api):
    fake_api.script("429", reset=int((NOW - timedelta(minutes=5)).timestamp()))
    with pytest.raises(RateLimited) as info:
        twitter(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(minutes=15)


def test_x_daily_cap_outlasts_the_fifteen_minute_window():
    at = int(NOW.timestamp())
    headers = {"x-rate-limit-reset": str(at + 900), "x-rate-limit-remaining": "40",
               "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(at + 50000),
               "x-app-limit-24hour-remaining": "12", "x-app-limit-24hour-reset": str(at + 90000)}
    answer = Answer(status=429, ok=False, words="", headers=headers)
    assert rate_wait(answer, NOW) == NOW + timedelta(seconds=50000)


def test_x_image_is_uploaded_and_attached(fake_api):
    twitter(fake_api.url, attach_image=True).publish(POST)
    [upload] = [r for r in fake_api.requests if r["path"] == "/2/media/upload"]
    assert upload["headers"]["content-type"].startswith("multipart/form-data")
    assert fake_api.posts[0]["media_ids"] == list(fake_api.media)


def test_x_image_fetch_failure_posts_without_it(fake_api, caplog):
    def broken(url):
        raise FeedError("image too large")
    twitter(fake_api.url, fetch_media=broken, attach_image=True).publish(POST)
    assert fake_api.posts[0]["media_ids"] == []
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "image too large" in warning.getMessage()


def test_x_upload_of_something_not_an_image_posts_without_it(fake_api):
    twitter(fake_api.url, fetch_media=lambda u: b"<html>", attach_image=True).publish(POST)
    assert fake_api.posts[0]["media_ids"] == []


def test_x_find_recent_decides_on_the_link_when_the_tweet_has_one(fake_api):
    adapter = twitter(fake_api.url)
    receipt = adapter.publish(POST)
    by_link = Post(key="k", account="x", text="different words", link=POST.link)
    assert adapter.find_recent(by_link, SINCE) == receipt
    # the same words linking another article are another post ("Live: ..." every day):
    # matching it would mark a post sent that never went out
    same_words = Post(key="k", account="x", text=POST.text, link="https://elsewhere.example/")
    assert adapter.find_recent(same_words, SINCE) is None


def test_x_find_recent_takes_the_user_id_from_the_access_token(fake_api):
    token = "1500000000000000777-AbCdEf"
    fake_api.states["twitter"].add_user(token, "its-secret-0001", "1500000000000000777", "numbered")
    creds = {**X_CREDS, "access_token": token, "access_token_secret": "its-secret-0001"}
    adapter = TwitterAdapter("x", {"api_base_url": fake_api.url},
                             {k: Secret(v) for k, v in creds.items()}, clock=lambda: NOW)
    receipt = adapter.publish(POST)
    assert adapter.find_recent(POST, SINCE) == receipt
    assert [r["path"] for r in fake_api.requests] == [
        "/2/tweets", "/2/users/1500000000000000777/tweets"]


def test_x_timeline_missing_from_the_tier_is_rejected_not_auth_failed(fake_api):
    adapter = twitter(fake_api.url)
    fake_api.script("403-tier", path="/tweets")
    with pytest.raises(AuthFailed):
        adapter.publish(POST)
    fake_api.script("403-tier", path=f"/2/users/{X_USER_ID}/tweets")
    with pytest.raises(Rejected, match="cannot look up"):
        adapter.find_recent(POST, SINCE)


def test_x_find_recent_asks_from_since_a_hundred_at_a_time(fake_api):
    fake_api.seed("twitter", 120, datetime.now(timezone.utc))
    since = NOW - timedelta(days=3)
    assert twitter(fake_api.url).find_recent(POST, since) is None
    first, second = [r["query"] for r in fake_api.requests if r["path"].endswith("/tweets")]
    assert first == {"start_time": "2026-11-24T12:00:00Z", "max_results": "100",
                     "tweet.fields": "entities,created_at"}
    assert second == {**first, "pagination_token": second["pagination_token"]}


def test_x_signature_matches_oauthlib_reference():
    request = requests.Request("GET", "http://127.0.0.1:9/2/users/1/tweets",
                               params={"max_results": 5, "tweet.fields": "entities,created_at"})
    prepared = OAuth1Signer({k: Secret(v) for k, v in X_CREDS.items()}, lambda: NOW)(
        request.prepare())
    ours = dict(re.findall(r'(\w+)="([^"]*)"', prepared.headers["Authorization"]))
    reference = oauth1.Client(X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, X_ACCESS_SECRET,
                              nonce=ours["oauth_nonce"], timestamp=ours["oauth_timestamp"])
    _, headers, _ = reference.sign(prepared.url, "GET")
    theirs = dict(re.findall(r'(\w+)="([^"]*)"', headers["Authorization"]))
    assert ours["oauth_timestamp"] == str(int(NOW.timestamp()))
    assert ours["oauth_signature"] == theirs["oauth_signature"]


def test_x_non_json_success_is_transient(fake_api):
    fake_api.script("502")
    with pytest.raises(Transient, match="502"):
        twitter(fake_api.url).verify()


# --- Facebook

def test_graph_version_comes_from_config_not_the_library(fake_api):
    adapter = facebook_page(fake_api.url, graph_version="v23.0")
    adapter.publish(POST)
    assert adapter.graph.version == "v23.0"
    assert fake_api.posts[0]["version"] == "v23.0"
    assert facebook.FACEBOOK_GRAPH_URL == "https://graph.facebook.com/"   # not mutated


def test_graph_host_is_rewritten_and_timeouts_applied(fake_api):
    transport = RecordingTransport()
    session = requests.Session()
    session.mount("http://", transport)
    facebook_page(fake_api.url, session=session, connect_timeout=1.5, read_timeout=7.0).verify()
    [(url, timeout)] = transport.sent
    assert url.startswith(f"{fake_api.url}/v24.0/me") and timeout == (1.5, 7.0)


def test_graph_token_travels_in_a_header_never_in_the_url(fake_api):
    adapter = facebook_page(fake_api.url)
    adapter.publish(POST)
    adapter.verify()
    adapter.find_recent(POST, SINCE)
    for request in fake_api.requests:
        assert "access_token" not in request["query"]
        assert request["headers"]["authorization"] == f"Bearer {PAGE_TOKEN}"


def test_graph_find_recent_follows_next_with_the_token_in_a_header_only(fake_api):
    fake_api.seed("facebook", 120, datetime.now(timezone.utc))
    assert facebook_page(fake_api.url).find_recent(POST, NOW - timedelta(days=3)) is None
    first, second = [r for r in fake_api.requests if r["path"].endswith("/feed")]
    assert first["query"] == {"fields": "id,message,link,created_time", "limit": "100",
                              "since": str(int((NOW - timedelta(days=3)).timestamp()))}
    assert second["query"] == {**first["query"], "after": second["query"]["after"]}
    assert second["headers"]["authorization"] == f"Bearer {PAGE_TOKEN}"


def test_graph_feed_post_sends_link_beside_the_text(fake_api):
    facebook_page(fake_api.url).publish(POST)
    assert (fake_api.posts[0]["text"], fake_api.posts[0]["link"]) == (POST.text, POST.link)


def test_graph_photo_post_captions_text_and_link(fake_api):
    receipt = facebook_page(fake_api.url, attach_image=True).publish(POST)
    [posted] = fake_api.posts
    assert posted["image_url"] == POST.image_url
    assert posted["text"] == f"{POST.text}\n\n{POST.link}"
    assert receipt.platform_id == posted["id"]        # the post, not the photo


def test_graph_photo_timeout_does_not_fall_back(fake_api):
    fake_api.script("hang", path="/photos", seconds=3)
    with pytest.raises(Transient):
        facebook_page(fake_api.url, attach_image=True, read_timeout=0.3).publish(POST)
    assert fake_api.posts == []       # no second post that might double the first


@pytest.mark.parametrize("code, error", [
    (190, AuthFailed), (10, AuthFailed), (200, AuthFailed), (299, AuthFailed),
    (4, RateLimited), (17, RateLimited), (32, RateLimited), (613, RateLimited),
    (80001, RateLimited), (368, RateLimited), (506, AlreadyPosted), (1, Transient),
    (2, Transient), (100, Rejected), (324, Rejected),
])
def test_graph_error_codes(fake_api, code, error):
    fake_api.script(f"graph-{code}", message=f"(#{code}) the platform's words")
    with pytest.raises(error, match="the platform's words"):
        facebook_page(fake_api.url).publish(POST)


@pytest.mark.parametrize("code, error", [(10, Rejected), (200, Rejected), (190, AuthFailed)])
def test_graph_find_recent_without_read_permission_is_rejected(fake_api, code, error):
    fake_api.script(f"graph-{code}")
    with pytest.raises(error):
        facebook_page(fake_api.url).find_recent(POST, SINCE)


def test_graph_block_368_pauses_for_hours_and_says_so(fake_api):
    fake_api.script("graph-368")
    with pytest.raises(RateLimited, match="hours") as info:
        facebook_page(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(hours=6)


def test_graph_rate_limit_reads_business_usage_header(fake_api):
    fake_api.script("429", regain=42)
    with pytest.raises(RateLimited) as info:
        facebook_page(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(minutes=42)


def test_graph_rate_limit_with_app_usage_full_waits_an_hour(fake_api):
    fake_api.script("429")        # X-App-Usage at 100%, no business estimate
    with pytest.raises(RateLimited) as info:
        facebook_page(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(hours=1)


def test_graph_rate_limit_without_usage_headers_waits_fifteen_minutes(fake_api):
    fake_api.script("graph-17")
    with pytest.raises(RateLimited) as info:
        facebook_page(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(minutes=15)


def test_graph_answer_without_content_type_is_transient():
    class NoContentType(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            response = requests.Response()
            response.status_code, response._content, response.url = 502, b"oops", request.url
            return response

        def close(self):
            pass
    session = requests.Session()
    session.mount("http://", NoContentType())
    with pytest.raises(Transient):
        facebook_page("http://127.0.0.1:9", session=session).publish(POST)
