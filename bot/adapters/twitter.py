"""The X platform: posts through tweepy's v2 ``Client``, images through ``/2/media/upload``.

tweepy hard-codes the host, sends no timeout and signs with requests-oauthlib,
which logs the ``Authorization`` header at DEBUG. So every request goes through
``_XSession``: it rewrites the host to ``api_base_url``, applies the
(connect, read) timeouts and signs with our own OAuth 1.0a signer.
"""
from __future__ import annotations

import html
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
import tweepy
from oauthlib.oauth1.rfc5849 import signature

from bot.adapters.base import LOOKUP_LIMIT, Adapter, Clock
from bot.errors import (AlreadyPosted, AuthFailed, HeraldError, PublishError, RateLimited,
                        Rejected, Transient)
from bot.models import Post, Receipt
from bot.secret import Secret, mask

log = logging.getLogger(__name__)

X_HOST = "https://api.twitter.com"
TWEET_URL = "https://x.com/i/web/status/{}"
DEFAULT_WAIT = timedelta(minutes=15)   # X's rate-limit window, when no reset header came
PAGE_SIZE = 100                        # tweets per timeline page, X's maximum
# Problem types and reasons that mean "the app or token lacks access", not "this post".
APP_ACCESS_TYPES = ("/client-forbidden", "/oauth1-permissions", "/unsupported-authentication")
APP_ACCESS_REASONS = ("client-not-enrolled", "official-client-forbidden")
# When the daily cap is hit, x-rate-limit-reset is only the 15-minute window;
# the 24-hour pairs say when posting really resumes.
RESET_HEADERS = (("x-rate-limit-remaining", "x-rate-limit-reset"),
                 ("x-user-limit-24hour-remaining", "x-user-limit-24hour-reset"),
                 ("x-app-limit-24hour-remaining", "x-app-limit-24hour-reset"))
URL_RE = re.compile(r"https?://\S+")


class OAuth1Signer(requests.auth.AuthBase):
    """OAuth 1.0a HMAC-SHA1 user-context signer.

    Ours rather than requests-oauthlib's because that one logs the signed
    headers (consumer key and token) at DEBUG. Only query parameters are
    signed: Herald sends JSON or multipart bodies, which OAuth 1.0a leaves out."""

    def __init__(self, credentials: Mapping[str, Secret], clock: Clock):
        self._credentials = credentials
        self._clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        creds = self._credentials
        oauth = {
            "oauth_consumer_key": creds["consumer_key"].reveal(),
            "oauth_nonce": secrets.token_hex(16),
            "oauth_signature_method": "HMAC-SHA1",
            "oauth_timestamp": str(int(self._clock().timestamp())),
            "oauth_token": creds["access_token"].reveal(),
            "oauth_version": "1.0",
        }
        params = signature.collect_parameters(uri_query=urlsplit(request.url).query)
        base = signature.signature_base_string(
            request.method, signature.base_string_uri(request.url),
            signature.normalize_parameters(params + list(oauth.items())))
        keys = SimpleNamespace(client_secret=creds["consumer_secret"].reveal(),
                               resource_owner_secret=creds["access_token_secret"].reveal())
        oauth["oauth_signature"] = signature.sign_hmac_sha1_with_client(base, keys)
        request.headers["Authorization"] = "OAuth " + ", ".join(
            f'{key}="{quote(value, safe="~")}"' for key, value in oauth.items())
        return request

    def __repr__(self) -> str:
        return "OAuth1Signer(***)"


class XSession(requests.Session):
    """A Session that sends tweepy's requests to ``base_url`` with timeouts and our signer."""

    def __init__(self, base_url: str, timeout: tuple[float, float], auth: requests.auth.AuthBase):
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.signer = auth

    def request(self, method, url, *args, **kwargs):
        if url.startswith(X_HOST):
            url = self.base_url + url[len(X_HOST):]
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        kwargs["auth"] = self.signer     # replaces tweepy's logging OAuth1
        return super().request(method, url, *args, **kwargs)


