"""The Facebook platform: Page posts through facebook-sdk's ``GraphAPI``.

facebook-sdk 3.1.0 (2018) refuses today's Graph versions, reads its host from a
module constant, sends no timeout, puts the token in query strings (which
urllib3 logs at DEBUG) and never looks at the HTTP status. So the GraphAPI gets
neither token nor version when it is built; ``GraphSession`` is a
``PlatformSession`` that sends its requests to ``graph_base_url`` within the
total deadline, with the Page token in the ``Authorization`` header, and raises
``ERRORS``' verdict on any answer that is not a readable success.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import facebook
import requests

from bot.adapters.answers import (MAX_WAIT, REDIRECTED, SERVER, UNREADABLE_SUCCESS, Answer, Rule,
                                  Wait, answer_of, json_object, raise_unless_ok, require_id,
                                  retry_after)
from bot.adapters.base import TIMEOUTS, Adapter, Option, credential
from bot.adapters.lookup import cannot_look_up, search_pages, squash
from bot.adapters.session import Limits, PlatformSession, call_library
from bot.errors import AlreadyPosted, AuthFailed, RateLimited, Rejected, Transient
from bot.models import Post, Receipt
from bot.secret import Secret, mask

log = logging.getLogger(__name__)

GRAPH_HOST = facebook.FACEBOOK_GRAPH_URL.rstrip("/")
POST_URL = "https://www.facebook.com/{}"
# 3: the app lacks the capability; 102: the session expired (a new token is needed).
AUTH_CODES = frozenset({3, 10, 102, 190} | set(range(200, 300)))
TOKEN_CODES = frozenset({102, 190})    # the token itself is bad, whatever was asked
RATE_CODES = frozenset({4, 17, 32, 613, 80001})
APP_LIMIT = 341
TRANSIENT_CODES = frozenset({1, 2})
BLOCKED_CODE = 368
DUPLICATE_CODE = 506
DEFAULT_WAIT = timedelta(minutes=15)   # rate limited, and no header said for how long
FULL_WAIT = timedelta(hours=1)         # a usage header at 100%: Graph's window rolls over an hour
BLOCK_WAIT = timedelta(hours=6)        # code 368, blocked as abusive: Meta gives no end time
TOKEN_PLACEHOLDER = "sent-in-header"
PAGE_SIZE = 100                        # feed entries per page, Graph's maximum


def usage_wait(default: timedelta) -> Wait:
    """A wait read from the answer's usage headers, else Retry-After, else ``default``."""
    def wait(answer: Answer, now: datetime) -> datetime:
        h = answer.headers
        minutes = _regain_minutes(h.get("x-business-use-case-usage"))
        if minutes:
            return now + min(timedelta(minutes=minutes), MAX_WAIT)
        if any(_saturated(h.get(name)) for name in ("x-app-usage", "x-page-usage")):
            return now + FULL_WAIT
        return retry_after(h, now) or now + default
    return wait


# Graph's answers off the happy path, first match wins (see bot.adapters.answers).
ERRORS = (
    UNREADABLE_SUCCESS,
    REDIRECTED,
    Rule(AuthFailed, code=AUTH_CODES),
    Rule(RateLimited, code=RATE_CODES, wait=usage_wait(DEFAULT_WAIT)),
    # 341 throttles the app's posting; Meta names no end, and its usage figures
    # roll over an hour, so an hour unless a usage header says otherwise: 15
    # minutes would mostly be refused again.
    Rule(RateLimited, code={APP_LIMIT}, wait=usage_wait(FULL_WAIT),
         note="application limit reached"),
    Rule(RateLimited, code={BLOCKED_CODE}, wait=lambda a, now: now + BLOCK_WAIT,
         note=f"blocked as abusive: posting paused for {BLOCK_WAIT.total_seconds() / 3600:g} "
              "hours"),
    Rule(AlreadyPosted, code={DUPLICATE_CODE}),
    Rule(Transient, code=TRANSIENT_CODES),
    Rule(Transient, transient=True),
    Rule(Transient, status=SERVER),
    Rule(RateLimited, status={429}, wait=usage_wait(DEFAULT_WAIT)),
    Rule(AuthFailed, status={401}),
    Rule(Transient, code={None}),          # not a Graph error body: a proxy's, say
    Rule(Rejected),
)


