"""Answers off the happy path, on both adapters: the total deadline, odd bodies and
headers, and the error tables (X credits and usage cap, Graph 3/102/341)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from bot.adapters.answers import next_month
from bot.adapters.twitter import TwitterAdapter
from bot.errors import AuthFailed, RateLimited, Rejected, Suspended, Transient
from bot.secret import Secret
from fakes import fake_api  # noqa: F401  (fixture)
from test_adapter_contract import FACEBOOK, NOW, POST, SINCE, TWITTER, Case


@pytest.fixture(params=[TWITTER, FACEBOOK], ids=["twitter", "facebook"])
def case(request) -> Case:
    return request.param


# --- the total deadline

def test_a_trickled_answer_is_transient_at_the_deadline(case, fake_api):
    fake_api.script("trickle", seconds=0.05)    # ~100 bytes: 5 s, each byte within read_timeout
    adapter = case.make(fake_api.url, read_timeout=2.0, deadline=0.5)
    started = time.monotonic()
    with pytest.raises(Transient, match="within 0.5 s: outcome unknown"):
        adapter.publish(POST)
    assert time.monotonic() - started < 1.5
    assert len(fake_api.posts) == 1, "accepted: only a lookup can tell"


def test_a_trickle_that_ends_within_the_deadline_is_read(case, fake_api):
    fake_api.script("trickle", seconds=0.001)
    receipt = case.make(fake_api.url, deadline=5.0).publish(POST)
    assert receipt.platform_id == fake_api.posts[0]["id"]


def test_the_deadline_caps_the_wait_for_headers(case, fake_api):
    fake_api.script("hang", seconds=5)
    started = time.monotonic()
    with pytest.raises(Transient):
        case.make(fake_api.url, read_timeout=10.0, deadline=0.4).publish(POST)
    assert time.monotonic() - started < 1.5


def test_a_deadline_miss_drops_the_connection_and_the_next_call_works(case, fake_api):
    adapter = case.make(fake_api.url, deadline=0.3)
    fake_api.script("trickle", seconds=0.05)
    with pytest.raises(Transient):
        adapter.publish(POST)
    other = type(POST)(key="b", account="acct", text="Another story", link=None)
    assert adapter.publish(other).platform_id == fake_api.posts[-1]["id"]


# --- odd shapes, the same verdict on both platforms

@pytest.mark.parametrize("kind, params, error, words", [
    ("401-list", {}, AuthFailed, "401"),
    ("200-html", {}, Transient, "outcome unknown"),
    ("200-no-id", {}, Transient, "without an id"),
    ("cut", {}, Transient, "outcome unknown|Connection broken"),
    ("cut", {"at": 0}, Transient, None),
    ("empty", {}, Transient, "outcome unknown"),
    ("empty", {"status": 201}, Transient, "outcome unknown"),
    ("raw", {"status": 201, "body": [{"id": "1"}]}, Transient, "outcome unknown"),
    ("raw", {"status": 200, "body": b'{"id": "1", "data": {"id": "1"', "length": False},
     Transient, "outcome unknown"),
    ("raw", {"status": 200, "body": {"data": {"id": ""}, "id": None}}, Transient,
     "without an id"),
    ("raw", {"status": 200, "body": {"data": {"id": True}, "id": True}}, Transient,
     "without an id"),
    ("raw", {"status": 200, "body": "{}", "content_type": None}, Transient, None),
    ("raw", {"status": 302, "headers": {"Location": "https://elsewhere.example/"}},
     Transient, "redirected"),
])
def test_odd_answers_map_onto_the_vocabulary(case, fake_api, kind, params, error, words):
    fake_api.script(kind, **params)
    with pytest.raises(error, match=words):
        case.make(fake_api.url).publish(POST)
    assert len(fake_api.requests) == 1, "no redirect followed, nothing sent twice"


def test_429_with_only_retry_after_seconds(case, fake_api):
    fake_api.script("429-retry-after", after=120)
    with pytest.raises(RateLimited) as info:
        case.make(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(seconds=120)


def test_429_with_retry_after_as_a_date_is_measured_on_the_servers_clock(case, fake_api):
    # The fake's Date is the real time, NOW is fixed: only the difference counts.
    when = datetime.now(timezone.utc) + timedelta(minutes=10)
    fake_api.script("429-retry-after", after=format_datetime(when, usegmt=True))
    with pytest.raises(RateLimited) as info:
        case.make(fake_api.url).publish(POST)
    assert abs(info.value.until - (NOW + timedelta(minutes=10))) < timedelta(seconds=3)


def test_a_hostile_retry_after_is_capped(case, fake_api):
    fake_api.script("429-retry-after", after=10 ** 30)
    with pytest.raises(RateLimited) as info:
        case.make(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(days=32)


# --- X

def test_x_credits_depleted_suspends_the_account_with_what_to_do(fake_api):
    fake_api.script("402-credits")
    with pytest.raises(Suspended) as info:
        TWITTER.make(fake_api.url).publish(POST)
    assert info.value.action == ("top up the account's X API credits, then run "
                                 "`run_bot.py resume acct`")
    assert "credits" in info.value.message


def test_x_other_payment_answers_suspend_too(fake_api):
    fake_api.script("raw", status=402, body={"title": "Payment Required"})
    with pytest.raises(Suspended, match="payment") as info:
        TWITTER.make(fake_api.url).publish(POST)
    assert "resume acct" in info.value.action


def test_x_monthly_cap_waits_for_the_next_utc_month(fake_api):
    fake_api.script("429-usage-capped")
    with pytest.raises(RateLimited, match="^monthly usage cap reached: ") as info:
        TWITTER.make(fake_api.url).publish(POST)
    assert info.value.until == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert info.value.reason == "monthly usage cap reached", "status labels the wait so"


def test_x_monthly_cap_waits_for_the_reset_x_names(fake_api):
    reset = int((NOW + timedelta(days=3)).timestamp())
    fake_api.script("429-usage-capped", headers={"x-app-limit-24hour-reset": str(reset),
                                                 "x-rate-limit-reset": str(reset - 3600)})
    with pytest.raises(RateLimited, match="monthly usage cap") as info:
        TWITTER.make(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(days=3)


def test_next_month_rolls_the_year():
    december = datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)
    assert next_month(december) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert next_month(NOW) == datetime(2026, 12, 1, tzinfo=timezone.utc)


class Canned(requests.adapters.BaseAdapter):
    """A transport that answers every request with a created tweet, and keeps the URLs."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def send(self, request, **kwargs):
        self.urls.append(request.url)
        response = requests.Response()
        response.status_code, response.url = 201, request.url
        response._content = b'{"data": {"id": "42", "text": "t"}}'
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self):
        pass


