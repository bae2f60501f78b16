"""The desk through the real listener on 127.0.0.1: login, sessions, CSRF,
actions, escaping, and that no secret is ever on a page."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.configtypes import DeskSettings
from bot.desk import COOKIE, MAX_SESSIONS, Callbacks, check_password, desk_routes, hash_password
from bot.deskhtml import page
from bot.errors import ConfigError
from bot.listener import Listener
from bot.secret import Secret

TOKEN = "desk-token-SECRET-8f3a"
PASSWORD = "correct horse SECRET"
PARIS = ZoneInfo("Europe/Paris")


def sample_doc(title: str = "Budget vote tonight", text: str = "Budget vote tonight https://n.example/1",
               name: str = "newsroom-x", error: str = "Rejected: duplicate content",
               url: str = "https://n.example/1") -> dict:
    at = datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc).astimezone(PARIS)
    post = {"id": 7, "account": name, "title": title, "at": at, "article_url": url,
            "platform_id": "99", "permalink": url}
    return {
        "generated_at": at, "timezone": "Europe/Paris", "problems": [f"feed {name} is gone: {error}"],
        "service": {"running": True, "workers": []},
        "feeds": [{"name": name, "state": "failing", "last_fetch": at, "last_error": error,
                   "gone_reason": None, "next_try": at, "error_streak": 2}],
        "held": [{**post, "id": 3, "text": text}],
        "failed_posts": [{**post, "id": 5, "error": error}],
        "accounts": [{"name": name, "platform": "twitter", "timezone": "Europe/Paris",
                      "state": "waiting", "wait_reason": error, "waiting_until": at,
                      "paused_reason": None, "resumes_by_itself": False, "counts": {"sent": 4},
                      "budget": {"spent": 4, "left": 96, "resets": at},
                      "queue_total": 30, "queue": [{"id": 8, "title": title, "at": at, "reason": error,
                                                    "expires_at": None, "expires_before_sent": False}]}],
        "recent_posts": [post],
    }


class Recorder:
    """A DeskData that records what the desk asked of it."""

    def __init__(self, doc: dict | None = None):
        self.the_doc = doc or sample_doc()
        self.calls: list[tuple] = []
        self.refuse: str | None = None

    def doc(self) -> dict:
        return self.the_doc

    def act(self, action: str, post_id: int, text: str | None) -> str:
        if self.refuse:
            raise ValueError(self.refuse)
        self.calls.append((action, post_id, text))
        return f"post {post_id}: {action} done"

    def check_text(self, post_id: int, text: str) -> str | None:
        return f"{len(text)} characters, over the limit of 20" if len(text) > 20 else None


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def serve():
    """serve(settings, data=None) -> (base URL, data, clock)."""
    started: list[Listener] = []

    def start(desk: DeskSettings, data: Recorder | None = None):
        data, clock = data or Recorder(), Clock()
        listener = Listener("127.0.0.1", 0, desk_routes(data, desk, clock))
        listener.start()
        started.append(listener)
        return f"http://127.0.0.1:{listener.port}", data, clock
    yield start
    for listener in started:
        listener.stop()


def token_settings() -> DeskSettings:
    return DeskSettings(token=Secret(TOKEN))


def logged_in(base: str) -> requests.Session:
    """A browser-like client that logged in with the token."""
    client = requests.Session()
    form = client.get(f"{base}/desk/login", timeout=10)
    answer = client.post(f"{base}/desk/login", data={"token": TOKEN, "csrf": csrf_of(form.text)},
                         allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"] == "/desk"
    return client


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def test_the_page_needs_the_token_and_the_login_opens_a_new_session(serve):
    base, _, _ = serve(token_settings())
    first = requests.get(f"{base}/desk", allow_redirects=False, timeout=10)
    assert (first.status_code, first.headers["Location"]) == (303, "/desk/login")
    client = requests.Session()
    form = client.get(f"{base}/desk/login", timeout=10)
    cookie = form.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/desk"):
        assert attribute in cookie
    before = client.cookies[COOKIE]
    wrong = client.post(f"{base}/desk/login", data={"token": "guess", "csrf": csrf_of(form.text)},
                        allow_redirects=False, timeout=10)
    assert wrong.status_code == 403 and "not the desk&#x27;s token" in wrong.text
    assert client.get(f"{base}/desk", allow_redirects=False, timeout=10).status_code == 303
    right = client.post(f"{base}/desk/login", data={"token": TOKEN, "csrf": csrf_of(form.text)},
                        allow_redirects=False, timeout=10)
    assert right.status_code == 303 and client.cookies[COOKIE] != before, "a fresh session id"
    desk = client.get(f"{base}/desk", timeout=10)
    assert desk.status_code == 200 and "Budget vote tonight" in desk.text
    assert "default-src 'none'" in desk.headers["Content-Security-Policy"]
    assert desk.headers["X-Frame-Options"] == "DENY"


def test_behind_an_https_proxy_the_cookie_is_secure(serve):
    base, _, _ = serve(token_settings())
    plain = requests.get(f"{base}/desk/login", timeout=10)
    proxied = requests.get(f"{base}/desk/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "Secure" not in plain.headers["Set-Cookie"] and "; Secure" in proxied.headers["Set-Cookie"]


def test_a_login_without_the_forms_csrf_token_is_refused(serve):
    base, _, _ = serve(token_settings())
    client = requests.Session()
    client.get(f"{base}/desk/login", timeout=10)
    answer = client.post(f"{base}/desk/login", data={"token": TOKEN}, allow_redirects=False, timeout=10)
    assert answer.status_code == 403 and COOKIE not in answer.headers.get("Set-Cookie", "")


def test_an_action_needs_the_sessions_csrf_token(serve):
    base, data, _ = serve(token_settings())
    client, other = logged_in(base), logged_in(base)
    token = csrf_of(client.get(f"{base}/desk", timeout=10).text)
    stranger = csrf_of(other.get(f"{base}/desk", timeout=10).text)
    for fields in ({}, {"csrf": ""}, {"csrf": stranger}, {"csrf": token + "x"}):
        answer = client.post(f"{base}/desk/retry/5", data=fields, allow_redirects=False, timeout=10)
        assert answer.status_code == 403, fields
    anonymous = requests.post(f"{base}/desk/retry/5", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert anonymous.status_code == 403
    assert data.calls == []
    done = client.post(f"{base}/desk/retry/5", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert (done.status_code, done.headers["Location"]) == (303, "/desk")
    assert data.calls == [("retry", 5, None)]


def test_approve_as_composed_edited_and_too_long(serve):
    base, data, _ = serve(token_settings())
    client = logged_in(base)
    token = csrf_of(client.get(f"{base}/desk", timeout=10).text)
    composed = data.the_doc["held"][0]["text"]
    client.post(f"{base}/desk/approve/3", data={"csrf": token, "original": composed,
                                                "text": composed.replace("\n", "\r\n")}, timeout=10)
    client.post(f"{base}/desk/approve/3", data={"csrf": token, "original": composed,
                                                "text": "Vote\r\ntonight"}, timeout=10)
    assert data.calls == [("approve", 3, None), ("approve", 3, "Vote\ntonight")]
    long = "<b>twenty-one chars</b> and more"
    refused = client.post(f"{base}/desk/approve/3", data={"csrf": token, "original": composed,
                                                          "text": long}, allow_redirects=False, timeout=10)
    assert refused.status_code == 422 and "over the limit of 20" in refused.text
    assert "&lt;b&gt;twenty-one chars&lt;/b&gt; and more</textarea>" in refused.text, "the edit is kept"
    assert len(data.calls) == 2
    empty = client.post(f"{base}/desk/approve/3", data={"csrf": token, "original": composed, "text": "  "},
                        allow_redirects=False, timeout=10)
    assert empty.status_code == 422 and "the text is empty" in empty.text


def test_what_an_action_said_is_shown_once_after_the_redirect(serve):
    base, data, _ = serve(token_settings())
    client = logged_in(base)
    token = csrf_of(client.get(f"{base}/desk", timeout=10).text)
    page_after = client.post(f"{base}/desk/skip/5", data={"csrf": token}, timeout=10)
    assert "post 5: skip done" in page_after.text, "followed the 303 to the page"
    assert "post 5: skip done" not in client.get(f"{base}/desk", timeout=10).text
    data.refuse = "post 5 is sent: nothing to retry"
    refused = client.post(f"{base}/desk/retry/5", data={"csrf": token}, timeout=10)
    assert 'class="notice error"' in refused.text and "nothing to retry" in refused.text


def test_unknown_actions_and_ids_are_404(serve):
    base, data, _ = serve(token_settings())
    client = logged_in(base)
    token = csrf_of(client.get(f"{base}/desk", timeout=10).text)
    assert client.post(f"{base}/desk/publish/5", data={"csrf": token}, timeout=10).status_code == 404
    assert client.post(f"{base}/desk/retry/five", data={"csrf": token}, timeout=10).status_code == 404
    assert data.calls == []


def test_a_forged_or_expired_session_is_no_session(serve):
    base, _, clock = serve(token_settings())
    client = logged_in(base)
    sid, _, mac = client.cookies[COOKIE].partition(".")
    forged = requests.get(f"{base}/desk", cookies={COOKIE: f"{sid}.{mac[:-2]}AA"},
                          allow_redirects=False, timeout=10)
    assert forged.status_code == 303
    other_base, _, _ = serve(token_settings())   # another process: another key
    carried = requests.get(f"{other_base}/desk", cookies={COOKIE: client.cookies[COOKIE]},
                           allow_redirects=False, timeout=10)
    assert carried.status_code == 303
    assert client.get(f"{base}/desk", allow_redirects=False, timeout=10).status_code == 200
    clock.now += timedelta(hours=13)
    assert client.get(f"{base}/desk", allow_redirects=False, timeout=10).status_code == 303


def test_logout_ends_the_session(serve):
    base, _, _ = serve(token_settings())
    client = logged_in(base)
    token = csrf_of(client.get(f"{base}/desk", timeout=10).text)
    kept = dict(client.cookies)
    assert client.post(f"{base}/desk/logout", data={}, allow_redirects=False, timeout=10).status_code == 403
    out = client.post(f"{base}/desk/logout", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert (out.status_code, out.headers["Location"]) == (303, "/desk/login")
    replay = requests.get(f"{base}/desk", cookies=kept, allow_redirects=False, timeout=10)
    assert replay.status_code == 303, "the old cookie no longer opens the desk"


@pytest.mark.parametrize("kind", ["scrypt", "pbkdf2"])
def test_basic_auth_against_a_password_hash(serve, kind):
    if kind == "scrypt":
        stored = hash_password(PASSWORD)
    else:
        salt = b"pepper-and-salt"
        digest = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, 1000)
        stored = f"pbkdf2_sha256$1000${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    base, data, _ = serve(DeskSettings(user="ed", password_hash=stored))
    bare = requests.get(f"{base}/desk", timeout=10)
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"].startswith("Basic ")
    for auth in (("ed", "wrong"), ("editor", PASSWORD), ("ed", PASSWORD + "x")):
        assert requests.get(f"{base}/desk", auth=auth, timeout=10).status_code == 401, auth
    client = requests.Session()
    client.auth = ("ed", PASSWORD)
    desk = client.get(f"{base}/desk", timeout=10)
    assert desk.status_code == 200 and COOKIE in client.cookies, "a session for the CSRF token"
    token = csrf_of(desk.text)
    assert client.post(f"{base}/desk/reject/3", data={}, allow_redirects=False, timeout=10).status_code == 403
    assert requests.post(f"{base}/desk/reject/3", data={"csrf": token}, cookies=dict(client.cookies),
                         allow_redirects=False, timeout=10).status_code == 401, "the cookie is not a password"
    client.post(f"{base}/desk/reject/3", data={"csrf": token}, timeout=10)
    assert data.calls == [("reject", 3, None)]
    assert requests.get(f"{base}/desk/login", timeout=10).status_code == 404, "no token, no login form"


def test_password_hashes_check_and_malformed_ones_are_config_errors():
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert check_password(PASSWORD, stored) and not check_password(PASSWORD[:-1], stored)
    assert hash_password(PASSWORD) != stored, "a random salt each time"
    for bad in ("plain", "scrypt$$", "scrypt$!!$AAAA", "pbkdf2_sha256$x$AAAA$AAAA",
                "pbkdf2_sha256$0$AAAA$AAAA", "md5$AAAA$AAAA"):
        with pytest.raises(ConfigError, match="desk.password_hash"):
            desk_routes(Recorder(), DeskSettings(password_hash=bad), Clock())


def test_no_secret_on_any_page(serve):
    stored = hash_password(PASSWORD)
    base, data, _ = serve(DeskSettings(token=Secret(TOKEN), password_hash=stored))
    client = requests.Session()
    seen = [client.get(f"{base}/desk/login", timeout=10)]
    seen.append(client.post(f"{base}/desk/login", data={"token": TOKEN + "x", "csrf": csrf_of(seen[0].text)},
                            timeout=10))
    client = logged_in(base)
    seen.append(client.get(f"{base}/desk", timeout=10))
    seen.append(client.post(f"{base}/desk/approve/3", data={"csrf": csrf_of(seen[-1].text), "text": "x" * 30},
                            timeout=10))
    seen.append(requests.post(f"{base}/desk/approve/3", timeout=10))
    for answer in seen:
        for secret in (TOKEN, PASSWORD, stored, stored.split("$")[2]):
            assert secret not in answer.text and secret not in str(answer.headers)


def test_without_protection_the_desk_still_wants_its_csrf_token(serve):
    base, data, _ = serve(DeskSettings())
    client = requests.Session()
    token = csrf_of(client.get(f"{base}/desk", timeout=10).text)
    assert requests.post(f"{base}/desk/skip/5", data={"csrf": token}, timeout=10).status_code == 403
    client.post(f"{base}/desk/skip/5", data={"csrf": token}, timeout=10)
    assert data.calls == [("skip", 5, None)]


# -- escaping -----------------------------------------------------------------------

class Markup(HTMLParser):
    """The tags and attributes of a page, and its text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.hrefs += [value for name, value in attrs if name == "href"]

    def handle_data(self, data):
        self.text.append(data)


