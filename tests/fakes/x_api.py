"""The fake X API v2: OAuth 1.0a user context, problem-JSON errors, rate-limit headers."""
from __future__ import annotations

import hmac
import html
import json
import re
import time
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from types import SimpleNamespace
from urllib.parse import unquote

from oauthlib.oauth1.rfc5849 import signature

from .shapes import (COMMON_FAULTS, DUPLICATE_AND_PERMISSIONS, RESET_EPOCH, X_ACCESS_SECRET,
                     X_ACCESS_TOKEN, X_CONSUMER_KEY, X_CONSUMER_SECRET, X_USER_ID, X_USERNAME,
                     Answer, Api, Contract, FakePlatform, Reply, XUser)

URL_RE = re.compile(r"https?://\S+")
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")
TIMELINE_CAP = 3200          # X serves only a user's latest 3,200 tweets
TOKEN_PREFIX = "7140dibdnow9c7btw"   # pagination tokens are opaque; this one ends in an id


class XState:
    """The X accounts one fake server accepts, and its app's consumer key."""

    def __init__(self):
        self.consumer = (X_CONSUMER_KEY, X_CONSUMER_SECRET)
        self.users = {X_ACCESS_TOKEN: XUser(X_USER_ID, X_USERNAME, X_ACCESS_SECRET)}

    def add_user(self, token: str, token_secret: str, user_id: str, username: str) -> None:
        self.users[token] = XUser(user_id, username, token_secret)


