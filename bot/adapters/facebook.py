"""The Facebook platform: Page posts through facebook-sdk's ``GraphAPI``.

facebook-sdk 3.1.0 (2018) refuses today's Graph versions, reads its host from a
module constant, sends no timeout and puts the token in query strings, which
urllib3 logs at DEBUG. So the GraphAPI gets neither token nor version when it is
built; ``GraphSession`` rewrites the host, applies the timeouts, sends the Page
token in the ``Authorization`` header and keeps the last answer's usage headers.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import facebook
import requests

from bot.adapters.base import LOOKUP_LIMIT, REQUIRED, Adapter
from bot.errors import AlreadyPosted, AuthFailed, PublishError, RateLimited, Rejected, Transient
from bot.models import Post, Receipt
from bot.secret import Secret, mask

log = logging.getLogger(__name__)

GRAPH_HOST = facebook.FACEBOOK_GRAPH_URL.rstrip("/")
POST_URL = "https://www.facebook.com/{}"
USAGE_HEADERS = ("x-app-usage", "x-business-use-case-usage", "x-page-usage")
AUTH_CODES = frozenset({10, 190} | set(range(200, 300)))
RATE_CODES = frozenset({4, 17, 32, 613, 80001})
TRANSIENT_CODES = frozenset({1, 2})
TOKEN_INVALID = 190
BLOCKED_CODE = 368
DUPLICATE_CODE = 506
DEFAULT_WAIT = timedelta(minutes=15)   # rate limited, and no header said for how long
FULL_WAIT = timedelta(hours=1)         # a usage header at 100%: Graph's window rolls over an hour
BLOCK_WAIT = timedelta(hours=6)        # code 368, blocked as abusive: Meta gives no end time
TOKEN_PLACEHOLDER = "sent-in-header"
PAGE_SIZE = 100                        # feed entries per page, Graph's maximum


class GraphSession(requests.Session):
    """Sends facebook-sdk's requests to ``base_url`` with timeouts and the token in a header."""

    def __init__(self, base_url: str, timeout: tuple[float, float], token: Secret):
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self.usage: dict[str, str] = {}
        self.status: int | None = None

    def request(self, method, url, *args, **kwargs):
        if url.startswith(GRAPH_HOST):
            url = self.base_url + url[len(GRAPH_HOST):]
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        for key in ("params", "data"):      # drop facebook-sdk's placeholder token
            if isinstance(kwargs.get(key), dict):
                kwargs[key] = {k: v for k, v in kwargs[key].items() if k != "access_token"}
        # A header, never the query string: urllib3 logs request lines at DEBUG.
        kwargs["headers"] = {**(kwargs.get("headers") or {}),
                             "Authorization": f"Bearer {self._token.reveal()}"}
        response = super().request(method, url, *args, **kwargs)
        self.status = response.status_code
        self.usage = {k: response.headers[k] for k in USAGE_HEADERS if k in response.headers}
        return response

    def __repr__(self) -> str:
        return f"GraphSession(base_url={self.base_url!r})"