class TwitterAdapter(Adapter):
    """Posts to X with OAuth 1.0a user context (API v2)."""

    platform: ClassVar[str] = "twitter"
    max_length: ClassVar[int] = 280
    url_length: ClassVar[int | None] = 23
    counting: ClassVar[str] = "twitter"
    credential_keys: ClassVar[tuple[str, ...]] = (
        "consumer_key", "consumer_secret", "access_token", "access_token_secret")
    options: ClassVar[Mapping[str, Any]] = {
        "api_base_url": X_HOST,
        "attach_image": False,
        "connect_timeout": 5.0,
        "read_timeout": 20.0,
    }

    # built on first use, never at import or construction
    _client: tweepy.Client | None = None
    _user_id: str | None = None

    @property
    def client(self) -> tweepy.Client:
        """The tweepy client, built on first use (never at import or construction)."""
        if self._client is None:
            # tweepy needs strings here but never signs with them: XSession does.
            self._client = tweepy.Client(consumer_key="-", consumer_secret="-",
                                         access_token="-", access_token_secret="-")
            self._client.session = self._build_session()
        return self._client

    def _build_session(self) -> XSession:
        timeout = (float(self.opts["connect_timeout"]), float(self.opts["read_timeout"]))
        signer = OAuth1Signer(self.credentials, self.clock)
        xs = XSession(self.opts["api_base_url"], timeout, signer)
        if self.session is not None:   # keep the wiring's transports (retries, proxies)
            for prefix, transport in self.session.adapters.items():
                xs.mount(prefix, transport)
        return xs

    def publish(self, post: Post) -> Receipt:
        """Post ``post.text`` (with its image when ``attach_image``); return the tweet's receipt.

        Raises AuthFailed (401, or a 403 about app access), RateLimited (429),
        Transient (5xx, timeout, connection error, non-JSON answer), AlreadyPosted
        (403 duplicate content) or Rejected (other 4xx, platform message kept)."""
        media_ids = self._media_ids(post)
        response = self._call(self.client.create_tweet, text=post.text,
                              media_ids=media_ids, user_auth=True)
        tweet_id = self._field(lambda: str(response.data["id"]))
        return Receipt(platform_id=tweet_id, url=TWEET_URL.format(tweet_id))

    def verify(self) -> str:
        """Return "@username (id N)" for the account. Raises like ``publish``."""
        response = self._call(self.client.get_me, user_auth=True)
        user = response.data
        self._user_id = self._field(lambda: str(user.id))
        return f"@{user.username} (id {user.id})"

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Find ``post`` by link or text among the account's tweets since ``since``,
        paging through the timeline; None only when all of them were seen.

        Raises Rejected when more than LOOKUP_LIMIT tweets were posted since
        then, or when a 403 about app access says the timeline is unavailable
        (not AuthFailed: posting may still work); otherwise raises like ``publish``."""
        user_id = self._lookup_user_id()
        token, seen = None, 0
        while seen < LOOKUP_LIMIT:
            page = self._timeline_page(user_id, since, token)
            for tweet in page.data or []:
                if _matches(tweet.text, tweet.entities or {}, post):
                    return Receipt(platform_id=str(tweet.id), url=TWEET_URL.format(tweet.id))
            seen += len(page.data or [])
            token = (page.meta or {}).get("next_token")
            if not (token and page.data):   # an empty page ends it
                return None
        raise Rejected(f"cannot look up recent posts: more than {LOOKUP_LIMIT} tweets since "
                       f"{since:%Y-%m-%d %H:%M} UTC")

    def _lookup_user_id(self) -> str:
        if self._user_id is None:
            self._user_id = _id_from_token(self.credentials["access_token"]) or None
        if self._user_id is None:
            self.verify()
        return self._user_id

    def _timeline_page(self, user_id: str, since: datetime, token: str | None):
        """One page of GET /2/users/:id/tweets from ``since``, after ``token``."""
        try:
            return self._call(self.client.get_users_tweets, user_id, start_time=since,
                              max_results=PAGE_SIZE, pagination_token=token,
                              tweet_fields=["entities", "created_at"], user_auth=True)
        except AuthFailed as exc:
            if not isinstance(exc.__cause__, tweepy.Forbidden):
                raise
            # X's lower tiers may not offer timelines: that must not pause an account
            # whose posting works, and "not found" would invite a double post.
            raise Rejected(f"cannot look up recent posts: {exc.message}") from exc

    # --- images

    def _media_ids(self, post: Post) -> list[str] | None:
        if not (self.opts["attach_image"] and post.image_url):
            return None
        try:
            if self.fetch_media is None:
                raise Rejected("no media fetcher was wired in")
            return [self._upload(self.fetch_media(post.image_url))]
        except (HeraldError, requests.RequestException, ValueError, KeyError, TypeError) as exc:
            # The post is worth more than its picture: X draws a card from og:image anyway.
            log.warning("%s: posting without image %s: %s", self.account, post.image_url,
                        mask(f"{type(exc).__name__}: {exc}"))
            return None

    def _upload(self, data: bytes) -> str:
        """Upload one image through the v2 one-shot endpoint; return its media id."""
        response = self.client.session.post(
            X_HOST + "/2/media/upload", data={"media_category": "tweet_image"},
            files={"media": ("image", data, "application/octet-stream")})
        if not 200 <= response.status_code < 300:
            raise self._error_for(response)
        body = response.json()
        return str(body["data"]["id"])

    # --- error translation

    def _call(self, method, *args, **kwargs):
        """Call a tweepy method; translate whatever it raises into Herald's errors."""
        try:
            return method(*args, **kwargs)
        except tweepy.HTTPException as exc:
            raise self._error_for(exc.response) from exc
        except (requests.RequestException, ValueError) as exc:
            # Timeouts, refused connections and bodies that are not JSON all may pass.
            raise Transient(mask(f"{type(exc).__name__}: {exc}")) from exc

    @staticmethod
    def _field(get: Callable[[], str]) -> str:
        try:
            return get()
        except (KeyError, TypeError, AttributeError) as exc:
            raise Transient(f"unexpected answer from X: {type(exc).__name__}: {exc}") from exc

    def _error_for(self, response: requests.Response) -> PublishError:
        status = response.status_code
        body = _json(response)
        message = mask(_message(body, response))
        if status == 401:
            return AuthFailed(message)
        if status == 429:
            return RateLimited(self._until(response.headers), message)
        if status >= 500 or body is None:
            return Transient(message)
        if status == 403:
            return _forbidden(body, message)
        return Rejected(message)

    def _until(self, headers: Mapping[str, str]) -> datetime:
        """When the 429 lifts: the latest reset among the exhausted limits."""
        resets = []
        for remaining, reset in RESET_HEADERS:
            value = headers.get(reset, "")
            if value.isdigit() and (reset == "x-rate-limit-reset" or headers.get(remaining) == "0"):
                resets.append(int(value))
        now = self.clock()
        until = datetime.fromtimestamp(max(resets), timezone.utc) if resets else None
        # A reset already past (clock skew, a stale header) would retry at once, forever.
        return until if until and until > now else now + DEFAULT_WAIT


