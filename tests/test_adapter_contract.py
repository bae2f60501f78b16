"""One contract suite that every network adapter passes against the fake X/Graph server."""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from bot.adapters.base import LOOKUP_LIMIT, Adapter
from bot.adapters.facebook import FacebookAdapter
from bot.adapters.twitter import TwitterAdapter
from bot.errors import AlreadyPosted, AuthFailed, RateLimited, Rejected, Transient
from bot.models import Post
from bot.secret import Secret
from fakes import (PAGE_ID, PAGE_TOKEN, FakeApi, X_ACCESS_SECRET, X_ACCESS_TOKEN, X_CONSUMER_KEY,
                   X_CONSUMER_SECRET, fake_api)  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)   # before anything the fake holds
RESET_EPOCH = int(NOW.timestamp()) + 40 * 60    # within X's daily and monthly spans
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
POST = Post(key="a1:acct", account="acct", text="Council approves budget & new park",
            link="https://news.example/budget", image_url="https://news.example/budget.png",
            title="Council approves budget")


def fixed_clock() -> datetime:
    return NOW


@dataclass
class Case:
    """How to build one adapter against the fake, and what to expect of it."""

    cls: type[Adapter]
    credentials: dict[str, str]
    options: Callable[[str], dict]          # base url -> options
    wrong: dict[str, str]                   # credentials the fake refuses
    until: datetime                         # RateLimited.until for script("429", ...)
    image_path: str                         # where the fake refuses an image
    image_refusal: str                      # the fault kind it refuses it with
    has_image: Callable[[dict], bool]       # recorded post -> did it carry the image

    def make(self, url: str, creds: dict[str, str] | None = None, **options) -> Adapter:
        secrets = {k: Secret(v) for k, v in (creds or self.credentials).items()}
        return self.cls("acct", {**self.options(url), **options}, secrets,
                        clock=fixed_clock, fetch_media=lambda url: PNG)


TWITTER = Case(
    TwitterAdapter,
    {"consumer_key": X_CONSUMER_KEY, "consumer_secret": X_CONSUMER_SECRET,
     "access_token": X_ACCESS_TOKEN, "access_token_secret": X_ACCESS_SECRET},
    lambda url: {"api_base_url": url},
    {"consumer_key": X_CONSUMER_KEY, "consumer_secret": "wrong-consumer-secret",
     "access_token": X_ACCESS_TOKEN, "access_token_secret": X_ACCESS_SECRET},
    datetime.fromtimestamp(RESET_EPOCH, timezone.utc),
    "/2/media/upload", "400",
    lambda post: bool(post["media_ids"]),
)
FACEBOOK = Case(
    FacebookAdapter,
    {"page_access_token": PAGE_TOKEN},
    lambda url: {"graph_base_url": url, "page_id": PAGE_ID},
    {"page_access_token": "wrong-page-token-0001"},
    NOW + timedelta(minutes=7),
    "/photos", "graph-324",
    lambda post: bool(post["image_url"]),
)


@pytest.fixture(params=[TWITTER, FACEBOOK], ids=["twitter", "facebook"])
def case(request) -> Case:
    return request.param


@pytest.fixture
def adapter(case, fake_api) -> Adapter:
    return case.make(fake_api.url)


def test_publish_returns_the_platform_id(adapter, fake_api):
    receipt = adapter.publish(POST)
    [recorded] = fake_api.posts
    assert receipt.platform_id == recorded["id"]
    assert receipt.url and recorded["id"] in receipt.url
    assert recorded["text"] == POST.text


def test_bad_credentials_are_auth_failed(case, fake_api):
    with pytest.raises(AuthFailed):
        case.make(fake_api.url, case.wrong).publish(POST)
    assert fake_api.posts == []


@pytest.mark.parametrize("kind, error", [
    ("401", AuthFailed), ("500", Transient), ("503", Transient), ("502", Transient),
    ("403-duplicate", AlreadyPosted), ("403-permissions", AuthFailed), ("400", Rejected),
])
def test_platform_errors_are_translated(adapter, fake_api, kind, error):
    fake_api.script(kind)
    with pytest.raises(error):
        adapter.publish(POST)


def test_rate_limit_carries_when_it_lifts(case, adapter, fake_api):
    fake_api.script("429", reset=RESET_EPOCH, regain=7)
    with pytest.raises(RateLimited) as info:
        adapter.publish(POST)
    assert info.value.until == case.until


def test_rejected_keeps_the_platform_message(adapter, fake_api):
    fake_api.script("400", message="Text of the post is too long")
    with pytest.raises(Rejected, match="Text of the post is too long"):
        adapter.publish(POST)