class GraphSession(PlatformSession):
    """Sends facebook-sdk's requests to ``base_url`` within the limits, token in a header."""

    def __init__(self, base_url: str, limits: Limits, token: Secret, check):
        super().__init__(GRAPH_HOST, base_url, limits, check)
        self._token = token

    def request(self, method, url, *args, **kwargs):
        for key in ("params", "data"):      # drop facebook-sdk's placeholder token
            if isinstance(kwargs.get(key), dict):
                kwargs[key] = {k: v for k, v in kwargs[key].items() if k != "access_token"}
        # A header, never the query string: urllib3 logs request lines at DEBUG.
        kwargs["headers"] = {**(kwargs.get("headers") or {}),
                             "Authorization": f"Bearer {self._token.reveal()}"}
        return super().request(method, url, *args, **kwargs)


class FacebookAdapter(Adapter):
    """Posts to one Facebook Page with a Page access token."""

    platform: ClassVar[str] = "facebook"
    max_length: ClassVar[int] = 63206
    url_length: ClassVar[int | None] = None
    counting: ClassVar[str] = "chars"
    default_template: ClassVar[str] = "{title}\n\n{lead}"   # the link travels beside the text
    credentials: ClassVar[Mapping[str, Option]] = {
        "page_access_token": credential(help="a Page access token with pages_manage_posts"),
    }
    options: ClassVar[Mapping[str, Option]] = {
        "page_id": Option(str, required=True, help="the Page's numeric id"),
        "graph_version": Option(str, "v24.0", help="the Graph API version, like v24.0"),
        "graph_base_url": Option(str, "https://graph.facebook.com"),
        "attach_image": Option(bool, False, help="a photo post with the article's image"),
        **TIMEOUTS,
    }

    # built on first use, never at import or construction
    _graph: facebook.GraphAPI | None = None

    @property
    def graph(self) -> facebook.GraphAPI:
        """The GraphAPI, built on first use, at the configured Graph version."""
        if self._graph is None:
            # facebook-sdk refuses writes without a token; it gets a placeholder
            # and GraphSession sends the real one in a header.
            self._graph = facebook.GraphAPI(access_token=TOKEN_PLACEHOLDER,
                                            session=self._build_session())
            # Set after construction: the constructor's check refuses two-digit majors.
            version = str(self.opts["graph_version"])
            self._graph.version = version if version.startswith("v") else f"v{version}"
        return self._graph

    @property
    def page_id(self) -> str:
        return str(self.opts["page_id"])

    def _build_session(self) -> GraphSession:
        gs = GraphSession(self.opts["graph_base_url"], Limits.of(self.opts),
                          self.credentials["page_access_token"], self._check)
        return gs.adopt(self.session, self.gate)   # keep the wiring's transports (retries, proxies)

    def _check(self, response: requests.Response) -> None:
        raise_unless_ok(ERRORS, graph_answer(response), self.clock(), self.account)

    def publish(self, post: Post) -> Receipt:
        """Post to the Page feed (message + link), or a photo post when ``attach_image``.

        A photo the Page refuses falls back to a feed post. Raises AuthFailed
        (3, 10, 102, 190, 200-299), RateLimited (4, 17, 32, 613, 80001; 341 and
        368 for longer), AlreadyPosted (506), Transient (1, 2, 5xx, timeouts, the
        deadline, connection errors, an answer that is not JSON or has no id:
        outcome unknown) or Rejected (100 and the rest, message kept)."""
        if self.opts["attach_image"] and post.image_url:
            receipt = self._photo_post(post)
            if receipt is not None:
                return receipt
        args = {"message": post.text, **({"link": post.link} if post.link else {})}
        return _receipt(self._call(self.graph.put_object, self.page_id, "feed", **args))

    def _photo_post(self, post: Post) -> Receipt | None:
        caption = f"{post.text}\n\n{post.link}" if post.link else post.text
        try:
            result = self._call(self.graph.put_object, self.page_id, "photos",
                                url=post.image_url, caption=caption)
        except Rejected as exc:
            # Only a refusal is safe to fall back from: after a timeout the photo may exist.
            log.warning("%s: posting without image %s: %s", self.account, post.image_url, exc)
            return None
        return _receipt(result)

    def verify(self) -> str:
        """Return "Page Name (id N)" for the token's Page. Raises like ``publish``."""
        me = self._call(self.graph.get_object, "me", fields="id,name")
        return f"{me.get('name')} (id {require_id(me.get('id'), 'Graph')})"

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Find ``post`` by link or text among the Page's feed entries since ``since``,
        following ``paging.next``; None only when all of them were seen.

        Raises Rejected when more than LOOKUP_LIMIT entries were posted since
        then, or when the token lacks read permission (not AuthFailed: posting
        may still work); an invalid or expired token stays AuthFailed; Transient
        for a page without ``data``. Otherwise raises like ``publish``."""
        first = {"fields": "id,message,link,created_time",
                 "since": str(int(since.timestamp())), "limit": str(PAGE_SIZE)}

        def page(args: dict | None) -> tuple[list, dict | None]:
            feed = self._feed_page(args or first)
            return feed["data"], _next_args(feed)
        found = search_pages(page, lambda entry: _matches(entry, post), since, "entries")
        return None if found is None else _receipt(found)

    def _feed_page(self, args: dict) -> dict:
        """One page of the Page's feed, its ``data`` the dict entries."""
        try:
            feed = self._call(self.graph.get_connections, self.page_id, "feed", **args)
        except AuthFailed as exc:
            answer = answer_of(exc)
            if answer is None or answer.code in TOKEN_CODES:
                raise
            raise cannot_look_up(exc) from exc   # may post, may not read (pages_read_engagement)
        if not isinstance(feed.get("data"), list):
            raise Transient("Graph answered a feed page without data: cannot tell what it holds")
        return {**feed, "data": [e for e in feed["data"] if isinstance(e, dict)]}

    # --- calls

    def _call(self, method, *args, **kwargs) -> dict:
        """Call a GraphAPI method; whatever it raises becomes one of Herald's errors."""
        result = call_library("Graph", (facebook.GraphAPIError,), method, *args, **kwargs)
        if not isinstance(result, dict):
            raise Transient(f"unexpected answer from Graph: {type(result).__name__}")
        return result