def _id_from_token(token: Secret) -> str:
    """The user id an OAuth 1.0a access token starts with ("<id>-<rest>"), or "".

    Saves a /2/users/me call, which X's lower tiers allow only a few times a day."""
    head = token.reveal().split("-", 1)[0]
    return head if head.isdigit() else ""


def _forbidden(body: dict, message: str) -> PublishError:
    """Split X's 403s: duplicate, app/token access (the account must act), or this post."""
    if "duplicate content" in message.lower():
        return AlreadyPosted(message)
    problem = str(body.get("type", ""))
    if problem.endswith(APP_ACCESS_TYPES) or body.get("reason") in APP_ACCESS_REASONS:
        return AuthFailed(message)
    return Rejected(message)


def _json(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _message(body: dict | None, response: requests.Response) -> str:
    """The platform's own words: problem detail, else the errors list, else the status."""
    head = f"X answered {response.status_code}"
    if body is None:
        return f"{head} {response.reason or ''} (not JSON)".strip()
    words = [body.get("detail") or body.get("title") or ""]
    words += [e.get("message") or e.get("detail") or "" for e in body.get("errors") or []
              if isinstance(e, dict)]
    text = "; ".join(w for w in words if w)
    return f"{head}: {text}" if text else head


def _matches(text: str, entities: dict, post: Post) -> bool:
    """A tweet is ``post`` if it carries the post's link or, links aside, the same text."""
    links = {u.get(k) for u in entities.get("urls", []) for k in ("expanded_url", "unwound_url")}
    if post.link and post.link in links:
        return True
    return bool(post.text) and _bare(html.unescape(text)) == _bare(post.text)


def _bare(text: str) -> str:
    # X shortens links to t.co and escapes &<> in text; compare what is left.
    return " ".join(URL_RE.sub("", text).split())
