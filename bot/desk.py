"""The editors' desk: one page over the status report, with forms to approve,
reject, retry and skip posts (issue 14), served by bot.listener.

``desk_routes(data, settings, clock)`` gives the listener its routes::

    GET  /desk                    the page
    POST /desk/<action>/<id>      approve (optional edited ``text``), reject, retry, skip
    GET  /desk/login, POST /desk/login, POST /desk/logout   when ``desk.token`` is set

Who may use it: with ``desk.token`` a person logs in once with the token; with
``desk.password_hash`` the browser asks for ``desk.user`` and the password
(HTTP basic auth, checked on every request); with neither, anyone who reaches
the listener (config refuses such a desk beyond loopback). Every visitor has a
session: a cookie signed with a key made at start (so a restart logs everyone
out), HttpOnly, SameSite=Strict, Path=/desk, naming a session held in memory.
Each session has a CSRF token, a hidden field in every form; a POST without
it is refused (403). Actions answer 303 to the page (post, redirect, get),
whose next view says what happened. Nothing secret is ever rendered.

A password hash is made with ``hash_password`` (``python -m bot.desk`` asks
for the password and prints the line for ``desk.password_hash``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.configtypes import DeskSettings
from bot.deskhtml import login_page, page
from bot.errors import ConfigError
from bot.listener import Handler, Request, Response

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
COOKIE = "herald_desk"
SESSION_TTL = timedelta(hours=12)
MAX_SESSIONS = 500            # the oldest go first: memory stays bounded whatever comes
ACTIONS = ("approve", "reject", "retry", "skip")
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}   # what hash_password uses, and every scrypt$ hash
MAX_PBKDF2_ITERATIONS = 10_000_000
LOGIN_FAILURES, LOGIN_WINDOW = 10, timedelta(minutes=1)   # see Throttle
# No script, no frames, forms only to ourselves; the page's one <style> is inline.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


class DeskData(Protocol):
    """What the desk reads and does (bot.report builds it from the store).

    ``doc()``: the status document of ``bot.report.gather`` (its module
    docstring lists the keys), plus ``held`` (posts like ``failed_posts``, with
    ``text``: the composed text) and ``account["budget"]`` ({"spent", "left",
    "resets"}) when present. ``act(action, post_id, text)``: do one of ACTIONS;
    returns the sentence to show, raises ValueError with the sentence for the
    editor when it cannot. ``check_text(post_id, text)``: None when ``text``
    fits the post's platform, else why not."""

    def doc(self) -> dict: ...

    def act(self, action: str, post_id: int, text: str | None) -> str: ...

    def check_text(self, post_id: int, text: str) -> str | None: ...


@dataclass(frozen=True)
class Callbacks:
    """A DeskData made of three functions."""

    doc: Callable[[], dict]
    act: Callable[[str, int, str | None], str]
    check_text: Callable[[int, str], str | None] = lambda post_id, text: None


# -- passwords -------------------------------------------------------------------

def hash_password(password: str) -> str:
    """A ``desk.password_hash`` value for ``password``: scrypt with a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (either format); constant time
    in the comparison. Raises ConfigError when ``stored`` is malformed."""
    kind, salt, digest, run = _parse_hash(stored)
    return hmac.compare_digest(run(password.encode(), salt, len(digest)), digest)


def _parse_hash(stored: str):
    parts = stored.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 3:
            return "scrypt", _unb64(parts[1]), _unb64(parts[2]), _scrypt
        if parts[0] == "pbkdf2_sha256" and len(parts) == 4 and parts[1].isdigit():
            rounds = int(parts[1])
            if 0 < rounds <= MAX_PBKDF2_ITERATIONS:
                return "pbkdf2", _unb64(parts[2]), _unb64(parts[3]), _pbkdf2(rounds)
    except ValueError:
        pass
    raise ConfigError('desk.password_hash: expected "scrypt$<salt>$<hash>" or '
                      '"pbkdf2_sha256$<iterations>$<salt>$<hash>" (base64); '
                      'make one with python -m bot.desk')


def _scrypt(password: bytes, salt: bytes, size: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, dklen=size, **SCRYPT)