hostile = st.text(st.sampled_from('<>&"\'=/ ;:abc\n\u202e\u00e9') | st.characters(), min_size=1, max_size=40)
hostile_urls = st.sampled_from(["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<script>",
                                'https://x.example/"><script>alert(1)</script>', "vbscript:x"])


@settings(max_examples=150, deadline=None)
@given(title=hostile, text=hostile, name=hostile, error=hostile, url=hostile_urls)
def test_hostile_values_never_become_markup(title, text, name, error, url):
    plain = Markup(page(sample_doc("t", "t", "n", "e", url), csrf="c"))
    shown = Markup(page(sample_doc(title, text, name, error, url), csrf="c"))
    assert shown.tags == plain.tags, "the same elements and attributes whatever the values"
    assert all(h.startswith(("https://", "http://", "/")) for h in shown.hrefs)
    assert not any(h.lower().startswith(("javascript", "data", "vbscript")) for h in shown.hrefs)


def test_a_hostile_title_through_the_listener_is_text(serve):
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    base, _, _ = serve(DeskSettings(), Recorder(sample_doc(title=evil, url="javascript:alert(3)")))
    html = requests.get(f"{base}/desk", timeout=10).text
    assert "<script>" not in html and "<img" not in html and "javascript:" not in html
    assert evil in "".join(Markup(html).text), "shown as the feed wrote it"


