"""The Mastodon platform: statuses through Mastodon.py on any instance.

Mastodon.py waits up to 300 s per request, sleeps inside a call on a 429, keeps
the access token in a plain attribute, asks the instance for its version unless
told one, and wraps whatever its session raises in ``MastodonNetworkError``. So
the client is built with no token, ``ratelimit_method="throw"`` and a fixed
version (no request at construction; v2 media), and every request goes through
``MastodonSession``: a ``PlatformSession`` that sends the token in the header,
within the total deadline, and raises ``ERRORS``' verdict on any answer that is
not a readable success before the library parses it; ``_call`` unwraps it again.

A status carries an ``Idempotency-Key`` made from the post, so a retry after a
timeout gets the status the first try made (Mastodon remembers a key for about
an hour; after that ``find_recent`` is what keeps a retry from posting twice).
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any, ClassVar, Union
from urllib.parse import parse_qsl, urlsplit

import requests
from mastodon import Mastodon, MastodonError, MastodonNetworkError

from bot.adapters.answers import (REDIRECTED, SERVER, SUCCESS, UNREADABLE_SUCCESS, Answer, Rule,
                                  answer_of, epoch, raise_unless_ok, require_id, retry_after)
from bot.adapters.base import LOOKUP_LIMIT, TIMEOUTS, Adapter, credential, Option
from bot.adapters.lookup import cannot_look_up, search_pages, squash, without_links
from bot.adapters.session import Limits, PlatformSession, call_library
from bot.errors import (AuthFailed, HeraldError, PublishError, RateLimited, Rejected, Suspended,
                        Transient)
from bot.models import Post, Receipt
from bot.secret import Secret, mask

log = logging.getLogger(__name__)

# Mastodon.py picks endpoints by the version it believes; 4.0 has /api/v2/media and
# /api/v2/instance. Given a version, it never asks the instance for one.
MASTODON_VERSION = "4.0.0"
USER_AGENT = "Herald (feed-to-social poster; Mastodon.py)"
FALLBACK_LIMITS = (500, 23)            # Mastodon's defaults, when the instance will not say
FALLBACK_RETRY = timedelta(minutes=10)  # ask the instance again after a failed ask
DEFAULT_WAIT = timedelta(minutes=5)    # Mastodon's rate-limit window, when no header said
PAGE_SIZE = 40                         # statuses per page, Mastodon's maximum
ALT_MAX = 1500                         # characters of alt text Mastodon accepts
POLL_SECONDS = 1.0                     # between polls of an image still processing
IMAGE_TYPES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF8", "image/gif"), (b"RIFF", "image/webp"))
ACTION = ("sign in on the instance and see why the account may not post (disabled, "
          "unconfirmed, pending approval), then run `run_bot.py resume {account}`")
# Mastodon's created_at: an ISO 8601 date and time ("2026-11-27T11:00:00.000Z").
CREATED_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
VISIBILITIES = ("public", "unlisted", "private", "direct")


def reset_wait(answer: Answer, now: datetime) -> datetime:
    """When a 429 lifts: X-RateLimit-Reset (an ISO 8601 time on Mastodon, epoch
    seconds on some other servers), else Retry-After, else five minutes."""
    value = (answer.headers.get("x-ratelimit-reset") or "").strip()
    return epoch(value, now) or _iso(value) or retry_after(answer.headers, now) or now + DEFAULT_WAIT


# Mastodon's answers off the happy path, first match wins (see bot.adapters.answers).
ERRORS = (
    UNREADABLE_SUCCESS,
    REDIRECTED,
    Rule(AuthFailed, status={401}),
    Rule(RateLimited, status={429}, wait=reset_wait),
    Rule(Transient, status=SERVER),
    Rule(Transient, is_json=False),        # a proxy's page, not Mastodon's answer
    Rule(AuthFailed, status={403}, words="authorized scopes", note="the token lacks a scope"),
    Rule(Suspended, status={403}, action=ACTION, note="the account may not post"),
    Rule(Transient, status={422}, words="finished processing"),   # media not ready yet
    Rule(Rejected),
)


class MastodonSession(PlatformSession):
    """Sends Mastodon.py's requests within the limits, the token in a header."""

    def __init__(self, base_url: str, limits: Limits, token: Secret, check):
        super().__init__(base_url, base_url, limits, check)
        self._token = token

    def request(self, method, url, *args, **kwargs):
        kwargs["headers"] = {**(kwargs.get("headers") or {}),
                             "Authorization": f"Bearer {self._token.reveal()}"}
        response = super().request(method, url, *args, **kwargs)
        # Mastodon.py parses this header on every answer and raises on one it cannot
        # read, even on a success (a status made, then "an error"). Herald reads
        # waits from 429s only, in ERRORS, before this point.
        response.headers.pop("X-RateLimit-Reset", None)
        return response