def _pbkdf2(rounds: int) -> Callable[[bytes, bytes, int], bytes]:
    return lambda password, salt, size: hashlib.pbkdf2_hmac("sha256", password, salt, rounds, size)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not; ValueError when neither."""
    text = text.replace("-", "+").replace("_", "/")
    raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    if not raw:
        raise ValueError("empty")
    return raw


# -- sessions --------------------------------------------------------------------

@dataclass
class Session:
    """One visitor: signed in or not, the CSRF token, what to say next."""

    sid: str
    expires: datetime
    signed_in: bool = False     # logged in with desk.token
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    notice: tuple[str, str] | None = None    # ("ok" | "error", sentence) for the next view


class Sessions:
    """Sessions in memory behind a cookie ``<sid>.<hmac>``, signed with a
    per-process key so a cookie cannot be forged or carried to another run."""

    def __init__(self, clock: Callable[[], datetime]):
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._held: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def new(self, *, signed_in: bool) -> Session:
        session = Session(secrets.token_urlsafe(18), self.clock() + SESSION_TTL, signed_in)
        with self._lock:
            self._held[session.sid] = session
            if len(self._held) > MAX_SESSIONS:
                # Anonymous visitors of the login form go first: a flood of them
                # must not log the editors out.
                sid = next((s.sid for s in self._held.values() if not s.signed_in), None)
                self._held.pop(sid) if sid else self._held.popitem(last=False)
        return session

    def find(self, request: Request) -> Session | None:
        """The request's live session, or None (no cookie, forged, expired)."""
        sid, _, mac = request.cookies.get(COOKIE, "").partition(".")
        if not sid or not hmac.compare_digest(mac, self._sign(sid)):
            return None
        with self._lock:
            session = self._held.get(sid)
            if session and session.expires <= self.clock():
                del self._held[sid]
                return None
        return session

    def end(self, session: Session) -> None:
        with self._lock:
            self._held.pop(session.sid, None)

    def cookie(self, session: Session | None, request: Request) -> str:
        """The Set-Cookie value that gives ``session`` (None: clears it);
        Secure when a proxy says the browser came over https."""
        secure = "; Secure" if (request.header("X-Forwarded-Proto") or "").lower() == "https" else ""
        if session is None:
            return f"{COOKIE}=; Path=/desk; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
        return (f"{COOKIE}={session.sid}.{self._sign(session.sid)}; Path=/desk; HttpOnly; "
                f"SameSite=Strict; Max-Age={int(SESSION_TTL.total_seconds())}{secure}")

    def mac(self, value: str) -> bytes:
        """HMAC-SHA256 of ``value`` under this process's key."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).digest()

    def _sign(self, sid: str) -> str:
        return base64.urlsafe_b64encode(self.mac(sid)).decode().rstrip("=")


class Throttle:
    """At most ``limit`` failed logins in any ``window``; beyond, a login is
    not even checked until the oldest failure leaves the window. Guessing a
    password is then a matter of years, not hours. Global rather than per
    address: behind a reverse proxy every visitor has the proxy's. Editors
    already in (a session, or a browser whose basic credentials passed) are
    never held up."""

    def __init__(self, clock: Callable[[], datetime], limit: int = LOGIN_FAILURES,
                 window: timedelta = LOGIN_WINDOW):
        self.clock, self.limit, self.window = clock, limit, window
        self._failures: deque[datetime] = deque()
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Seconds until a login may be tried (0: now)."""
        with self._lock:
            now = self.clock()
            while self._failures and self._failures[0] <= now - self.window:
                self._failures.popleft()
            if len(self._failures) < self.limit:
                return 0.0
            return max(1.0, (self._failures[0] + self.window - now).total_seconds())

    def failed(self) -> None:
        with self._lock:
            self._failures.append(self.clock())
            full = len(self._failures) == self.limit
        if full:
            log.warning("desk: %d failed logins within %d s; new logins wait", self.limit,
                        self.window.total_seconds())


# -- the routes ------------------------------------------------------------------