def test_times_carry_their_zone_and_budget_and_queues_show():
    html = page(sample_doc(), csrf="c")
    assert "2026-12-02 10:30 Europe/Paris" in html
    assert "budget: spent 4, left 96, resets 2026-12-02 10:30 Europe/Paris" in html
    assert "and 29 more" in html and 'name="viewport"' in html
    assert "Nothing waits" in page({}, csrf="c"), "an empty document is a page too"


def test_callbacks_is_a_desk_data():
    data = Callbacks(doc=dict, act=lambda action, post, text: "done")
    assert data.check_text(1, "anything") is None and data.act("skip", 1, None) == "done"


def test_a_flood_of_login_forms_does_not_log_an_editor_out(serve):
    base, _, _ = serve(token_settings())
    client = logged_in(base)
    for _ in range(MAX_SESSIONS + 20):
        requests.get(f"{base}/desk/login", timeout=10)
    assert client.get(f"{base}/desk", allow_redirects=False, timeout=10).status_code == 200


def test_guessing_the_token_is_held_up_but_an_editor_already_in_is_not(serve, caplog):
    base, data, clock = serve(token_settings())
    editor = logged_in(base)
    guesser = requests.Session()
    form = csrf_of(guesser.get(f"{base}/desk/login", timeout=10).text)

    def guess(token="guess"):
        return guesser.post(f"{base}/desk/login", data={"token": token, "csrf": form},
                            allow_redirects=False, timeout=10)
    assert [guess().status_code for _ in range(10)] == [403] * 10
    held = guess(TOKEN)
    assert held.status_code == 429 and held.headers["Retry-After"] == "60", \
        "not even the right token is checked while guesses wait"
    assert "10 failed logins" in caplog.text
    assert editor.get(f"{base}/desk", timeout=10).status_code == 200
    clock.now += timedelta(seconds=61)
    assert guess(TOKEN).status_code == 303


def test_guessing_the_password_is_held_up_but_a_browser_already_in_is_not(serve):
    base, _, clock = serve(DeskSettings(user="ed", password_hash=hash_password(PASSWORD)))
    editor = requests.Session()
    editor.auth = ("ed", PASSWORD)
    assert editor.get(f"{base}/desk", timeout=10).status_code == 200
    answers = [requests.get(f"{base}/desk", auth=("ed", f"guess{n}"), timeout=10).status_code
               for n in range(11)]
    assert answers == [401] * 10 + [429]
    assert requests.get(f"{base}/desk", auth=("ed", PASSWORD), timeout=10).status_code == 429
    assert requests.get(f"{base}/desk", timeout=10).status_code == 401, "the bare ask still asks"
    assert editor.get(f"{base}/desk", timeout=10).status_code == 200
    clock.now += timedelta(minutes=1, seconds=1)
    assert requests.get(f"{base}/desk", auth=("ed", PASSWORD), timeout=10).status_code == 200