class MastodonAdapter(Adapter):
    """Posts statuses to one Mastodon account with an access token."""

    platform: ClassVar[str] = "mastodon"
    max_length: ClassVar[int] = FALLBACK_LIMITS[0]
    url_length: ClassVar[int | None] = FALLBACK_LIMITS[1]
    counting: ClassVar[str] = "chars"
    credentials: ClassVar[Mapping[str, Option]] = {
        "access_token": credential(help="the account's access token (Preferences > "
                                   "Development; scopes write:statuses write:media "
                                   "read:accounts read:statuses)"),
    }
    options: ClassVar[Mapping[str, Option]] = {
        "api_base_url": Option(str, required=True, help="the instance, https://mastodon.social"),
        "visibility": Option(str, "public", choices=VISIBILITIES, help="who sees the posts"),
        "language": Option(str, help="ISO 639 code of the posts (else the article's)"),
        "spoiler_text": Option(str, help="a content warning over every post"),
        "attach_image": Option(bool, False, help="upload the article's image, its title as "
                               "alt text"),
        **TIMEOUTS,
    }

    # built on first use, never at import or construction
    _client: Mastodon | None = None
    _account_id: str | None = None
    _limits: tuple[int, int] | None = None
    _limits_until: datetime | None = None      # a fallback is asked again after this
    _sleep = staticmethod(time.sleep)          # tests set these on the instance
    _monotonic = staticmethod(time.monotonic)

    @property
    def client(self) -> Mastodon:
        """The Mastodon.py client, built on first use (no request is made)."""
        if self._client is None:
            self._client = Mastodon(
                api_base_url=self.opts["api_base_url"], session=self._build_session(),
                ratelimit_method="throw", request_timeout=float(self.opts["deadline"]),
                mastodon_version=MASTODON_VERSION, version_check_mode="created",
                user_agent=USER_AGENT)
        return self._client

    def _build_session(self) -> MastodonSession:
        session = MastodonSession(self.opts["api_base_url"], Limits.of(self.opts),
                                  self.credentials["access_token"], self._check)
        session.headers["User-Agent"] = USER_AGENT   # the lookups and /api/v2/instance too
        return session.adopt(self.session, self.gate)   # keep the wiring's transports (retries, proxies)

    def _check(self, response: requests.Response) -> None:
        raise_unless_ok(ERRORS, mastodon_answer(response), self.clock(), self.account)

    # --- the contract

    def publish(self, post: Post) -> Receipt:
        """Post ``post.text`` (with its image and alt text when ``attach_image``) with
        the account's visibility, language and content warning; return its receipt.

        The Idempotency-Key is the same on every try of ``post``: a retry after a
        timeout answers the status the first try made. Raises AuthFailed (401, a
        403 about the token's scopes), Suspended (other 403: the account may not
        post), RateLimited (429, until X-RateLimit-Reset), Transient (5xx, timeout,
        deadline, connection error, an answer that is not JSON or has no id:
        outcome unknown) or Rejected (422 and other 4xx, the instance's words kept)."""
        media_ids = self._media_ids(post)
        status = self._call("status_post", post.text, media_ids=media_ids,
                            visibility=self.opts["visibility"],
                            spoiler_text=self.opts.get("spoiler_text") or None,
                            language=self._language(post),
                            idempotency_key=idempotency_key(post))
        return _receipt(status)

    def verify(self) -> str:
        """Return "@acct (id N)" for the token's account. Raises like ``publish``."""
        me = self._call("account_verify_credentials")
        me = me if isinstance(me, dict) else {}
        self._account_id = require_id(me.get("id"), "Mastodon")
        acct = me.get("acct") or me.get("username")
        if not isinstance(acct, str) or not acct.strip():
            raise Transient("Mastodon answered verify_credentials without an account name")
        return f"@{acct.strip()} (id {self._account_id})"

    def length(self) -> tuple[int, int | None]:
        """The instance's status limit (less the content warning, which counts
        too) and what a URL counts, from /api/v2/instance; 500/23 while the
        instance will not say (asked again after FALLBACK_RETRY)."""
        now = self.clock()
        if self._limits is None or (self._limits_until is not None and now >= self._limits_until):
            self._limits, self._limits_until = self._instance_limits(now)
        chars, per_url = self._limits
        return max(1, chars - len(self.opts.get("spoiler_text") or "")), per_url

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Find ``post`` by link or text among the account's statuses since ``since``,
        paging back through them (newest first); None only when all were seen.

        Raises Rejected when more than LOOKUP_LIMIT statuses were posted since
        then, or when the token may not read statuses (posting may still work);
        Transient for a page Mastodon did not send whole, or a status on it
        without a readable created_at; otherwise like ``publish``."""
        try:
            account_id = self._account_id or self._verified_id()
            found = search_pages(lambda cursor: self._page(account_id, since, cursor),
                                 lambda status: _matches(status, post), since, "statuses")
        except AuthFailed as exc:
            answer = answer_of(exc)
            if answer is None or answer.status != 403:
                raise
            raise cannot_look_up(exc) from exc
        return None if found is None else _receipt(found)

    # --- lookups

    def _verified_id(self) -> str:
        self.verify()
        return self._account_id

    def _page(self, account_id: str, since: datetime, cursor: Cursor) -> tuple[list, Cursor]:
        """One page for ``search_pages``: the statuses since ``since`` on it (no more
        than LOOKUP_LIMIT in all) and where the next page starts (None: none does).

        Read as JSON from the session, not through Mastodon.py: it reads a
        created_at of "0" or "May" as a date (epoch, dateutil, today's year),
        and a guessed date before ``since`` would end the search: "absent"."""
        if isinstance(cursor, Transient):
            raise cursor                # the page before may have held the post: searched first
        max_id, seen = cursor or (None, 0)
        url = f"{self.opts['api_base_url'].rstrip('/')}/api/v1/accounts/{account_id}/statuses"
        response = self._call("session.get", url, params={
            "limit": PAGE_SIZE, "exclude_reblogs": "true", "max_id": max_id})
        statuses = _statuses(_json(response))
        recent, after = _recent(statuses, since)
        room = LOOKUP_LIMIT - seen
        if len(recent) > room:
            # search_pages counts whole pages; cut this one so that a status past
            # LOOKUP_LIMIT is Rejected, as on any other platform, never matched.
            return recent[:room], (_get(recent[room - 1], "id"), LOOKUP_LIMIT)
        if after is True:
            return recent, _next_page(response, statuses, seen + len(recent))
        return recent, after

    def _instance_limits(self, now: datetime) -> tuple[tuple[int, int], datetime | None]:
        try:
            statuses = _field(self._instance(), "configuration", "statuses")
            chars = _count(statuses.get("max_characters"), 1, 1_000_000)
            per_url = _count(statuses.get("characters_reserved_per_url"), 0, chars)
        except (PublishError, AttributeError, ValueError) as exc:
            log.info("%s: instance limits unknown, counting %d characters, URLs as %d: %s",
                     self.account, *FALLBACK_LIMITS, mask(str(exc)))
            return FALLBACK_LIMITS, now + FALLBACK_RETRY
        return (chars, per_url), None

    def _instance(self) -> Any:
        """GET /api/v2/instance as JSON, straight from the session: Mastodon.py's
        typed reading would turn a ``true`` limit into 1."""
        url = self.opts["api_base_url"].rstrip("/") + "/api/v2/instance"
        return self._call("session.get", url).json()

    # --- images

    def _media_ids(self, post: Post) -> list[str] | None:
        # Mastodon draws a card from the link when the image cannot go.
        media = self.with_image(post, lambda data: self._upload(data, alt_text(post)))
        return None if media is None else [media]

    def _upload(self, data: bytes, alt: str | None) -> str:
        """Upload one image with its alt text; return its id once Mastodon has
        processed it (a 202 is polled at /api/v1/media/:id within the deadline)."""
        mime = next((kind for magic, kind in IMAGE_TYPES if data.startswith(magic)), None)
        if mime is None:
            raise Rejected("not an image Mastodon takes (PNG, JPEG, GIF, WebP)")
        start = self._monotonic()
        media = self._call("media_post", data, mime_type=mime, description=alt,
                           file_name="image." + mime.split("/")[1])
        media_id = require_id(_get(media, "id"), "Mastodon")
        while not _get(media, "url"):
            if self._monotonic() - start + POLL_SECONDS > float(self.opts["deadline"]):
                raise Transient(f"image still processing after {self.opts['deadline']} s")
            self._sleep(POLL_SECONDS)
            media = self._call("media", media_id)
        return media_id

    # --- calls

    def _language(self, post: Post) -> str | None:
        return self.opts.get("language") or getattr(post, "language", None) or None

    def _call(self, name: str, *args, **kwargs):
        """Call a Mastodon.py method; whatever it raises becomes one of Herald's errors."""
        def call():
            try:
                target = self.client
                for part in name.split("."):
                    target = getattr(target, part)
                return target(*args, **kwargs)
            except MastodonNetworkError as exc:
                # Mastodon.py wraps whatever the session raised; ours is the verdict.
                if isinstance(exc.__context__, HeraldError):
                    raise exc.__context__      # keeps its cause, the platform's answer
                raise
        return call_library("Mastodon", (MastodonError,), call)


# --- answers

def mastodon_answer(response: requests.Response) -> Answer:
    """What a Mastodon answer says: its status and the instance's own words."""
    body = _json(response)
    status = response.status_code
    return Answer(status=status, ok=status in SUCCESS and isinstance(body, (dict, list)),
                  words=mask(_message(body, response)), is_json=isinstance(body, (dict, list)),
                  headers=response.headers)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):    # RecursionError: JSON nested absurdly deep
        return None


