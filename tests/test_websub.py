"""The WebSub subscriber against a real hub on 127.0.0.1 (tests/fakes/hub.py),
its callback served by bot.listener: subscribe, verification of intent,
signed notifications, renewal, unsubscribe; and hostile callback requests."""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta, timezone

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.errors import FeedError
from bot.listener import Listener, Request
from bot.secret import Secret
from bot.config import HttpSettings
from bot.http import HttpClient
from bot.websub import WebSub, signed, usable_hub
from feed_servers import fake_resolver
from tests.fakes.hub import FakeHub

TOPIC = "https://news.example.org/feed.xml"


def local_post():
    """Herald's own hub POST, let through to the fake hub on this machine."""
    return HttpClient(HttpSettings(deadline=5, allow_hosts=("127.0.0.1",))).post_form
SECRET = "s3cret-websub-" + "x" * 50


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Polls(list):
    def __call__(self, feed: str) -> bool:
        self.append(feed)
        return True


@pytest.fixture
def world():
    """A started listener serving a WebSub's routes, and a fake hub."""
    clock, polls = Clock(), Polls()
    drawn = iter([SECRET] + [f"{SECRET}-{n}" for n in range(2, 100)])
    websub = WebSub("http://127.0.0.1:0", local_post(), clock, polls, token=lambda: next(drawn))
    listener = Listener("127.0.0.1", 0, websub.routes())
    listener.start()
    websub.public_url = f"http://127.0.0.1:{listener.port}"   # the port is known only now
    with FakeHub() as hub:
        yield websub, hub, polls, clock, f"http://127.0.0.1:{listener.port}"
    listener.stop()


def verified(hub: FakeHub) -> bool:
    return any(s.topic == TOPIC for s in hub.subs.values())


def test_subscribes_once_with_callback_secret_and_lease_then_the_hub_verifies(world):
    websub, hub, polls, _, base = world
    assert websub.seen("news", hub.url, TOPIC)
    assert hub.wait_for(verified)
    assert not websub.seen("news", hub.url, TOPIC)      # live: nothing asked again
    form = hub.requests[0]
    assert form == {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": f"{base}/websub/news",
                    "hub.secret": SECRET, "hub.lease_seconds": str(5 * 86400)}
    assert len(hub.requests) == 1
    assert websub.subs["news"].state == "active"


def test_a_signed_notification_polls_the_feed(world):
    websub, hub, polls, _, _ = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    assert hub.publish(TOPIC, b"<rss>new item</rss>") == [202]
    assert polls == ["news"]


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_every_algorithm_of_the_spec_is_checked(world, algorithm):
    websub, hub, polls, _, _ = world
    hub.algorithm = algorithm
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    hub.publish(TOPIC, b"body")
    assert polls == ["news"]


def test_a_notification_signed_with_another_secret_is_acknowledged_and_ignored(world):
    websub, hub, polls, _, _ = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    assert hub.publish(TOPIC, b"<rss/>", secret="guess") == [202]
    assert polls == []


def test_an_unsigned_notification_or_one_for_another_feed_polls_nothing(world):
    websub, hub, polls, _, base = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    assert requests.post(f"{base}/websub/news", data=b"x", timeout=5).status_code == 202
    mac = hmac.new(SECRET.encode(), b"x", hashlib.sha256).hexdigest()
    answer = requests.post(f"{base}/websub/sport", data=b"x", headers={"X-Hub-Signature": f"sha256={mac}"},
                           timeout=5)
    assert answer.status_code == 404
    assert polls == []


def test_a_hub_that_verifies_before_it_answers_is_fine(world):
    websub, hub, polls, _, _ = world
    hub.verify_first = True
    websub.seen("news", hub.url, TOPIC)
    assert verified(hub) and websub.subs["news"].state == "active"