def graph_answer(response: requests.Response) -> Answer:
    """What a Graph answer says: its error code, subcode, transient flag and words."""
    body = json_object(response)
    error = _error_body(body)
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    status = response.status_code
    return Answer(status=status, ok=200 <= status < 300 and body is not None and not body.get(
                      "error"),
                  words=_words(status, body, code, subcode, error.get("message")),
                  code=code, subcode=subcode, transient=error.get("is_transient") is True,
                  is_json=body is not None, headers=response.headers)


def _words(status: int, body: dict | None, code: int | None, subcode: int | None,
           message: Any) -> str:
    if body is None:
        return f"Graph gave an answer that is not JSON (HTTP {status})"
    if code is None:
        return f"Graph answered HTTP {status} without an error code"
    text = message if isinstance(message, str) else ""
    return mask(f"Graph error {code}{f'/{subcode}' if subcode else ''}: {text}")


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _receipt(result: dict) -> Receipt:
    # A photo post answers {"id": photo, "post_id": page_post}; the post is what we want.
    post_id = require_id(result.get("post_id") or result.get("id"), "Graph")
    return Receipt(platform_id=post_id, url=POST_URL.format(post_id))


def _error_body(result: Any) -> dict:
    error = result.get("error") if isinstance(result, dict) else None
    return error if isinstance(error, dict) else {}


def _load(header: str | None) -> Any:
    try:
        return json.loads(header) if header else None
    except ValueError:
        return None


def _regain_minutes(header: str | None) -> int:
    """The largest estimated_time_to_regain_access (minutes) in X-Business-Use-Case-Usage."""
    body = _load(header)
    entries = [e for v in body.values() if isinstance(v, list) for e in v] \
        if isinstance(body, dict) else []
    minutes = [e.get("estimated_time_to_regain_access") for e in entries if isinstance(e, dict)]
    # Capped: a header may say anything, and timedelta() overflows on huge numbers.
    cap = MAX_WAIT.total_seconds() / 60
    return max((int(min(m, cap)) for m in minutes if isinstance(m, (int, float))
                and not isinstance(m, bool) and math.isfinite(m)), default=0)


def _saturated(header: str | None) -> bool:
    """True when an X-App-Usage / X-Page-Usage header has a figure at 100%."""
    body = _load(header)
    if not isinstance(body, dict):
        return False
    return any(isinstance(v, (int, float)) and v >= 100 for v in body.values())


def _next_args(feed: dict) -> dict | None:
    """The query of ``paging.next`` without its access_token (GraphSession sends
    the token in a header), or None on the last page. Only the query is kept:
    the host in ``next`` is Graph's, not the configured base URL."""
    paging = feed.get("paging")
    url = paging.get("next") if isinstance(paging, dict) else None
    if not url:
        return None
    return {k: v for k, v in parse_qsl(urlsplit(str(url)).query) if k != "access_token"}


def _matches(entry: dict, post: Post) -> bool:
    """A feed entry is ``post`` if it has the post's link, or its text (photo captions too)."""
    if post.link and entry.get("link") == post.link:
        return True
    message = squash(str(entry.get("message") or ""))
    texts = {squash(post.text), squash(f"{post.text} {post.link}")}
    return bool(post.text) and message in texts