def test_a_server_that_never_answers_is_transient_within_the_timeout(case, fake_api):
    adapter = case.make(fake_api.url, read_timeout=0.3)
    fake_api.script("hang", seconds=5)
    started = time.monotonic()
    with pytest.raises(Transient):
        adapter.publish(POST)
    assert time.monotonic() - started < 2


def test_a_refused_connection_is_transient(case):
    with socket.socket() as s:       # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Transient):
        case.make(f"http://127.0.0.1:{port}", connect_timeout=0.5).publish(POST)


def test_image_is_attached_when_asked(case, fake_api):
    case.make(fake_api.url, attach_image=True).publish(POST)
    [recorded] = fake_api.posts
    assert case.has_image(recorded)


def test_refused_image_falls_back_to_a_post_without_it(case, fake_api, caplog):
    fake_api.script(case.image_refusal, path=case.image_path)
    receipt = case.make(fake_api.url, attach_image=True).publish(POST)
    [recorded] = fake_api.posts
    assert receipt.platform_id == recorded["id"] and not case.has_image(recorded)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "without image" in warnings[0].getMessage()


def test_verify_names_the_account(adapter):
    who = adapter.verify()
    assert "(id " in who and ("@herald_test" in who or "Herald Test Page" in who)


def test_verify_with_bad_credentials_fails(case, fake_api):
    with pytest.raises(AuthFailed):
        case.make(fake_api.url, case.wrong).verify()


def test_find_recent_finds_a_published_post(adapter):
    receipt = adapter.publish(POST)
    assert adapter.find_recent(POST, SINCE) == receipt


def test_find_recent_returns_none_for_an_unpublished_post(adapter):
    adapter.publish(POST)
    other = Post(key="b", account="acct", text="Something else entirely",
                 link="https://news.example/other")
    assert adapter.find_recent(other, SINCE) is None


@pytest.fixture
def timed_api():
    """A FakeApi whose clock the test sets: ``timed_api.now[0]`` is "now"."""
    now = [NOW]
    with FakeApi(hang_seconds=3.0, clock=lambda: now[0]) as fake:
        fake.now = now
        yield fake


def test_find_recent_pages_back_to_a_post_accepted_long_ago(case, timed_api):
    adapter = case.make(timed_api.url)
    timed_api.now[0] = NOW - timedelta(days=3)
    receipt = adapter.publish(POST)
    timed_api.seed(case.cls.platform, 450, NOW - timedelta(days=1))
    assert adapter.find_recent(POST, NOW - timedelta(days=3, minutes=10)) == receipt
    lookups = [r for r in timed_api.requests if r["path"].endswith(("/tweets", "/feed"))
               and r["method"] == "GET"]
    assert len(lookups) == 5, "100 a page, newest first, until the post"


def test_find_recent_does_not_look_before_since(case, timed_api):
    adapter = case.make(timed_api.url)
    timed_api.now[0] = NOW - timedelta(days=3)
    adapter.publish(POST)
    assert adapter.find_recent(POST, NOW - timedelta(days=2)) is None


def test_find_recent_cut_short_is_rejected_never_not_found(case, timed_api):
    adapter = case.make(timed_api.url)
    timed_api.now[0] = NOW - timedelta(days=3)
    adapter.publish(POST)
    timed_api.seed(case.cls.platform, LOOKUP_LIMIT, NOW - timedelta(days=1))
    with pytest.raises(Rejected, match=f"more than {LOOKUP_LIMIT}"):
        adapter.find_recent(POST, NOW - timedelta(days=4))
    assert adapter.find_recent(POST, NOW - timedelta(days=2)) is None   # all seen: absent


def test_secrets_never_reach_logs_errors_or_reprs(case, fake_api, caplog):
    caplog.set_level(logging.DEBUG)
    adapter = case.make(fake_api.url, attach_image=True)
    adapter.publish(POST)
    adapter.verify()
    adapter.find_recent(POST, SINCE)
    errors, plain = [], case.make(fake_api.url)
    for kind in ("401", "400", "502", "429"):
        fake_api.script(kind)
        with pytest.raises(Exception) as info:
            plain.publish(POST)
        errors.append(info.value)
    with pytest.raises(AuthFailed) as info:
        case.make(fake_api.url, case.wrong).verify()
    errors.append(info.value)
    assert any(r.name.startswith("urllib3") for r in caplog.records)   # DEBUG really on
    seen = caplog.text + repr(adapter) + repr(vars(adapter)) + "".join(
        f"{e} {e!r} {e.__cause__} {e.__cause__!r}" for e in errors)
    for value in {**case.credentials, **case.wrong}.values():
        assert value not in seen