def _message(body: Any, response: requests.Response) -> str:
    head = f"Mastodon answered {response.status_code}"
    if not isinstance(body, (dict, list)):
        return f"{head} {response.reason or ''} (not JSON)".strip()
    body = body if isinstance(body, dict) else {}
    words = [w for w in (body.get("error"), body.get("error_description")) if isinstance(w, str)]
    return f"{head}: {'; '.join(words)}" if words else head


# --- posts

def idempotency_key(post: Post) -> str:
    """The Idempotency-Key for every try of ``post``.

    Made from the outbox key, the account and the article's link: a key of the
    row id alone would, after a database reset, have Mastodon answer a new
    article with the status an old one made."""
    digest = hashlib.sha256("\n".join((post.key, post.account, post.link)).encode())
    return f"herald-{digest.hexdigest()[:40]}"


def alt_text(post: Post) -> str | None:
    """The image's alt text: the article's title, within Mastodon's limit."""
    title = " ".join((post.title or "").split())
    return title[:ALT_MAX] or None


def _receipt(status: Any) -> Receipt:
    status_id = require_id(_get(status, "id"), "Mastodon")
    url = next((u for u in (_get(status, "url"), _get(status, "uri"))
                if isinstance(u, str) and u.startswith("http")), None)
    return Receipt(platform_id=status_id, url=url)