def test_verification_for_a_topic_or_feed_never_asked_is_refused_with_404(world):
    websub, hub, _, _, base = world
    assert hub.verify({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": f"{base}/websub/news"}) is False
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    other = {"hub.mode": "subscribe", "hub.topic": "https://evil.example/feed", "hub.callback": f"{base}/websub/news"}
    assert hub.verify(other) is False
    unsub = {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.callback": f"{base}/websub/news"}
    assert hub.verify(unsub) is False          # someone else asked the hub to drop us
    assert [status for _, status, _ in hub.checks] == [404, 200, 404, 404]


def test_the_lease_the_hub_grants_sets_the_renewal_at_80_percent(world):
    websub, hub, _, clock, _ = world
    hub.lease_seconds = 1000
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    assert websub.subs["news"].lease_until == clock.now + timedelta(seconds=1000)
    clock.now += timedelta(seconds=799)
    assert websub.renew() == 0
    clock.now += timedelta(seconds=2)
    assert websub.renew() == 1
    assert hub.wait_for(lambda h: len(h.checks) == 2)
    assert [f["hub.secret"] for f in hub.requests] == [SECRET, SECRET]   # a renewal keeps it
    assert websub.subs["news"].lease_until == clock.now + timedelta(seconds=1000)


def test_a_refusing_hub_is_asked_again_later_not_at_each_poll(world, caplog):
    websub, hub, _, clock, _ = world
    hub.refuse = 403
    with caplog.at_level(logging.DEBUG):
        websub.seen("news", hub.url, TOPIC)
    assert websub.subs["news"].state == "failed"
    assert not websub.seen("news", hub.url, TOPIC)
    assert websub.renew() == 0
    clock.now += timedelta(minutes=6)
    hub.refuse = None
    assert websub.renew() == 1
    assert hub.wait_for(verified)
    assert SECRET not in caplog.text


def test_a_hub_never_verifying_is_asked_again_after_a_while(world):
    websub, hub, _, clock, base = world
    websub.client_post = lambda url, fields: 202    # accepted, never verified
    websub.seen("news", hub.url, TOPIC)
    assert websub.renew() == 0
    clock.now += timedelta(minutes=6)
    websub.client_post = local_post()
    assert websub.renew() == 1
    assert hub.wait_for(verified)


def test_a_new_hub_or_topic_unsubscribes_the_old_one(world):
    websub, hub, _, _, base = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    websub.seen("news", hub.url, TOPIC + "?v=2")
    assert hub.wait_for(lambda h: [s.topic for s in h.subs.values()] == [TOPIC + "?v=2"])
    assert [f["hub.mode"] for f in hub.requests] == ["subscribe", "unsubscribe", "subscribe"]
    assert hub.requests[2]["hub.secret"] == f"{SECRET}-2"     # a new subscription, a new secret


def test_unsubscribe_all_is_verified_and_later_notifications_poll_nothing(world):
    websub, hub, polls, _, _ = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    assert websub.unsubscribe_all() == 1
    assert hub.wait_for(lambda h: not h.subs)
    assert ("unsubscribe", 200) in [(m, s) for m, s, _ in hub.checks]


def test_a_denial_marks_the_subscription_failed_but_signed_notices_still_count(world):
    websub, hub, polls, _, base = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    assert hub.deny(f"{base}/websub/news", TOPIC) == 200
    assert websub.subs["news"].state == "failed"
    assert hub.deny(f"{base}/websub/news", "https://other.example/") == 404
    hub.publish(TOPIC, b"x")
    assert polls == ["news"]


def test_no_subscription_without_a_hub_for_an_unwanted_feed_or_over_plain_http():
    posts = []
    websub = WebSub("https://herald.example.org/", lambda url, f: posts.append(url) or 202, Clock(),
                    Polls(), wanted=lambda feed: feed != "off")
    assert not websub.seen("news", None, TOPIC)
    assert not websub.seen("news", "https://hub.example/", None)
    assert not websub.seen("off", "https://hub.example/", TOPIC)
    assert not websub.seen("news", "http://hub.example/", TOPIC)     # the secret would go in clear
    assert websub.seen("news", "https://hub.example/", TOPIC)
    assert posts == ["https://hub.example/"]
    assert websub.callback("a b/c") == "https://herald.example.org/websub/a%20b%2Fc"


def test_a_hub_that_cannot_be_reached_is_logged_without_secrets(caplog):
    def down(url, fields):
        raise FeedError("connection refused")
    websub = WebSub("https://herald.example.org", down, Clock(), Polls(), token=lambda: SECRET)
    with caplog.at_level(logging.DEBUG):
        assert websub.seen("news", "https://hub.example/?key=abc", TOPIC)
    assert websub.subs["news"].state == "failed"
    assert "connection refused" in caplog.text
    assert SECRET not in caplog.text and "abc" not in caplog.text
    assert SECRET not in repr(websub.subs["news"])


@pytest.mark.parametrize("hub, address", [
    ("https://hub.example/", "10.0.0.5"), ("https://hub.example/", "169.254.169.254"),
    ("https://hub.example/", "::1"), ("http://127.0.0.1:{port}/", None)])
def test_a_hub_in_the_private_network_is_never_posted_to(hub, address, caplog):
    # A hostile feed names the hub: Herald's POST must not reach an intranet
    # service, the cloud metadata endpoint or this machine (unless allowed).
    with FakeHub() as fake:
        client = HttpClient(HttpSettings(deadline=2), resolve=fake_resolver({"hub.example": address}))
        websub = WebSub("https://herald.example.org", client.post_form, Clock(), Polls(),
                        token=lambda: SECRET)
        with caplog.at_level(logging.DEBUG):
            websub.seen("news", hub.format(port=fake.server.server_address[1]), TOPIC)
    assert websub.subs["news"].state == "failed" and fake.requests == []
    assert "refused:" in caplog.text and SECRET not in caplog.text


def test_signature_parsing():
    key = Secret("k" * 20)
    good = hmac.new(key.reveal().encode(), b"body", hashlib.sha384).hexdigest()
    assert signed(b"body", f"sha384={good}", key)
    assert signed(b"body", f"SHA384={good.upper()}", key)
    for header in (None, "", good, f"md5={good}", f"sha384={good}0", f"sha384 {good}", f"sha256={good}"):
        assert not signed(b"body", header, key)
    assert usable_hub("https://hub.example/") and usable_hub("http://127.0.0.1:9/")
    assert not usable_hub("http://[::1") and not usable_hub("ftp://hub.example/")


# -- hostile requests to the callback ------------------------------------------------

text = st.text(max_size=60)
names = st.sampled_from(["hub.mode", "hub.topic", "hub.challenge", "hub.lease_seconds", "hub.reason", "x"])
queries = st.dictionaries(names, st.lists(text | st.sampled_from(["subscribe", "unsubscribe", "denied", TOPIC,
                                                                    "99999999999999999999", "0", "-5"]),
                                          min_size=1, max_size=3))
signatures = st.none() | text | st.builds(lambda m, h: f"{m}={h}",
                                          st.sampled_from(["sha1", "sha256", "sha384", "sha512", "md5", ""]),
                                          st.text("0123456789abcdefABCDEF", max_size=130))


def subscribed() -> tuple[WebSub, Polls]:
    polls = Polls()
    websub = WebSub("https://herald.example.org", lambda url, f: 202, Clock(), polls, token=lambda: SECRET)
    websub.seen("news", "https://hub.example/", TOPIC)
    return websub, polls


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed=st.sampled_from(["news", "sport", ""]) | text, body=st.binary(max_size=200), signature=signatures,
       query=queries)
def test_hostile_notifications_never_crash_and_never_poll_unsigned(feed, body, signature, query):
    websub, polls = subscribed()
    headers = {} if signature is None else {"X-Hub-Signature": signature}
    status, _, _ = websub.notified(Request("POST", f"/websub/{feed}", query, headers, body, {"feed": feed}))
    assert status in (202, 404)
    assert polls == []     # no guess of the secret's HMAC is valid


@settings(max_examples=300, deadline=None)
@given(feed=st.sampled_from(["news", "sport"]) | text, query=queries)
def test_hostile_verifications_never_crash_and_echo_only_for_the_asked_topic(feed, query):
    websub, _ = subscribed()
    status, _, body = websub.verify(Request("GET", f"/websub/{feed}", query, {}, b"", {"feed": feed}))
    first = {name: values[0] for name, values in query.items()}
    if status == 200 and first.get("hub.mode") != "denied":
        assert (feed, first.get("hub.mode"), first.get("hub.topic")) == ("news", "subscribe", TOPIC)
        assert body == first["hub.challenge"].encode("utf-8", "replace")
    else:
        assert status in (200, 404)


def test_a_signed_body_with_any_bytes_polls():
    websub, polls = subscribed()
    body = bytes(range(256))
    mac = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    status, _, _ = websub.notified(Request("POST", "/websub/news", {}, {"x-hub-signature": f"sha1={mac}"},
                                           body, {"feed": "news"}))
    assert (status, polls) == (202, ["news"])


def test_garbage_over_real_http_is_answered(world):
    websub, hub, polls, _, base = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    for path in ("/websub/news?hub.mode=subscribe&hub.challenge=%ff%fe&hub.topic=" + TOPIC,
                 "/websub/news?hub.mode=subscribe&hub.topic=" + TOPIC + "&hub.challenge=c&hub.lease_seconds=1e9",
                 "/websub/news?%%%&&&=", "/websub/%00?hub.mode=denied"):
        assert requests.get(base + path, timeout=5).status_code in (200, 404)
    assert requests.post(f"{base}/websub/news", data=b"\xff" * 1000,
                         headers={"X-Hub-Signature": "sha256=\u00e9"}, timeout=5).status_code == 202
    assert polls == []


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), algorithm=st.sampled_from(["sha1", "sha256", "sha384", "sha512"]),
       upper=st.booleans(), name=st.sampled_from(["X-Hub-Signature", "x-hub-signature", "X-HUB-SIGNATURE"]))
