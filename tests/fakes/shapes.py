"""What the fake platform APIs share: accepted credentials, scripted answers, replies,
and ``FakePlatform`` / ``Contract``, what a platform fake module declares (see server.py)."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from bot.errors import AlreadyPosted, AuthFailed, Rejected, Transient

# The credentials the fake accepts unless told otherwise.
X_CONSUMER_KEY = "fake-consumer-key-0001"
X_CONSUMER_SECRET = "fake-consumer-secret-0001"
X_ACCESS_TOKEN = "fake-access-token-0001"
X_ACCESS_SECRET = "fake-access-secret-0001"
X_USER_ID = "1500000000000000001"
X_USERNAME = "herald_test"
PAGE_ID = "100000000000001"
PAGE_TOKEN = "fake-page-token-EAAB0001"
PAGE_NAME = "Herald Test Page"


@dataclass
class XUser:
    user_id: str
    username: str
    token_secret: str


@dataclass
class Page:
    page_id: str
    name: str
    token: str


@dataclass
class Chaos:
    """Random faults for standalone runs; probabilities per API request."""

    fail_5xx: float = 0.0
    rate_limit: float = 0.0
    slow_accept: float = 0.0
    slow_seconds: float = 3.0
    reset_seconds: int = 60
    seed: int | None = None


@dataclass
class Answer:
    """One scripted answer: a fault ``kind`` for the next request under ``path``."""

    kind: str
    path: str | None = None
    params: dict = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: object = None              # dict/list as JSON, str as text/html
    headers: dict = field(default_factory=dict)
    delay: float = 0.0               # seconds before the answer is sent
    fault: str | None = None         # the scripted or chaos fault that shaped it
    raw: bytes | None = None         # sent as is instead of ``body`` (connection closed after)
    content_type: str | None = None  # with ``raw``: None sends no Content-Type
    trickle: float = 0.0             # seconds between the body's bytes
    cut: int | None = None           # send only this many body bytes, then close
    length: bool = True              # send Content-Length (of the whole body)

    def encoded(self) -> tuple[bytes, str | None]:
        """The body's bytes and content type."""
        if self.raw is not None:
            return self.raw, self.content_type
        if isinstance(self.body, str):
            return self.body.encode(), "text/html; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json; charset=UTF-8"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    host: str


class Api:
    """What every fake API shares: scripted faults first, then the real route.

    A subclass implements ``authenticate() -> Reply | None`` (None: let it in),
    ``route() -> Reply`` (the real answer) and ``fault(answer) -> Reply`` (a
    scripted fault kind in the platform's own error shape). ``self.state`` is
    what its FakePlatform's ``state()`` built for this server (its accounts)."""

    def __init__(self, fake, req: Request, state=None):
        self.fake, self.req, self.state = fake, req, state

    def answer(self) -> Reply:
        denied = self.authenticate()
        if denied:
            return denied
        fault = self.fake.next_fault(self.req.path)
        if fault is None:
            return self.route()
        reply = self._faulty(fault)
        reply.fault = fault.kind
        return reply

    def _faulty(self, fault: Answer) -> Reply:
        if fault.kind in RAW_KINDS:
            return raw_reply(fault.kind, fault.params)
        if fault.kind == "trickle":       # accepted, but the answer comes a byte at a time
            reply = self.route()
            reply.trickle = fault.params.get("seconds", 0.2)
            return reply
        if fault.kind == "hang":
            self.fake.hang(fault.params.get("seconds", self.fake.hang_seconds))
            return Reply(504, "<html>gateway timeout</html>")
        if fault.kind == "slow-accept":
            reply = self.route()
            reply.delay = fault.params.get("seconds", self.fake.hang_seconds)
            return reply
        if fault.kind == "502":
            return Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        return self.fault(fault)

    def form(self) -> dict:
        """Query and urlencoded-body parameters, as one dict."""
        params = dict(self.req.query)
        if "x-www-form-urlencoded" in self.req.headers.get("content-type", ""):
            params.update(parse_qsl(self.req.body.decode(), keep_blank_values=True))
        return params


# Answers in shapes no platform means to send, the same for X and Graph.
RAW_KINDS = ("raw", "401-list", "429-retry-after", "200-html", "empty", "cut")
CUT_BODY = {"data": {"id": "1860000000000000999", "text": "cut short"}, "id": "1_999"}


