"""The X platform: posts through tweepy's v2 ``Client``, images through ``/2/media/upload``.

tweepy hard-codes the host api.twitter.com, sends no timeout and signs with
requests-oauthlib, which logs the ``Authorization`` header at DEBUG. So every
request goes through ``XSession``: a ``PlatformSession`` that sends it to
``api_base_url`` (api.x.com, X's host now) within the total deadline, signs it
with our own OAuth 1.0a signer and raises ``ERRORS``' verdict on any answer
that is not a readable success, before tweepy parses it.
"""
from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
import tweepy
from oauthlib.oauth1.rfc5849 import signature

from bot.adapters.answers import (REDIRECTED, SERVER, UNREADABLE_SUCCESS, Answer, Rule, answer_of,
                                  epoch, json_object, next_month, raise_unless_ok, require_id,
                                  retry_after)
from bot.adapters.base import TIMEOUTS, Adapter, Clock, credential, Option
from bot.adapters.lookup import cannot_look_up, search_pages, without_links
from bot.adapters.session import Limits, PlatformSession, call_library
from bot.errors import (AlreadyPosted, AuthFailed, RateLimited, Rejected, Suspended,
                        Transient)
from bot.models import Post, Receipt
from bot.secret import Secret, mask

log = logging.getLogger(__name__)

TWEEPY_HOST = "https://api.twitter.com"   # what tweepy sends to; XSession rewrites it
X_API = "https://api.x.com"               # X's API host (its OpenAPI spec)
TWEET_URL = "https://x.com/i/web/status/{}"
DEFAULT_WAIT = timedelta(minutes=15)   # X's rate-limit window, when no header said more
PAGE_SIZE = 100                        # tweets per timeline page, X's maximum
# Problem types and reasons that mean "the app or token lacks access", not "this post".
APP_ACCESS_TYPES = ("/client-forbidden", "/oauth1-permissions", "/unsupported-authentication")
APP_ACCESS_REASONS = ("client-not-enrolled", "official-client-forbidden")
# When the daily cap is hit, x-rate-limit-reset is only the 15-minute window;
# the 24-hour pairs say when posting really resumes.
RESET_HEADERS = (("x-rate-limit-remaining", "x-rate-limit-reset"),
                 ("x-user-limit-24hour-remaining", "x-user-limit-24hour-reset"),
                 ("x-app-limit-24hour-remaining", "x-app-limit-24hour-reset"))
CAP_RESET_HEADERS = ("x-user-limit-24hour-reset", "x-app-limit-24hour-reset",
                     "x-rate-limit-reset")
CREDITS_ACTION = "top up the account's X API credits, then run `run_bot.py resume {account}`"
PAYMENT_ACTION = ("settle the X developer account's billing, then run "
                  "`run_bot.py resume {account}`")


def rate_wait(answer: Answer, now: datetime) -> datetime:
    """When a 429 lifts: the latest reset among the exhausted limits, else
    Retry-After, else X's 15-minute window."""
    h = answer.headers
    resets = [epoch(h.get(reset), now) for remaining, reset in RESET_HEADERS
              if reset == "x-rate-limit-reset" or h.get(remaining) == "0"]
    latest = max((r for r in resets if r and r > now), default=None)
    return latest or retry_after(h, now) or now + DEFAULT_WAIT


def cap_wait(answer: Answer, now: datetime) -> datetime:
    """When the monthly usage cap lifts: the latest reset X names, else the next UTC month."""
    resets = [epoch(answer.headers.get(name), now) for name in CAP_RESET_HEADERS]
    return max((r for r in resets if r and r > now), default=None) or next_month(now)


# X's answers off the happy path, first match wins (see bot.adapters.answers).
ERRORS = (
    UNREADABLE_SUCCESS,
    REDIRECTED,
    Rule(AuthFailed, status={401}),
    Rule(Suspended, problem="/problems/credits", action=CREDITS_ACTION,
         note="X API credits depleted"),
    Rule(Suspended, status={402}, action=PAYMENT_ACTION, note="X wants payment"),
    Rule(RateLimited, problem="/problems/usage-capped", wait=cap_wait,
         note="monthly usage cap reached"),
    Rule(RateLimited, status={429}, wait=rate_wait),
    Rule(Transient, status=SERVER),
    Rule(Transient, is_json=False),
    Rule(AlreadyPosted, status={403}, words="duplicate content"),
    Rule(AuthFailed, status={403}, problem=APP_ACCESS_TYPES),
    Rule(AuthFailed, status={403}, reason=APP_ACCESS_REASONS),
    Rule(Rejected),
)


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