class XApi(Api):
    """X API v2: OAuth 1.0a user context, problem-JSON errors, rate-limit headers."""

    def authenticate(self) -> Reply | None:
        self.user = self._verified_user()
        if self.user is None:
            return self.problem(401, "Unauthorized", "Unauthorized")
        return None

    def _verified_user(self) -> XUser | None:
        header = self.req.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return None
        oauth = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}
        user = self.state.users.get(oauth.get("oauth_token", ""))
        if user is None or oauth.get("oauth_consumer_key") != self.state.consumer[0]:
            return None
        params = list(self.req.query.items())
        params += [(k, v) for k, v in oauth.items() if k not in ("oauth_signature", "realm")]
        uri = signature.base_string_uri(f"http://{self.req.host}{self.req.path}")
        base = signature.signature_base_string(self.req.method, uri,
                                               signature.normalize_parameters(params))
        keys = SimpleNamespace(client_secret=self.state.consumer[1],
                               resource_owner_secret=user.token_secret)
        expected = signature.sign_hmac_sha1_with_client(base, keys)
        return user if hmac.compare_digest(expected, oauth.get("oauth_signature", "")) else None

    def problem(self, status: int, title: str, detail: str, kind: str = "about:blank",
                headers: dict | None = None, **extra) -> Reply:
        body = {"title": title, "detail": detail, "type": kind, "status": status, **extra}
        return Reply(status, body, headers or {})

    def fault(self, f: Answer) -> Reply:
        msg = f.params.get("message")
        if f.kind == "429":
            reset = f.params.get("reset", int(time.time()) + 900)   # None: send no reset
            headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                       **({"x-rate-limit-reset": str(reset)} if reset is not None else {})}
            return self.problem(429, "Too Many Requests", msg or "Too Many Requests",
                                headers=headers)
        if f.kind in ("500", "503"):
            return self.problem(int(f.kind), "Service Unavailable", msg or "Service Unavailable")
        if f.kind == "401":
            return self.problem(401, "Unauthorized", msg or "Unauthorized")
        if f.kind == "403-duplicate":
            return self.problem(403, "Forbidden", msg or "You are not allowed to create a Tweet "
                                "with duplicate content.")
        if f.kind == "403-permissions":
            return self.problem(403, "Forbidden", msg or "Your client app is not configured with "
                                "the appropriate oauth1 app permissions for this endpoint.",
                                "https://api.twitter.com/2/problems/oauth1-permissions")
        if f.kind == "403-tier":
            return self.problem(403, "Client Forbidden", msg or "When authenticating requests "
                                "to the Twitter API v2 endpoints, you must use keys and tokens "
                                "from a Twitter developer App that is attached to a Project.",
                                "https://api.twitter.com/2/problems/client-forbidden",
                                reason="client-not-enrolled")
        if f.kind == "402-credits":
            return self.problem(402, "CreditsDepleted", msg or "Your enrolled account does not "
                                "have any credits to fulfill this request.",
                                "https://api.x.com/2/problems/credits")
        if f.kind == "429-usage-capped":
            return self.problem(429, "UsageCapExceeded", msg or "Usage cap exceeded: Monthly "
                                "product cap", "https://api.x.com/2/problems/usage-capped",
                                headers=f.params.get("headers"), period="Monthly",
                                scope="Product")
        if f.kind == "200-no-id":
            return Reply(201, {"data": {"text": "accepted, but which?"}})
        if f.kind == "403":
            return self.problem(403, "Forbidden", msg or "You are not permitted to perform "
                                "this action.")
        return self.invalid(msg or "One or more parameters to your request was invalid.")

    def invalid(self, message: str) -> Reply:
        return Reply(400, {"errors": [{"message": message}], "title": "Invalid Request",
                           "detail": "One or more parameters to your request was invalid.",
                           "type": "https://api.twitter.com/2/problems/invalid-request"})

    def route(self) -> Reply:
        method, path = self.req.method, self.req.path
        if method == "POST" and path == "/2/tweets":
            return self.tweet()
        if method == "POST" and path == "/2/media/upload":
            return self.upload()
        if method == "GET" and path == "/2/users/me":
            u = self.user
            return Reply(200, {"data": {"id": u.user_id, "name": u.username,
                                        "username": u.username}})
        match = re.fullmatch(r"/2/users/(\d+)/tweets", path)
        if method == "GET" and match:
            return self.timeline(match.group(1))
        return self.problem(404, "Not Found Error", f"Could not find {path}")

    def tweet(self) -> Reply:
        try:
            body = json.loads(self.req.body or b"{}")
        except ValueError:
            return self.invalid("Request body is not valid JSON")
        text = body.get("text") or ""
        media_ids = (body.get("media") or {}).get("media_ids") or []
        if not text and not media_ids:
            return self.invalid("Text or media is required")
        if any(m not in self.fake.media for m in media_ids):
            return self.invalid("Your media IDs are invalid.")
        if any(p["text"] == text and p["account"] == self.user.username for p in self.fake.posts
               if p["platform"] == "twitter"):
            return self.problem(403, "Forbidden", "You are not allowed to create a Tweet with "
                                "duplicate content.")
        tweet_id = self.fake.next_id()
        links = URL_RE.findall(text)
        self.fake.record({"platform": "twitter", "account": self.user.username, "text": text,
                          "link": links[0] if links else None, "id": tweet_id,
                          "media_ids": media_ids, "user_id": self.user.user_id})
        return Reply(201, {"data": {"id": tweet_id, "text": text,
                                    "edit_history_tweet_ids": [tweet_id]}})

    def upload(self) -> Reply:
        parts = _multipart(self.req.headers.get("content-type", ""), self.req.body)
        media = parts.get("media")
        if media is None:
            return self.invalid("media is required")
        if parts.get("media_category", b"").decode() != "tweet_image":
            return self.invalid("media_category must be tweet_image")
        if not media.startswith(IMAGE_MAGIC):
            return self.invalid("media type unrecognized.")
        media_id = self.fake.next_id()
        self.fake.media[media_id] = len(media)
        return Reply(200, {"data": {"id": media_id, "media_key": f"3_{media_id}",
                                    "size": len(media), "expires_after_secs": 86400,
                                    "image": {"image_type": "image/jpeg", "w": 1, "h": 1}}})

    def timeline(self, user_id: str) -> Reply:
        """GET /2/users/:id/tweets: newest first, ``start_time``, ``max_results``
        (5-100) and ``pagination_token`` paging; only the last TIMELINE_CAP tweets."""
        q = self.req.query
        count = int(q.get("max_results", "10"))
        if not 5 <= count <= 100:
            return self.invalid("The `max_results` query parameter value is not between 5 and 100")
        since = _rfc3339(q["start_time"]) if "start_time" in q else float("-inf")
        if since is None:
            return self.invalid(f"Invalid 'start_time':'{q['start_time']}'.")
        mine = [p for p in self.fake.posts_of("user_id", user_id)[:TIMELINE_CAP]
                if p["at"] >= since]
        start = _after(mine, q.get("pagination_token"))
        if start is None:
            return self.invalid("The `pagination_token` query parameter value is invalid")
        return _page(mine[start:], count)


