"""One contract suite that every network adapter passes against the fake server.

Its platforms come from the fake server's registry: a platform whose fake
module (tests/fakes/<name>_api.py) declares a ``Contract`` runs here, with the
adapter class the registry in ``bot.adapters`` names for it.
"""
from __future__ import annotations

import logging
import math
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.adapters import UnavailablePlatform, adapter_class
from bot.adapters.base import LOOKUP_LIMIT, Adapter
from bot.errors import AuthFailed, RateLimited, Rejected, Transient
from bot.models import Post
from bot.secret import Secret
from fakes import FakeApi, fake_api, platforms  # noqa: F401  (fixture)
from fakes.shapes import CONTRACT_NOW as NOW
from fakes.shapes import REGAIN_MINUTES, RESET_EPOCH, Contract

SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)   # before anything the fake holds
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
POST = Post(key="a1:acct", account="acct", text="Council approves budget & new park",
            link="https://news.example/budget", image_url="https://news.example/budget.png",
            title="Council approves budget")
CONTRACTS = {name: p.contract for name, p in sorted(platforms().items()) if p.contract}


def fixed_clock() -> datetime:
    return NOW


class Case:
    """One platform's adapter against the fake, and what the contract expects of it."""

    def __init__(self, name: str, contract: Contract):
        self.name, self.c = name, contract
        self.cls: type[Adapter] = adapter_class(name)
        self.credentials, self.wrong, self.until = contract.credentials, contract.wrong, contract.until
        self.image_path, self.image_refusal = contract.image_path, contract.image_refusal
        self.has_image = contract.has_image

    def make(self, url: str, creds=None, **options) -> Adapter:
        secrets = {k: Secret(v) for k, v in (creds or self.credentials).items()}
        return self.cls("acct", {**self.c.options(url), **options}, secrets,
                        clock=fixed_clock, fetch_media=lambda url: PNG)


# X and Graph by name, for the property suites that send them platform-shaped bodies.
TWITTER, FACEBOOK = Case("twitter", CONTRACTS["twitter"]), Case("facebook", CONTRACTS["facebook"])


def test_the_registry_gives_the_contract_its_platforms():
    assert {"twitter", "facebook"} <= set(CONTRACTS)


def contract_case(name: str) -> Case:
    """The platform's case; skipped while its adapter module is not written yet."""
    try:
        return Case(name, CONTRACTS[name])
    except UnavailablePlatform as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=sorted(CONTRACTS))
def case(request) -> Case:
    return contract_case(request.param)


@pytest.fixture
def adapter(case, fake_api) -> Adapter:
    return case.make(fake_api.url)


FAULTS = sorted({(name, kind, error) for name, c in CONTRACTS.items()
                 for kind, error in c.faults.items()}, key=lambda t: (t[0], t[1]))


def test_publish_returns_the_platform_id(adapter, fake_api):
    receipt = adapter.publish(POST)
    [recorded] = fake_api.posts
    assert receipt.platform_id == recorded["id"]
    assert receipt.url and receipt.url.startswith("https://")   # a page a person can open
    assert recorded["text"] == POST.text


def test_bad_credentials_are_auth_failed(case, fake_api):
    with pytest.raises(AuthFailed):
        case.make(fake_api.url, case.wrong).publish(POST)
    assert fake_api.posts == []


@pytest.mark.parametrize("name, kind, error", FAULTS, ids=[f"{n}-{k}" for n, k, _ in FAULTS])
def test_platform_errors_are_translated(fake_api, name, kind, error):
    adapter = contract_case(name).make(fake_api.url)
    fake_api.script(kind)
    with pytest.raises(error):
        adapter.publish(POST)


def test_rate_limit_carries_when_it_lifts(case, adapter, fake_api):
    fake_api.script("429", reset=RESET_EPOCH, regain=REGAIN_MINUTES)
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


def test_verify_names_the_account(case, adapter):
    assert case.c.verify_names in adapter.verify()


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
    timed_api.seed(case.name, 450, NOW - timedelta(days=1))
    assert adapter.find_recent(POST, NOW - timedelta(days=3, minutes=10)) == receipt
    lookups = [r for r in timed_api.requests if r["path"].endswith(case.c.lookup_paths)
               and r["method"] == "GET"]
    assert len(lookups) == math.ceil(451 / case.c.page_size), "full pages, newest first, until the post"


def test_find_recent_does_not_look_before_since(case, timed_api):
    adapter = case.make(timed_api.url)
    timed_api.now[0] = NOW - timedelta(days=3)
    adapter.publish(POST)
    assert adapter.find_recent(POST, NOW - timedelta(days=2)) is None


def test_find_recent_cut_short_is_rejected_never_not_found(case, timed_api):
    adapter = case.make(timed_api.url)
    timed_api.now[0] = NOW - timedelta(days=3)
    adapter.publish(POST)
    timed_api.seed(case.name, LOOKUP_LIMIT, NOW - timedelta(days=1))
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