def test_any_body_signed_with_the_secret_polls(body, algorithm, upper, name):
    websub, polls = subscribed()
    mac = hmac.new(SECRET.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    header = f"{algorithm.upper() if upper else algorithm}={mac.upper() if upper else mac}"
    status, _, _ = websub.notified(Request("POST", "/websub/news", {}, {name: header}, body, {"feed": "news"}))
    assert (status, polls) == (202, ["news"])
    flipped = bytes([body[0] ^ 1]) + body[1:] if body else b"x"
    websub.notified(Request("POST", "/websub/news", {}, {name: header}, flipped, {"feed": "news"}))
    assert polls == ["news"]      # one changed byte: ignored


def test_renew_unsubscribes_feeds_no_longer_wanted():
    posts, wanted = [], {"news"}
    websub = WebSub("https://herald.example.org", lambda url, f: posts.append(dict(f)) or 202, Clock(), Polls(),
                    wanted=lambda feed: feed in wanted)
    websub.seen("news", "https://hub.example/", TOPIC)
    wanted.clear()                        # a reload removed the feed
    assert websub.renew() == 0
    assert [p["hub.mode"] for p in posts] == ["subscribe", "unsubscribe"]
    assert websub.subs == {}


def test_a_forged_verification_cannot_grant_a_lease_longer_than_asked(world):
    import urllib.request
    websub, hub, _, clock, base = world
    websub.seen("news", hub.url, TOPIC)
    hub.wait_for(verified)
    forged = (f"{base}/websub/news?hub.mode=subscribe&hub.topic={TOPIC}"
              "&hub.challenge=x&hub.lease_seconds=315360000")
    with urllib.request.urlopen(forged, timeout=5) as answer:
        assert answer.status == 200
    assert websub.subs["news"].lease_until <= clock.now + websub.lease
