"""What the fake X and Graph APIs share: accepted credentials, scripted answers, replies."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

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


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    host: str


class Api:
    """What both fake APIs share: scripted faults first, then the real route."""

    def __init__(self, fake, req: Request):
        self.fake, self.req = fake, req

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