def desk_routes(data: DeskData, settings: DeskSettings,
                clock: Callable[[], datetime]) -> dict[str, Handler]:
    """The desk's routes for bot.listener.Listener. Raises ConfigError when
    ``desk.password_hash`` is malformed."""
    desk = Desk(data, settings, Sessions(clock), Throttle(clock))
    routes = {"GET /desk": desk.show, "POST /desk/<action>/<post>": desk.act}
    if settings.token is not None:
        routes |= {"GET /desk/login": desk.login_form, "POST /desk/login": desk.login,
                   "POST /desk/logout": desk.logout}
    return routes


class Desk:
    """The handlers behind desk_routes."""

    def __init__(self, data: DeskData, settings: DeskSettings, sessions: Sessions,
                 throttle: Throttle):
        if settings.password_hash:
            _parse_hash(settings.password_hash)   # a malformed hash stops the start, not a login
        self.data, self.settings, self.sessions, self.throttle = data, settings, sessions, throttle
        self._basic_ok: set[bytes] = set()      # digests of Authorization values that passed
        self._hashing = threading.Lock()

    # GET /desk
    def show(self, request: Request) -> Response:
        session, refusal = self._visitor(request, posting=False)
        if refusal:
            return refusal
        notice, session.notice = session.notice, None
        return self._page(200, session, notice=notice, headers=self._keep(request, session))

    # POST /desk/<action>/<post>
    def act(self, request: Request) -> Response:
        session, refusal = self._visitor(request, posting=True)
        if refusal:
            return refusal
        action, post = request.params["action"], request.params["post"]
        if action not in ACTIONS or not post.isdigit():
            return 404, "text/plain; charset=utf-8", b"no such action\n"
        text = _edited(request.form()) if action == "approve" else None
        if text is not None and (problem := self._text_problem(int(post), text)):
            # Shown again with the edit kept, so the editor's words are not lost.
            return self._page(422, session, notice=("error", f"Post {post}: {problem}"),
                              drafts={int(post): text})
        session.notice = self._do(action, int(post), text)
        return _see_other("/desk")

    def _text_problem(self, post: int, text: str) -> str | None:
        if not text.strip():
            return "the text is empty"
        return self.data.check_text(post, text)

    def _do(self, action: str, post: int, text: str | None) -> tuple[str, str]:
        try:
            said = self.data.act(action, post, text)
        except ValueError as exc:
            return "error", str(exc) or f"{action} failed"
        log.info("desk: %s post %d", action, post, extra={"post": post})
        return "ok", said

    # GET /desk/login
    def login_form(self, request: Request, *, status: int = 200, error: str | None = None) -> Response:
        session = self.sessions.find(request)
        if session and session.signed_in and error is None:
            return _see_other("/desk")
        session = session or self.sessions.new(signed_in=False)
        headers = {"Set-Cookie": self.sessions.cookie(session, request), **PAGE_HEADERS}
        return status, HTML, login_page(session.csrf, error).encode(), headers

    # POST /desk/login
    def login(self, request: Request) -> Response:
        session = self.sessions.find(request)
        form = request.form()
        if session is None or not _same(form.get("csrf", ""), session.csrf):
            return _forbidden()
        if wait := self.throttle.wait():
            return _too_many(wait)
        if not _same(form.get("token", ""), self.settings.token.reveal()):
            self.throttle.failed()
            log.warning("desk: a login with a wrong token")
            return self.login_form(request, status=403, error="That is not the desk's token.")
        self.sessions.end(session)   # a new session id on login: a planted cookie gains nothing
        fresh = self.sessions.new(signed_in=True)
        return _see_other("/desk", {"Set-Cookie": self.sessions.cookie(fresh, request)})

    # POST /desk/logout
    def logout(self, request: Request) -> Response:
        session = self.sessions.find(request)
        if session is None or not _same(request.form().get("csrf", ""), session.csrf):
            return _forbidden()
        self.sessions.end(session)
        return _see_other("/desk/login", {"Set-Cookie": self.sessions.cookie(None, request)})

    # -- who is asking

    def _visitor(self, request: Request, *, posting: bool) -> tuple[Session | None, Response | None]:
        """The request's session, or the answer that refuses it: the login
        page (token), a 401 (basic auth), a 403 (a POST without the session's
        CSRF token)."""
        session = self.sessions.find(request)
        held = self.throttle.wait()   # before this request's own try counts
        if not self._allowed(request, session, held):
            if self.settings.token is not None:
                return None, (_forbidden() if posting else _see_other("/desk/login"))
            held = held if request.header("Authorization") else 0
            return None, _too_many(held) if held else _ask_password()
        if posting and (session is None or not _same(request.form().get("csrf", ""), session.csrf)):
            return None, _forbidden()
        # Basic auth or none: the first view opens the session that holds the CSRF token.
        return session or self.sessions.new(signed_in=False), None

    def _allowed(self, request: Request, session: Session | None, held: float) -> bool:
        """Logged in with the token, or the right basic credentials with this
        request, or no protection configured (a loopback-only desk). While
        failed logins are ``held`` only a browser with a session (it passed
        before) is checked: any other guess, even one a cache would know,
        waits."""
        if self.settings.token is None and not self.settings.password_hash:
            return True
        if session is not None and session.signed_in:
            return True
        if held and session is None:
            return False   # not even checked: _visitor answers 429
        return bool(self.settings.password_hash) and self._basic(request)

    def _basic(self, request: Request) -> bool:
        value = request.header("Authorization") or ""
        digest = self.sessions.mac(value)
        if digest in self._basic_ok:
            return True   # scrypt once per browser, not once per request
        scheme, _, encoded = value.partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        if not (scheme.lower() == "basic" and sep and _same(user, self.settings.user)):
            self.throttle.failed()
            return False
        # One scrypt (16 MiB, tens of ms) at a time: a flood of guesses waits
        # in line instead of taking the machine's memory and both cores.
        with self._hashing:
            good = check_password(password, self.settings.password_hash)
        if good and len(self._basic_ok) < MAX_SESSIONS:
            self._basic_ok.add(digest)
        if not good:
            self.throttle.failed()
        return bool(good)

    def _keep(self, request: Request, session: Session) -> dict[str, str]:
        """Set the cookie when the request came without it (a session just opened)."""
        cookie = request.cookies.get(COOKIE, "").partition(".")[0]
        return {} if cookie == session.sid else {"Set-Cookie": self.sessions.cookie(session, request)}

    def _page(self, status: int, session: Session, *, notice=None, drafts=None,
              headers: dict[str, str] | None = None) -> Response:
        body = page(self.data.doc(), csrf=session.csrf, notice=notice, drafts=drafts or {},
                    can_logout=self.settings.token is not None)
        return status, HTML, body.encode(), {**PAGE_HEADERS, **(headers or {})}