class FacebookAdapter(Adapter):
    """Posts to one Facebook Page with a Page access token."""

    platform: ClassVar[str] = "facebook"
    max_length: ClassVar[int] = 63206
    url_length: ClassVar[int | None] = None
    counting: ClassVar[str] = "chars"
    link_in_text: ClassVar[bool] = False
    default_template: ClassVar[str] = "{title}\n\n{lead}"
    credential_keys: ClassVar[tuple[str, ...]] = ("page_access_token",)
    options: ClassVar[Mapping[str, Any]] = {
        "page_id": REQUIRED,
        "graph_version": "v24.0",
        "graph_base_url": "https://graph.facebook.com",
        "attach_image": False,
        "connect_timeout": 5.0,
        "read_timeout": 20.0,
    }

    # built on first use, never at import or construction
    _graph: facebook.GraphAPI | None = None
    _session: GraphSession | None = None

    @property
    def graph(self) -> facebook.GraphAPI:
        """The GraphAPI, built on first use, at the configured Graph version."""
        if self._graph is None:
            self._session = self._build_session()
            # facebook-sdk refuses writes without a token; it gets a placeholder
            # and GraphSession sends the real one in a header.
            self._graph = facebook.GraphAPI(access_token=TOKEN_PLACEHOLDER, session=self._session)
            # Set after construction: the constructor's check refuses two-digit majors.
            version = str(self.opts["graph_version"])
            self._graph.version = version if version.startswith("v") else f"v{version}"
        return self._graph

    @property
    def page_id(self) -> str:
        return str(self.opts["page_id"])

    def _build_session(self) -> GraphSession:
        timeout = (float(self.opts["connect_timeout"]), float(self.opts["read_timeout"]))
        gs = GraphSession(self.opts["graph_base_url"], timeout,
                          self.credentials["page_access_token"])
        if self.session is not None:   # keep the wiring's transports (retries, proxies)
            for prefix, transport in self.session.adapters.items():
                gs.mount(prefix, transport)
        return gs

    def publish(self, post: Post) -> Receipt:
        """Post to the Page feed (message + link), or a photo post when ``attach_image``.

        A photo the Page refuses falls back to a feed post. Raises AuthFailed
        (190, 10, 200-299), RateLimited (4, 17, 32, 613, 80001; 368 for hours),
        AlreadyPosted (506), Transient (1, 2, non-JSON answers, timeouts,
        connection errors) or Rejected (100 and the rest, message kept)."""
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
        return f"{me.get('name')} (id {me.get('id')})"

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Find ``post`` by link or text among the Page's feed entries since ``since``,
        following ``paging.next``; None only when all of them were seen.

        Raises Rejected when more than LOOKUP_LIMIT entries were posted since
        then, or when the token lacks read permission (not AuthFailed: posting
        may still work); an invalid token stays AuthFailed. Otherwise raises like
        ``publish``."""
        args: dict | None = {"fields": "id,message,link,created_time",
                             "since": str(int(since.timestamp())), "limit": str(PAGE_SIZE)}
        seen = 0
        while args is not None and seen < LOOKUP_LIMIT:
            feed = self._feed_page(args)
            entries = feed.get("data") or []
            found = next((e for e in entries if _matches(e, post)), None)
            if found:
                return _receipt(found)
            seen += len(entries)
            args = _next_args(feed) if entries else None   # an empty page ends it
        if args is None:
            return None
        raise Rejected(f"cannot look up recent posts: more than {LOOKUP_LIMIT} entries since "
                       f"{since:%Y-%m-%d %H:%M} UTC")

    def _feed_page(self, args: dict) -> dict:
        try:
            return self._call(self.graph.get_connections, self.page_id, "feed", **args)
        except AuthFailed as exc:
            if getattr(exc.__cause__, "code", None) == TOKEN_INVALID:
                raise
            # A token that may post but not read (no pages_read_engagement) must
            # not pause the account; "not found" would invite a double post.
            raise Rejected(f"cannot look up recent posts: {exc.message}") from exc

    # --- error translation

    def _call(self, method, *args, **kwargs) -> dict:
        """Call a GraphAPI method; translate whatever it raises into Herald's errors."""
        try:
            result = method(*args, **kwargs)
        except facebook.GraphAPIError as exc:
            raise self._error_for(exc) from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            # KeyError: facebook-sdk reads headers["content-type"] unguarded.
            raise Transient(mask(f"{type(exc).__name__}: {exc}")) from exc
        if not isinstance(result, dict):
            raise Transient(f"unexpected answer from Graph: {type(result).__name__}")
        return result

    def _error_for(self, exc: facebook.GraphAPIError) -> PublishError:
        code, error = exc.code, _error_body(exc.result)
        subcode = error.get("error_subcode")
        if code is None:
            status = self._session.status if self._session else None
            return Transient(f"Graph gave an answer that is not JSON (HTTP {status})")
        message = mask(f"Graph error {code}{f'/{subcode}' if subcode else ''}: {exc.message}")
        if code in AUTH_CODES:
            return AuthFailed(message)
        if code in RATE_CODES:
            return RateLimited(self._until(), message)
        if code == BLOCKED_CODE:
            return RateLimited(self.clock() + BLOCK_WAIT, f"{message} (blocked as abusive: "
                               f"posting paused for {BLOCK_WAIT.total_seconds() / 3600:g} hours)")
        if code == DUPLICATE_CODE:
            return AlreadyPosted(message)
        if code in TRANSIENT_CODES or error.get("is_transient"):
            return Transient(message)
        return Rejected(message)

    def _until(self) -> datetime:
        """When a rate limit lifts, from the last answer's usage headers when it had any."""
        usage = self._session.usage if self._session else {}
        minutes = _regain_minutes(usage.get("x-business-use-case-usage"))
        if minutes:
            return self.clock() + timedelta(minutes=minutes)
        if any(_saturated(usage.get(name)) for name in ("x-app-usage", "x-page-usage")):
            return self.clock() + FULL_WAIT
        return self.clock() + DEFAULT_WAIT


def _receipt(result: dict) -> Receipt:
    # A photo post answers {"id": photo, "post_id": page_post}; the post is what we want.
    post_id = result.get("post_id") or result.get("id")
    if not post_id:
        raise Transient("Graph answered without a post id")
    return Receipt(platform_id=str(post_id), url=POST_URL.format(post_id))


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
    return max((int(m) for m in minutes if isinstance(m, (int, float))), default=0)


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
    message = " ".join(str(entry.get("message") or "").split())
    texts = {" ".join(post.text.split()), " ".join(f"{post.text} {post.link}".split())}
    return bool(post.text) and message in texts