# Where the next page of statuses starts: Mastodon's max_id and the statuses seen
# so far; or the Transient to raise if the search needs that page; None: no page.
Cursor = Union[tuple[Any, int], Transient, None]


def _recent(statuses: list[dict], since: datetime) -> tuple[list[dict], Cursor | bool]:
    """The statuses (newest first) made since ``since``, and what follows them:
    True when the page ran out (the next page may hold more), None when an older
    status ends the search, or the Transient of a status without a readable
    created_at: deferred while the statuses before it may hold the post, at once
    when there are none (an empty page would say "absent")."""
    for n, status in enumerate(statuses):
        try:
            if _created(status) < since:
                return statuses[:n], None
        except Transient as exc:
            if n == 0:
                raise
            return statuses[:n], exc
    return statuses, True


def _next_page(response: requests.Response, statuses: list, seen: int) -> Cursor:
    """After a page read through: none after a short one (Mastodon's last), else
    the max_id of its "next" link; a full page without one leaves it unknown."""
    if len(statuses) < PAGE_SIZE:
        return None
    link = (response.links.get("next") or {}).get("url") or ""
    max_id = dict(parse_qsl(urlsplit(link).query)).get("max_id")
    if not max_id:
        return Transient("Mastodon sent a full page of statuses without a next link: "
                         "cannot tell what follows")
    return max_id, seen