def raw_reply(kind: str, p: dict) -> Reply:
    """A scripted odd answer. Kinds: "401-list" (a JSON list body), "429-retry-after"
    (only Retry-After: ``after=`` seconds or an HTTP date), "200-html", "empty"
    (``status=``), "cut" (a success body cut at ``at=`` bytes, Content-Length
    whole), "raw" (``status=``, ``body=`` bytes/str/JSON, ``headers=``,
    ``content_type=``, ``cut=``, ``length=``, ``trickle=``)."""
    status = p.get("status", 200)
    if kind == "401-list":
        return Reply(401, [{"message": "Could not authenticate you", "code": 32}])
    if kind == "429-retry-after":
        after = str(p.get("after", 120))
        return Reply(429, {"title": "Too Many Requests"}, {"Retry-After": after})
    if kind == "200-html":
        return Reply(status, "<html><body><h1>Welcome</h1></body></html>")
    if kind == "empty":
        return Reply(status, raw=b"", content_type="application/json")
    if kind == "cut":
        data = json.dumps(CUT_BODY).encode()
        return Reply(status, raw=data, content_type="application/json", cut=p.get("at", 20))
    return Reply(status, headers=dict(p.get("headers") or {}), raw=_bytes(p.get("body", b"")),
                 content_type=p.get("content_type", "application/json"), cut=p.get("cut"),
                 length=p.get("length", True), trickle=p.get("trickle", 0.0))


def _bytes(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


# --- what a platform fake declares (read by server.py and the contract suite)

# The contract suite's clock, and the reset it scripts a 429 with (``reset=`` epoch
# seconds; ``regain=`` minutes for platforms that count in minutes).
CONTRACT_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
RESET_EPOCH = int(CONTRACT_NOW.timestamp()) + 40 * 60
REGAIN_MINUTES = 7

# Fault kinds every fake answers in its platform's shape, and the error each must become.
COMMON_FAULTS: Mapping[str, type] = {
    "401": AuthFailed, "500": Transient, "503": Transient, "502": Transient, "400": Rejected,
}
# Kinds a platform may have too (X and Graph do): add them to Contract.faults.
DUPLICATE_AND_PERMISSIONS: Mapping[str, type] = {
    "403-duplicate": AlreadyPosted, "403-permissions": AuthFailed,
}


@dataclass(frozen=True)
class Contract:
    """How the adapter contract suite builds this platform's adapter against the fake,
    and what it expects of it."""

    credentials: Mapping[str, str]              # what the fake accepts
    wrong: Mapping[str, str]                    # credentials the fake refuses (401)
    options: Callable[[str], dict]              # fake base URL -> account options
    until: datetime                             # RateLimited.until after script("429", reset=RESET_EPOCH, regain=REGAIN_MINUTES)
    image_path: str                             # a path piece of the image upload request
    image_refusal: str                          # the fault kind that refuses the image there
    has_image: Callable[[dict], bool]           # recorded post -> it carries the image
    verify_names: str                           # a piece of what verify() returns
    lookup_paths: tuple[str, ...]               # path suffixes of find_recent's page GETs
    page_size: int                              # posts per find_recent page (the fake's cap)
    faults: Mapping[str, type] = field(default_factory=lambda: dict(COMMON_FAULTS))


@dataclass(frozen=True)
class FakePlatform:
    """One platform the fake server speaks. A module ``tests/fakes/<anything>_api.py``
    exports one as ``FAKE``; server.py finds it by that name pattern."""

    name: str                                   # the adapter's ``platform`` (registry key)
    api: type                                   # an Api subclass
    claims: Callable[[Request], bool]           # this request is for this platform
    seed: Callable[..., None]                   # (fake, state, count, at, text): old posts
    state: Callable[[], object] = lambda: None  # per-server accounts/state, as Api.state
    posting: tuple[str, ...] = ()               # path suffixes where chaos may accept slowly
    contract: Contract | None = None            # None: not in the contract suite
    account: Callable[[str], dict] | None = None   # e2e: fake URL -> account mapping (YAML)
    env: Mapping[str, str] = field(default_factory=dict)   # e2e: the ${VARS} it uses
    flags: Callable | None = None               # (argparse parser) -> None: standalone flags
    configure: Callable | None = None           # (state, parsed args) -> None
