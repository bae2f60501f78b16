"""POST /ping/<feed> served by bot.listener on 127.0.0.1 and asked over real
HTTP; the Gate that coalesces pushes; the wiring helpers (routes_for, build)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
import requests
from hypothesis import given, settings, strategies as st

from bot.listener import Listener, Request
from bot.push import Gate, build, ping_routes, presented, routes_for
from bot.secret import Secret

TOKEN = "ping-token-9f8e7d6c"


class Polls(list):
    def __init__(self, known=("news", "open")):
        super().__init__()
        self.known = set(known)

    def __call__(self, feed: str) -> bool:
        self.append(feed)
        return feed in self.known


@pytest.fixture
def ping():
    """(base URL, polls) of a listener serving ping routes for news (token) and open (none)."""
    polls = Polls()
    listener = Listener("127.0.0.1", 0, ping_routes({"news": Secret(TOKEN), "open": None}, polls))
    listener.start()
    yield f"http://127.0.0.1:{listener.port}", polls
    listener.stop()


def test_a_ping_with_the_bearer_token_asks_a_poll(ping):
    base, polls = ping
    answer = requests.post(f"{base}/ping/news", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert (answer.status_code, polls) == (202, ["news"])


def test_a_ping_with_the_token_in_the_query_asks_a_poll(ping):
    base, polls = ping
    assert requests.post(f"{base}/ping/news?token={TOKEN}", timeout=5).status_code == 202
    assert polls == ["news"]


def test_missing_and_wrong_tokens_are_401_and_403_and_poll_nothing(ping):
    base, polls = ping
    missing = requests.post(f"{base}/ping/news", timeout=5)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.post(f"{base}/ping/news", headers={"Authorization": "Basic " + TOKEN}, timeout=5).status_code == 401
    assert requests.post(f"{base}/ping/news?token=nope", timeout=5).status_code == 403
    assert requests.post(f"{base}/ping/news", headers={"Authorization": f"Bearer {TOKEN}x"}, timeout=5).status_code == 403
    assert polls == []


def test_unknown_feeds_and_feeds_without_a_token_are_404(ping):
    base, polls = ping
    for feed in ("sport", "open"):
        answer = requests.post(f"{base}/ping/{feed}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert answer.status_code == 404
    assert requests.get(f"{base}/ping/news", timeout=5).status_code == 405
    assert polls == []


def test_a_feed_the_service_no_longer_has_is_404():
    polls = Polls(known=())
    handle = ping_routes({"news": Secret(TOKEN)}, polls)["POST /ping/<feed>"]
    status, *_ = handle(Request("POST", "/ping/news", {"token": [TOKEN]}, params={"feed": "news"}))
    assert (status, polls) == (404, ["news"])


def test_tokens_are_read_at_each_ping_so_a_reload_counts():
    tokens = {"news": Secret(TOKEN)}
    handle = ping_routes(lambda: tokens, Polls())["POST /ping/<feed>"]
    request = Request("POST", "/ping/news", {"token": [TOKEN]}, params={"feed": "news"})
    assert handle(request)[0] == 202
    tokens["news"] = Secret("rotated-token-1234")
    assert handle(request)[0] == 403


def test_the_token_is_never_logged(ping, caplog):
    base, _ = ping
    with caplog.at_level(logging.DEBUG):
        requests.post(f"{base}/ping/news?token={TOKEN}", timeout=5)
        requests.post(f"{base}/ping/news", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        requests.post(f"{base}/ping/news?token=wrong-{TOKEN}", timeout=5)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot.")]   # not the client's urllib3
    assert ours and not any(TOKEN in line for line in ours)


def test_presented_prefers_the_header():
    request = Request("POST", "/", {"token": ["q"]}, {"authorization": "bearer  h "})
    assert presented(request) == "h"
    assert presented(Request("POST", "/", {"token": [""]}, {"Authorization": "Bearer "})) is None


tokens = st.text(max_size=40) | st.just(TOKEN) | st.just(TOKEN.upper()) | st.just(TOKEN[:-1])


@settings(max_examples=300, deadline=None)
@given(feed=st.sampled_from(["news", "open", "sport"]) | st.text(max_size=20),
       header=st.none() | tokens.map(lambda t: f"Bearer {t}") | tokens, query=st.none() | tokens)
def test_hostile_pings_never_crash_and_poll_only_with_the_right_token(feed, header, query):
    polls = Polls()
    handle = ping_routes({"news": Secret(TOKEN), "open": None}, polls)["POST /ping/<feed>"]
    headers = {} if header is None else {"Authorization": header}
    status, *_ = handle(Request("POST", f"/ping/{feed}", {} if query is None else {"token": [query]},
                                headers, b"", {"feed": feed}))
    right = presented(Request("POST", "/", {} if query is None else {"token": [query]}, headers)) == TOKEN
    assert (status == 202) == (feed == "news" and right)
    assert polls == (["news"] if status == 202 else [])
    assert status in (202, 401, 403, 404)


# -- the gate ---------------------------------------------------------------------

class Timers(list):
    """``later`` that keeps (delay, fn) for the test to run."""

    def __call__(self, delay, fn):
        self.append((delay, fn))


def gate_with(polls, gap=1.0):
    now = [100.0]
    timers = Timers()
    return Gate(polls, gap=gap, monotonic=lambda: now[0], later=timers), now, timers


def test_the_first_push_polls_at_once_and_a_burst_becomes_one_trailing_poll():
    polls = Polls()
    gate, now, timers = gate_with(polls)
    assert gate.ask("news") and polls == ["news"]
    now[0] += 0.3
    assert gate.ask("news") and gate.ask("news") and gate.ask("news")
    assert polls == ["news"] and [round(d, 3) for d, _ in timers] == [0.7]
    now[0] += 0.7
    timers[0][1]()
    assert polls == ["news", "news"]
    now[0] += 0.5
    gate.ask("news")                      # within a gap of the trailing poll
    assert polls == ["news", "news"] and len(timers) == 2


def test_feeds_are_gated_apart_and_after_the_gap_a_push_polls_at_once():
    polls = Polls()
    gate, now, timers = gate_with(polls)
    gate.ask("news")
    gate.ask("open")
    now[0] += 1.0
    gate.ask("news")
    assert polls == ["news", "open", "news"] and timers == []
    assert gate.ask("sport") is False       # the service has no such feed


def test_the_real_timer_fires():
    fired = threading.Event()
    gate = Gate(lambda feed: fired.set() or True, gap=0.05)
    gate.ask("news")
    fired.clear()
    gate.ask("news")
    assert fired.wait(5)


# -- wiring -----------------------------------------------------------------------

def config(public_url=None):
    feeds = [SimpleNamespace(name="news", ping_token=Secret(TOKEN), websub=True),
             SimpleNamespace(name="quiet", ping_token=None, websub=False)]
    return SimpleNamespace(feeds=feeds, public_url=public_url)


def test_routes_for_gives_ping_and_websub_routes():
    assert set(routes_for(config, Polls(), None)) == {"POST /ping/<feed>"}
    push = build(lambda: config("https://herald.example.org"), Polls(), client_post=lambda u, f: 202)
    assert set(push.routes) == {"POST /ping/<feed>", "GET /websub/<feed>", "POST /websub/<feed>"}
    assert push.websub.seen("news", "https://hub.example/", "https://news.example/feed")
    assert not push.websub.seen("quiet", "https://hub.example/", "https://news.example/q")
    assert build(config, Polls(), client_post=lambda u, f: 202).websub is None


def test_push_subscribes_and_renews_in_its_thread_and_unsubscribes_at_stop():
    posts = []
    cfg = config("https://herald.example.org")
    push = build(lambda: cfg, Polls(), client_post=lambda url, f: posts.append(f["hub.mode"]) or 202)
    push.seen("news", "https://hub.example/", "https://news.example/feed")
    assert posts == []                        # queued: the poll does not wait for the hub
    push.start(every=0.01)
    try:
        assert wait_until(lambda: posts == ["subscribe"])
        # as if the hub had refused and the retry were due now
        push.websub.subs["news"] = replace(push.websub.subs["news"], state="failed",
                                           retry_at=push.websub.clock())
        assert wait_until(lambda: posts.count("subscribe") == 2)
    finally:
        push.stop()
    assert posts[-1] == "unsubscribe" and not push.thread.is_alive()


def test_a_failing_hub_request_never_ends_the_thread(caplog):
    calls = []

    def broken(url, fields):
        calls.append(url)
        raise RuntimeError("bug")
    push = build(lambda: config("https://herald.example.org"), Polls(), client_post=broken)
    push.start(every=60)
    try:
        push.seen("news", "https://hub.example/", "https://news.example/feed")
        assert wait_until(lambda: "subscribing or renewing failed" in caplog.text)
        push.websub.subs.clear()
        push.seen("news", "https://hub2.example/", "https://news.example/feed")
        assert wait_until(lambda: calls == ["https://hub.example/", "https://hub2.example/"])
    finally:
        push.stop()


def test_only_feeds_this_worker_owns_are_subscribed():
    posts = []
    push = build(lambda: config("https://herald.example.org"), Polls(),
                 client_post=lambda url, f: posts.append(url) or 202, owns=lambda feed: False)
    assert not push.websub.seen("news", "https://hub.example/", "https://news.example/feed")
    build(config, Polls(), client_post=lambda u, f: 202).seen("news", "https://hub.example/", "t")     # no WebSub: nothing


def wait_until(done, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.01)
    return False


def test_what_is_derived_from_the_config_follows_a_reload():
    current = [config("https://herald.example.org")]
    push = build(lambda: current[0], Polls(), client_post=lambda url, f: 202)
    handle = push.routes["POST /ping/<feed>"]
    request = Request("POST", "/ping/news", {"token": [TOKEN]}, params={"feed": "news"})
    assert handle(request)[0] == 202 and push.websub.wanted("news")
    reloaded = config("https://herald.example.org")
    reloaded.feeds[0] = SimpleNamespace(name="news", ping_token=Secret("new-token-5678"), websub=False)
    current[0] = reloaded
    assert handle(request)[0] == 403 and not push.websub.wanted("news")