class XSession(PlatformSession):
    """Sends tweepy's requests to ``base_url`` within the limits, signed by our signer."""

    def __init__(self, base_url: str, limits: Limits, auth: requests.auth.AuthBase, check):
        super().__init__(TWEEPY_HOST, base_url, limits, check)
        self.signer = auth

    def request(self, method, url, *args, **kwargs):
        kwargs["auth"] = self.signer     # replaces tweepy's logging OAuth1
        return super().request(method, url, *args, **kwargs)


class TwitterAdapter(Adapter):
    """Posts to X with OAuth 1.0a user context (API v2)."""

    platform: ClassVar[str] = "twitter"
    max_length: ClassVar[int] = 280
    url_length: ClassVar[int | None] = 23
    counting: ClassVar[str] = "twitter"
    credentials: ClassVar[Mapping[str, Option]] = {
        "consumer_key": credential(help="the app's API key"),
        "consumer_secret": credential(help="the app's API key secret"),
        "access_token": credential(help="the account's access token (read and write)"),
        "access_token_secret": credential(help="the account's access token secret"),
    }
    options: ClassVar[Mapping[str, Option]] = {
        "api_base_url": Option(str, X_API),
        "attach_image": Option(bool, False, help="upload the article's image with the post"),
        **TIMEOUTS,
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
        signer = OAuth1Signer(self.credentials, self.clock)
        xs = XSession(self.opts["api_base_url"], Limits.of(self.opts), signer, self._check)
        return xs.adopt(self.session, self.gate)   # keep the wiring's transports (retries, proxies)

    def _check(self, response: requests.Response) -> None:
        raise_unless_ok(ERRORS, x_answer(response), self.clock(), self.account)

    def publish(self, post: Post) -> Receipt:
        """Post ``post.text`` (with its image when ``attach_image``); return the tweet's receipt.

        Raises AuthFailed (401, or a 403 about app access), Suspended (402: credits
        depleted), RateLimited (429; the monthly usage cap until it resets),
        Transient (5xx, timeout, deadline, connection error, an answer that is not
        JSON or has no id: outcome unknown), AlreadyPosted (403 duplicate content)
        or Rejected (other 4xx, platform message kept)."""
        media_ids = self._media_ids(post)
        response = self._call(self.client.create_tweet, text=post.text,
                              media_ids=media_ids, user_auth=True)
        data = response.data if isinstance(response.data, dict) else {}
        tweet_id = require_id(data.get("id"), "X")
        return Receipt(platform_id=tweet_id, url=TWEET_URL.format(tweet_id))

    def verify(self) -> str:
        """Return "@username (id N)" for the account. Raises like ``publish``."""
        user = self._call(self.client.get_me, user_auth=True).data
        self._user_id = require_id(getattr(user, "id", None), "X")
        return f"@{user.username} (id {user.id})"

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Find ``post`` by link or text among the account's tweets since ``since``,
        paging through the timeline; None only when all of them were seen.

        Raises Rejected when more than LOOKUP_LIMIT tweets were posted since
        then, or when a 403 about app access says the timeline is unavailable
        (not AuthFailed: posting may still work); Transient for a page X did not
        send whole; otherwise raises like ``publish``."""
        user_id = self._lookup_user_id()
        found = search_pages(lambda token: self._timeline_page(user_id, since, token),
                             lambda t: _matches(t.text, t.entities, post), since, "tweets")
        return None if found is None else Receipt(platform_id=str(found.id),
                                                  url=TWEET_URL.format(found.id))

    def _lookup_user_id(self) -> str:
        if self._user_id is None:
            self._user_id = _id_from_token(self.credentials["access_token"]) or None
        if self._user_id is None:
            self.verify()
        return self._user_id

    def _timeline_page(self, user_id: str, since: datetime, token: str | None):
        """One page of GET /2/users/:id/tweets from ``since``, after ``token``:
        (tweets, next token)."""
        try:
            page = self._call(self.client.get_users_tweets, user_id, start_time=since,
                              max_results=PAGE_SIZE, pagination_token=token,
                              tweet_fields=["entities", "created_at"], user_auth=True)
        except AuthFailed as exc:
            answer = answer_of(exc)
            if answer is None or answer.status != 403:
                raise
            raise cannot_look_up(exc) from exc   # X's lower tiers may offer no timelines
        return _page_of(page)

    # --- images

    def _media_ids(self, post: Post) -> list[str] | None:
        # X draws a card from og:image anyway when the image cannot go.
        media = self.with_image(post, self._upload)
        return None if media is None else [media]

    def _upload(self, data: bytes) -> str:
        """Upload one image through the v2 one-shot endpoint; return its media id."""
        response = self.client.session.post(
            TWEEPY_HOST + "/2/media/upload", data={"media_category": "tweet_image"},
            files={"media": ("image", data, "application/octet-stream")})
        media = response.json().get("data")   # XSession let through only a JSON object
        return require_id(media.get("id") if isinstance(media, dict) else None, "X")

    # --- calls

    def _call(self, method, *args, **kwargs):
        """Call a tweepy method; whatever it raises becomes one of Herald's errors."""
        return call_library("X", (tweepy.TweepyException,), method, *args, **kwargs)


def x_answer(response: requests.Response) -> Answer:
    """What an X answer says: problem type, reason and the platform's words."""
    body = json_object(response)
    status = response.status_code
    return Answer(status=status, ok=200 <= status < 300 and body is not None,
                  words=mask(_message(body, response)), is_json=body is not None,
                  problem=_text((body or {}).get("type")),
                  reason=_text((body or {}).get("reason")), headers=response.headers)


def _page_of(page) -> tuple[list, str | None]:
    """A timeline page's tweets and next token; Transient when it is not a whole page.

    X sends ``meta.result_count`` on every timeline page, empty ones too: without
    it an empty answer would read as "not posted" and invite a double post
    (tweepy fills in an absent ``meta`` with {})."""
    meta, tweets = page.meta, page.data or []
    if not (isinstance(meta, dict) and "result_count" in meta and isinstance(tweets, list)):
        raise Transient("X answered a timeline page without meta: cannot tell what it holds")
    token = meta.get("next_token")
    return tweets, token if isinstance(token, str) else None


def _id_from_token(token: Secret) -> str:
    """The user id an OAuth 1.0a access token starts with ("<id>-<rest>"), or "".

    Saves a /2/users/me call, which X's lower tiers allow only a few times a day."""
    head = token.reveal().split("-", 1)[0]
    return head if head.isdigit() else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _message(body: dict | None, response: requests.Response) -> str:
    """The platform's own words: problem detail, else the errors list, else the status."""
    head = f"X answered {response.status_code}"
    if body is None:
        return f"{head} {response.reason or ''} (not JSON)".strip()
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    words = [_text(body.get("detail")) or _text(body.get("title"))]
    words += [_text(e.get("message")) or _text(e.get("detail")) for e in errors
              if isinstance(e, dict)]
    text = "; ".join(w for w in words if w)
    return f"{head}: {text}" if text else head


def _matches(text: Any, entities: Any, post: Post) -> bool:
    """A tweet is ``post`` if it carries the post's link; a tweet that links
    something else is another post, however alike the text; only a tweet with
    no expanded link is matched by its text."""
    urls = entities.get("urls") if isinstance(entities, dict) else None
    links = {u.get(k) for u in urls if isinstance(u, dict)
             for k in ("expanded_url", "unwound_url")} if isinstance(urls, list) else set()
    links.discard(None)
    if post.link and links:
        return post.link in links
    # X shortens links to t.co and escapes &<> in text; compare what is left.
    return bool(post.text) and without_links(html.unescape(_text(text))) == without_links(post.text)