def _edited(form: dict[str, str]) -> str | None:
    """The edited text of an approve form; None when left as composed."""
    text = form.get("text")
    if text is None:
        return None
    text = text.replace("\r\n", "\n")    # browsers send a textarea's lines with CRLF
    return None if text == form.get("original", "").replace("\r\n", "\n") else text


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _see_other(location: str, headers: dict[str, str] | None = None) -> Response:
    return 303, "text/plain; charset=utf-8", b"", {"Location": location, **(headers or {})}


def _forbidden() -> Response:
    return 403, "text/plain; charset=utf-8", b"forbidden: reload the desk and try again\n"


def _too_many(wait: float) -> Response:
    return (429, "text/plain; charset=utf-8", b"too many failed logins: try again shortly\n",
            {"Retry-After": str(int(wait + 0.999))})


def _ask_password() -> Response:
    return (401, "text/plain; charset=utf-8", b"log in to the desk\n",
            {"WWW-Authenticate": 'Basic realm="Herald desk", charset="UTF-8"'})


def main() -> None:
    """Ask for a password twice and print its ``desk.password_hash`` line."""
    import getpass
    first = getpass.getpass("desk password: ")
    if not first or first != getpass.getpass("again: "):
        raise SystemExit("the two passwords differ (or are empty)")
    print(f'desk:\n  password_hash: "{hash_password(first)}"')


if __name__ == "__main__":
    main()
