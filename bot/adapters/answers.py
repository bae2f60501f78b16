"""What a platform answered, and the one function that reads an adapter's error table.

Each HTTP adapter parses an answer once into an ``Answer`` and declares its
errors as a table: a tuple of ``Rule`` rows, first match wins, each naming the
Herald error it becomes. ``translate`` reads any table; the adapter writes no
branches of its own (httpx's ``map_exceptions`` is the model). The error it
returns carries the answer as its ``__cause__`` (``PlatformAnswer``), so a
caller can still tell, say, a 403 from a 401 without the library's exception.

Waits are clamped to ``MAX_WAIT``: a header from a hostile or broken proxy
("retry in 10 years") must not park an account for good.
"""
from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from bot.errors import PublishError, RateLimited, Suspended, Transient

MAX_WAIT = timedelta(days=32)      # longer than any platform window (X's month)
SUCCESS = range(200, 300)
REDIRECT = range(300, 400)
SERVER = range(500, 600)


@dataclass(frozen=True)
class Answer:
    """One platform answer, parsed once. ``words`` is the platform's own message,
    already masked; ``ok`` is a success the library can read (2xx, a JSON
    object, no error in it)."""

    status: int
    ok: bool
    words: str
    code: int | None = None          # Graph's error code
    subcode: int | None = None
    problem: str = ""                # X's problem type (a URL)
    reason: str = ""                 # X's reason field
    transient: bool = False          # Graph's is_transient flag
    is_json: bool = False            # the body was a JSON object
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


class PlatformAnswer(Exception):
    """The answer behind a Herald error, kept as its ``__cause__``."""

    def __init__(self, answer: Answer):
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer


Wait = Callable[[Answer, datetime], datetime]


@dataclass(frozen=True)
class Rule:
    """One row of an error table: the fields that must match, and the error.

    ``None`` matches anything. ``problem`` is a suffix (or tuple of suffixes)
    of the problem type, ``words`` a lower-case piece of the message. A
    RateLimited row says how long with ``wait``; a Suspended row what a person
    must do with ``action`` (``{account}`` is filled in); ``note`` labels the
    message."""

    error: type[PublishError]
    status: Container[int] | None = None
    code: Container[int] | None = None
    problem: str | tuple[str, ...] | None = None
    reason: Container[str] | None = None
    words: str | None = None
    is_json: bool | None = None
    transient: bool | None = None
    wait: Wait | None = None
    action: str = ""
    note: str = ""

    def matches(self, a: Answer) -> bool:
        return ((self.status is None or a.status in self.status)
                and (self.code is None or a.code in self.code)
                and (self.problem is None or bool(a.problem) and a.problem.endswith(self.problem))
                and (self.reason is None or a.reason in self.reason)
                and (self.words is None or self.words in a.words.lower())
                and (self.is_json is None or a.is_json == self.is_json)
                and (self.transient is None or a.transient == self.transient))


# Rows every table starts with: a success Herald cannot read, and a redirect
# (never followed: it could replay a POST elsewhere), leave the outcome unknown.
# (A Graph error inside a 2xx still goes by its code.)
UNREADABLE_SUCCESS = Rule(Transient, status=SUCCESS, code=(None,), note="outcome unknown")
REDIRECTED = Rule(Transient, status=REDIRECT, note="redirected; outcome unknown")
UNKNOWN = Rule(Transient, note="outcome unknown")


def translate(table: tuple[Rule, ...], answer: Answer, now: datetime,
              account: str = "") -> PublishError:
    """The Herald error the first matching row of ``table`` names for ``answer``
    (Transient when none does), with the answer as its cause."""
    rule = next((r for r in table if r.matches(answer)), UNKNOWN)
    message = f"{rule.note}: {answer.words}" if rule.note else answer.words
    if rule.error is RateLimited:
        wait = rule.wait or (lambda a, t: t + timedelta(minutes=15))
        error: PublishError = RateLimited(clamp(wait(answer, now), now), message,
                                          reason=rule.note or "rate limited")
    elif rule.error is Suspended:
        error = Suspended(message, rule.action.format(account=account))
    else:
        error = rule.error(message)
    error.__cause__ = PlatformAnswer(answer)
    return error


def raise_unless_ok(table: tuple[Rule, ...], answer: Answer, now: datetime,
                    account: str = "") -> None:
    """Raise the table's error for ``answer`` unless it is a readable success."""
    if not answer.ok:
        raise translate(table, answer, now, account)


def answer_of(error: BaseException) -> Answer | None:
    """The platform answer behind a Herald error, if one is."""
    cause = error.__cause__
    return cause.answer if isinstance(cause, PlatformAnswer) else None


def json_object(response) -> dict | None:
    """A response's body as a JSON object; None for anything else (HTML, a list, empty)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):    # RecursionError: JSON nested absurdly deep
        return None
    return body if isinstance(body, dict) else None


# --- ids

def require_id(value: Any, platform: str) -> str:
    """``value`` as a platform id; Transient when it is missing or not an id.

    A success without an id must never be taken for "sent": the post may or
    may not exist, and only a lookup can tell."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise Transient(f"{platform} answered without an id: outcome unknown")
    return str(value).strip()


# --- waits

def clamp(until: datetime, now: datetime) -> datetime:
    """``until`` within (now, now + MAX_WAIT]; a past time would retry at once, forever."""
    if until <= now:
        return now + timedelta(minutes=15)
    return min(until, now + MAX_WAIT)


def epoch(value: str | None, now: datetime) -> datetime | None:
    """An epoch-seconds header as a time, clamped; None when absent or not a number."""
    value = (value or "").strip()
    if not value.isdigit():
        return None
    seconds = min(int(value) - now.timestamp(), MAX_WAIT.total_seconds())
    return now + timedelta(seconds=seconds)


def retry_after(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When Retry-After (seconds, or an HTTP date) says to come back; None without one."""
    value = (headers.get("retry-after") or "").strip()
    if value.isdigit():
        return now + timedelta(seconds=min(int(value), MAX_WAIT.total_seconds()))
    when, sent = _http_date(value), _http_date(headers.get("date") or "")
    if when is None:
        return None
    # Measured against the server's own Date when it sent one: clock skew cancels out.
    seconds = (when - (sent or now)).total_seconds()
    return now + timedelta(seconds=max(0.0, min(seconds, MAX_WAIT.total_seconds())))


def next_month(now: datetime) -> datetime:
    """The first instant of the next UTC month."""
    now = now.astimezone(timezone.utc)
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=timezone.utc)


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