def test_x_requests_go_to_api_x_com_by_default():
    transport, wiring = Canned(), requests.Session()
    wiring.mount("https://", transport)
    adapter = TwitterAdapter("acct", {"attach_image": True},
                             {k: Secret(v) for k, v in TWITTER.credentials.items()},
                             session=wiring, clock=lambda: NOW, fetch_media=lambda url: b"img")
    assert adapter.publish(POST).platform_id == "42"
    assert transport.urls == ["https://api.x.com/2/media/upload", "https://api.x.com/2/tweets"]


def test_x_timeline_page_without_meta_is_not_taken_for_empty(fake_api):
    adapter = TWITTER.make(fake_api.url)
    adapter.verify()
    fake_api.script("raw", status=200, body={}, path="/tweets")
    with pytest.raises(Transient, match="without meta"):
        adapter.find_recent(POST, SINCE)


# --- Graph

@pytest.mark.parametrize("code, error", [(3, AuthFailed), (102, AuthFailed),
                                         (341, RateLimited)])
def test_graph_new_codes(fake_api, code, error):
    fake_api.script(f"graph-{code}", message=f"(#{code}) the platform's words")
    with pytest.raises(error, match="the platform's words"):
        FACEBOOK.make(fake_api.url).publish(POST)


def test_graph_application_limit_waits_an_hour_or_what_usage_says(fake_api):
    fake_api.script("graph-341")
    with pytest.raises(RateLimited, match="application limit reached") as info:
        FACEBOOK.make(fake_api.url).publish(POST)
    assert info.value.until == NOW + timedelta(hours=1)


@pytest.mark.parametrize("code, error", [(102, AuthFailed), (3, Rejected)])
def test_graph_find_recent_keeps_an_expired_session_auth_failed(fake_api, code, error):
    fake_api.script(f"graph-{code}")
    with pytest.raises(error):
        FACEBOOK.make(fake_api.url).find_recent(POST, SINCE)


def test_graph_feed_page_without_data_is_not_taken_for_empty(fake_api):
    fake_api.script("raw", status=200, body={"paging": {}}, path="/feed")
    with pytest.raises(Transient, match="without data"):
        FACEBOOK.make(fake_api.url).find_recent(POST, SINCE)


def test_graph_error_in_a_200_still_counts_by_its_code(fake_api):
    fake_api.script("raw", status=200, body={"error": {"code": 506, "message": "Duplicate"}})
    with pytest.raises(Exception) as info:
        FACEBOOK.make(fake_api.url).publish(POST)
    assert type(info.value).__name__ == "AlreadyPosted"