def _statuses(page: Any) -> list[dict]:
    if not isinstance(page, list) or not all(isinstance(s, dict) for s in page):
        raise Transient("Mastodon answered a page of statuses that is not a list of them")
    return page


def _created(status: dict) -> datetime:
    """When ``status`` was made (aware), from Mastodon's ISO 8601 date and time;
    Transient when it does not say so (a guess could end a search too early)."""
    value = status.get("created_at")
    when = _iso(value) if isinstance(value, str) and CREATED_RE.match(value) else None
    if when is None:
        raise Transient("Mastodon listed a status without a readable created_at")
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _matches(status: dict, post: Post) -> bool:
    """A status is ``post`` if it links the post's link; a status that links
    something else is another post, however alike the text ("Live: ..." every
    day); only a status with no link at all is matched by its text."""
    if status.get("reblog"):
        return False
    content = _Content.read(status.get("content"))
    card = status.get("card") if isinstance(status.get("card"), dict) else {}
    links = content.links | ({card["url"]} if card.get("url") else set())
    if post.link and links:
        return post.link in links
    return bool(post.text) and squash(content.text) == without_links(post.text)


class _Content(HTMLParser):
    """A status's HTML: the links it carries, and its text without them
    (hashtags and mentions stay: they were in the text Herald sent)."""

    def __init__(self):
        super().__init__()
        self.links: set[str] = set()
        self.parts: list[str] = []
        self._in_link = 0

    @classmethod
    def read(cls, content: Any) -> _Content:
        parser = cls()
        if isinstance(content, str):
            parser.feed(content)
            parser.close()
        return parser

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("br", "p"):
            self.parts.append(" ")
        if tag == "a":
            is_link = not re.search(r"\b(mention|hashtag)\b", a.get("class") or "")
            if is_link and a.get("href"):
                self.links.add(a["href"])
            self._in_link += is_link

    def handle_endtag(self, tag):
        if tag == "a" and self._in_link:
            self._in_link -= 1

    def handle_data(self, data):
        if not self._in_link:
            self.parts.append(data)


# --- small readers

def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _field(obj: Any, *keys: str) -> dict:
    for key in keys:
        obj = _get(obj, key)
    if not isinstance(obj, dict):
        raise ValueError(f"no {'.'.join(keys)} in the instance's answer")
    return obj


def _count(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"not a count between {low} and {high}: {value!r}"[:120])
    return value


def _iso(value: str) -> datetime | None:
    """An ISO 8601 time as an aware datetime; None when it is not one."""
    try:
        when = datetime.fromisoformat(value.strip())
    except (ValueError, TypeError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