def _page(tweets: list[dict], count: int) -> Reply:
    page = tweets[:count]
    if not page:
        return Reply(200, {"meta": {"result_count": 0}})
    meta = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
    if len(tweets) > count:
        meta["next_token"] = f"{TOKEN_PREFIX}{page[-1]['id']}"
    return Reply(200, {"data": [_as_tweet(p) for p in page], "meta": meta})


def _after(tweets: list[dict], token: str | None) -> int | None:
    """Where the page after ``token`` starts; None for a token X never gave."""
    if token is None:
        return 0
    last = token.removeprefix(TOKEN_PREFIX)
    ids = [p["id"] for p in tweets]
    return ids.index(last) + 1 if token.startswith(TOKEN_PREFIX) and last in ids else None


def _rfc3339(value: str) -> float | None:
    """X's YYYY-MM-DDTHH:mm:ssZ (fractions allowed) as epoch seconds; None if malformed."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo else None


def _as_tweet(post: dict) -> dict:
    """A stored post as X returns it: links shortened to t.co, &<> escaped."""
    urls, text = [], html.escape(post["text"], quote=False)
    for n, link in enumerate(URL_RE.findall(text)):
        short = f"https://t.co/fake{n}"
        start = text.index(link)
        text = text.replace(link, short, 1)
        urls.append({"start": start, "end": start + len(short), "url": short,
                     "expanded_url": html.unescape(link), "display_url": link[8:30]})
    created = datetime.fromtimestamp(post["at"], timezone.utc)
    tweet = {"id": post["id"], "text": text, "edit_history_tweet_ids": [post["id"]],
             "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created:%f}"[:3] + "Z"}
    if urls:
        tweet["entities"] = {"urls": urls}
    return tweet


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        return {}
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}


def seed(fake, state: XState, count: int, at: datetime, text: str) -> None:
    """``count`` tweets the default user made at ``at``."""
    for n in range(count):
        fake.record({"platform": "twitter", "account": X_USERNAME, "user_id": X_USER_ID,
                     "media_ids": [], "text": f"{text} {n}", "link": None,
                     "id": fake.next_id(), "at": at.timestamp()})


def _flags(parser) -> None:
    parser.add_argument("--x-user", action="append", default=[], metavar="TOKEN:SECRET:ID:NAME",
                        help="another X account the fake accepts")


def _configure(state: XState, args) -> None:
    for spec in args.x_user:
        state.add_user(*spec.split(":", 3))


CREDENTIALS = {"consumer_key": X_CONSUMER_KEY, "consumer_secret": X_CONSUMER_SECRET,
               "access_token": X_ACCESS_TOKEN, "access_token_secret": X_ACCESS_SECRET}
ENV = {"X_CONSUMER_KEY": X_CONSUMER_KEY, "X_CONSUMER_SECRET": X_CONSUMER_SECRET,
       "X_ACCESS_TOKEN": X_ACCESS_TOKEN, "X_ACCESS_TOKEN_SECRET": X_ACCESS_SECRET}

FAKE = FakePlatform(
    name="twitter", api=XApi, claims=lambda req: req.path.startswith("/2/"), seed=seed,
    state=XState, posting=("/2/tweets",), flags=_flags, configure=_configure,
    contract=Contract(
        credentials=CREDENTIALS,
        wrong={**CREDENTIALS, "consumer_secret": "wrong-consumer-secret"},
        options=lambda url: {"api_base_url": url},
        until=datetime.fromtimestamp(RESET_EPOCH, timezone.utc),
        image_path="/2/media/upload", image_refusal="400",
        has_image=lambda post: bool(post["media_ids"]),
        verify_names=f"@{X_USERNAME} (id {X_USER_ID})",
        lookup_paths=("/tweets",), page_size=100,
        faults={**COMMON_FAULTS, **DUPLICATE_AND_PERMISSIONS}),
    account=lambda url: {
        "platform": "twitter", "api_base_url": url,
        "credentials": {key: "${%s}" % var for key, var in zip(CREDENTIALS, ENV)}},
    env=ENV,
)
