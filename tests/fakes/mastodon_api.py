"""The fake Mastodon REST API: Bearer tokens, {"error": ...} bodies, Idempotency-Key, Link paging.

Routes and shapes as Mastodon 4.x serves them:
``POST /api/v1/statuses`` (form or JSON; an ``Idempotency-Key`` seen before from
the same account answers the status it made then, as Mastodon does for an hour),
``POST /api/v2/media`` (200 when processed, 202 with ``url: null`` while it is
processed; ``fake.states["mastodon"].processing_polls`` sets how many polls),
``GET /api/v1/media/:id`` (206 while processing, then 200),
``GET /api/v1/accounts/verify_credentials``,
``GET /api/v1/accounts/:id/statuses`` (newest first, ``limit`` up to 40,
``max_id`` paging announced in a ``Link`` header) and ``GET /api/v2/instance``
(``configuration.statuses``; no token needed).

Fault kinds for ``fake.script``: "401", "403" (not allowed), "403-suspended"
(login disabled), "403-permissions" (outside the token's scopes), "400"/"422"
(validation, ``message=``), "429" (``reset=`` epoch seconds, an ISO 8601 string
or a datetime, sent as Mastodon does: ISO 8601; None sends no X-RateLimit-Reset),
"500", "503", "200-no-id", and the shared kinds of ``shapes.Api`` ("502",
"hang", "slow-accept": recorded and answered late, i.e. a timeout after the
post was made, "trickle", and the raw shapes).
"""
from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode

from bot.errors import AuthFailed, Rejected, Suspended

from .shapes import COMMON_FAULTS, RESET_EPOCH, Answer, Api, Contract, FakePlatform, Reply
from .x_api import _multipart  # the same multipart reading as X's upload

MASTODON_TOKEN = "fake-mastodon-token-0001"
MASTODON_ACCOUNT_ID = "109000000000000001"
MASTODON_USERNAME = "herald_test"
MASTODON_DOMAIN = "social.example"
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")
URL_RE = re.compile(r"https?://[^\s<>\"]+")
TAG_RE = re.compile(r"(?<![\w/])#(\w+)")
PAGE_MAX = 40                 # Mastodon's cap on ``limit`` for account statuses
DESCRIPTION_MAX = 1500        # alt text, characters
IDEMPOTENCY_SPAN = 3600.0     # seconds Mastodon remembers an Idempotency-Key


@dataclass
class MastodonAccount:
    account_id: str
    username: str


@dataclass
class MastodonState:
    """What one fake server's Mastodon holds beside ``fake.posts``."""

    accounts: dict = field(default_factory=lambda: {
        MASTODON_TOKEN: MastodonAccount(MASTODON_ACCOUNT_ID, MASTODON_USERNAME)})
    max_characters: int = 500
    url_reserved: int = 23
    instance_body: object = None        # set to answer /api/v2/instance with this instead
    processing_polls: int = 0           # polls of /api/v1/media/:id before it is ready
    media: dict = field(default_factory=dict)          # id -> {"description", "polls", owner}
    idempotency: dict = field(default_factory=dict)    # (account id, key) -> (status, at)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_account(self, token: str, account_id: str, username: str) -> None:
        self.accounts[token] = MastodonAccount(account_id, username)


def seed(fake, state: MastodonState, count: int, at: datetime, text: str = "Older story") -> None:
    """Record ``count`` statuses the default account made at ``at``."""
    for n in range(count):
        fake.record({"platform": "mastodon", "account": MASTODON_USERNAME,
                     "account_id": MASTODON_ACCOUNT_ID, "text": f"{text} {n}", "link": None,
                     "id": fake.next_id(), "media": [], "visibility": "public",
                     "language": None, "spoiler_text": "", "at": at.timestamp()})


class MastodonApi(Api):
    """Mastodon's REST API as the adapter meets it; see the module."""

    state: MastodonState
    account: MastodonAccount | None = None

    def authenticate(self) -> Reply | None:
        if self.req.path.rstrip("/") == "/api/v2/instance":
            return None                     # public, as on most instances
        scheme, _, token = self.req.headers.get("authorization", "").partition(" ")
        self.account = self.state.accounts.get(token) if scheme.lower() == "bearer" else None
        if self.account is None:
            return self.error(401, "The access token is invalid")
        return None

    def error(self, status: int, message: str, headers: dict | None = None) -> Reply:
        return Reply(status, {"error": message}, headers or {})

    def fault(self, f: Answer) -> Reply:
        msg = f.params.get("message")
        if f.kind == "429":
            return self.rate_limited(f.params.get("reset", "default"))
        if f.kind in ("500", "503"):
            return self.error(int(f.kind), msg or "We're sorry, but something went wrong.")
        if f.kind == "401":
            return self.error(401, msg or "The access token was revoked")
        if f.kind == "403-suspended":
            return self.error(403, msg or "Your login is currently disabled")
        if f.kind == "403-permissions":
            return self.error(403, msg or "This action is outside the authorized scopes")
        if f.kind == "403":
            return self.error(403, msg or "This action is not allowed")
        if f.kind == "200-no-id":
            return Reply(200, {"content": "<p>accepted, but which?</p>"})
        return self.error(422, msg or "Validation failed: Text can't be blank")

    def rate_limited(self, reset) -> Reply:
        if reset == "default":
            reset = datetime.now(timezone.utc) + timedelta(minutes=5)
        if isinstance(reset, (int, float)) and not isinstance(reset, bool):
            reset = datetime.fromtimestamp(reset, timezone.utc)
        if isinstance(reset, datetime):
            reset = reset.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                   **({"X-RateLimit-Reset": reset} if reset is not None else {})}
        return self.error(429, "Too many requests", headers)

    # --- routes

    def route(self) -> Reply:
        method, path = self.req.method, self.req.path.rstrip("/")
        if method == "POST" and path == "/api/v1/statuses":
            return self.post_status()
        if method == "POST" and path == "/api/v2/media":
            return self.upload()
        match = re.fullmatch(r"/api/v1/media/(\w+)", path)
        if method == "GET" and match:
            return self.media(match.group(1))
        if method == "GET" and path == "/api/v1/accounts/verify_credentials":
            return Reply(200, self.account_json(self.account, source=True))
        match = re.fullmatch(r"/api/v1/accounts/(\w+)/statuses", path)
        if method == "GET" and match:
            return self.statuses(match.group(1))
        if method == "GET" and path == "/api/v2/instance":
            return Reply(200, self.instance())
        return self.error(404, "Record not found")

    def params(self) -> tuple[dict, list[str]]:
        """The status parameters (form or JSON) and its media ids."""
        kind = self.req.headers.get("content-type", "")
        if "json" in kind:
            body = json.loads(self.req.body or b"{}")
            return body, [str(m) for m in body.get("media_ids") or []]
        pairs = parse_qsl(self.req.body.decode(), keep_blank_values=True)
        return dict(pairs), [v for k, v in pairs if k in ("media_ids[]", "media_ids")]

    def post_status(self) -> Reply:
        key = self.req.headers.get("idempotency-key")
        now = self.fake.clock().timestamp()
        with self.state.lock:      # one request at a time per key, as Mastodon's lock
            seen = self.state.idempotency.get((self.account.account_id, key)) if key else None
            if seen and now - seen[1] < IDEMPOTENCY_SPAN:
                return Reply(200, seen[0])
            reply = self._create(key)
            if key and reply.status == 200:
                self.state.idempotency[(self.account.account_id, key)] = (reply.body, now)
            return reply

    def _create(self, key: str | None) -> Reply:
        try:
            p, media_ids = self.params()
        except ValueError:
            return self.error(400, "Invalid JSON")
        text = p.get("status") or ""
        if not text.strip() and not media_ids:
            return self.error(422, "Validation failed: Text can't be blank")
        limit = self.state.max_characters
        if self.count(text) + len(p.get("spoiler_text") or "") > limit:
            return self.error(422, f"Validation failed: Text character limit of {limit} exceeded")
        media = [self.state.media.get(m) for m in media_ids]
        if any(m is None or m["owner"] != self.account.account_id for m in media):
            return self.error(422, "Validation failed: Media attachments is invalid")
        if any(m["polls"] > 0 for m in media):
            return self.error(422, "Cannot attach files that have not finished processing. "
                              "Try again in a moment!")
        links = URL_RE.findall(text)
        post = {"platform": "mastodon", "account": self.account.username,
                "account_id": self.account.account_id, "text": text,
                "link": links[0] if links else None, "id": self.fake.next_id(),
                "media": [{"id": i, "description": m["description"]}
                          for i, m in zip(media_ids, media)],
                "visibility": p.get("visibility") or "public",
                "language": p.get("language") or None,
                "spoiler_text": p.get("spoiler_text") or "", "idempotency_key": key}
        self.fake.record(post)
        return Reply(200, self.status_json(post))

    def count(self, text: str) -> int:
        """Mastodon's count: characters, every URL as ``url_reserved``."""
        urls = URL_RE.findall(text)
        return len(URL_RE.sub("", text)) + self.state.url_reserved * len(urls)

    def upload(self) -> Reply:
        parts = _multipart(self.req.headers.get("content-type", ""), self.req.body)
        data = parts.get("file")
        if data is None:
            return self.error(422, "Validation failed: File can't be blank")
        if not data.startswith(IMAGE_MAGIC):
            return self.error(422, "Validation failed: File content type is invalid")
        description = parts.get("description", b"").decode()
        if len(description) > DESCRIPTION_MAX:
            return self.error(422, "Validation failed: Description is too long "
                              f"(maximum is {DESCRIPTION_MAX} characters)")
        media_id = self.fake.next_id()
        polls = self.state.processing_polls
        with self.state.lock:
            self.state.media[media_id] = {"description": description or None, "polls": polls,
                                          "owner": self.account.account_id}
        return Reply(202 if polls else 200, self.media_json(media_id))

    def media(self, media_id: str) -> Reply:
        with self.state.lock:
            m = self.state.media.get(media_id)
            if m is None or m["owner"] != self.account.account_id:
                return self.error(404, "Record not found")
            m["polls"] = max(0, m["polls"] - 1)
        return Reply(206 if m["polls"] else 200, self.media_json(media_id))

    def statuses(self, account_id: str) -> Reply:
        """Newest first; ``max_id`` pages back; ``limit`` 1..40 (default 20)."""
        q = self.req.query
        try:
            limit = max(1, min(int(q.get("limit", "20")), PAGE_MAX))
        except ValueError:
            return self.error(400, "Invalid limit")
        mine = [p for p in self.fake.posts_of("account_id", account_id)
                if p["platform"] == "mastodon"]
        if "max_id" in q:
            mine = [p for p in mine if int(p["id"]) < int(q["max_id"])]
        page = mine[:limit]
        headers = {}
        if page:
            base = f"http://{self.req.host}/api/v1/accounts/{account_id}/statuses"
            newer = urlencode({"limit": limit, "min_id": page[0]["id"]})
            links = [f'<{base}?{newer}>; rel="prev"']
            if len(page) == limit:      # Mastodon offers "next" only after a full page
                older = urlencode({"limit": limit, "max_id": page[-1]["id"]})
                links.insert(0, f'<{base}?{older}>; rel="next"')
            headers["Link"] = ", ".join(links)
        return Reply(200, [self.status_json(p) for p in page], headers)

    def instance(self) -> object:
        if self.state.instance_body is not None:
            return self.state.instance_body
        return {"domain": MASTODON_DOMAIN, "title": "Fake Social", "version": "4.3.2",
                "source_url": "https://github.com/mastodon/mastodon",
                "api_versions": {"mastodon": 2},
                "configuration": {
                    "urls": {"streaming": f"wss://{MASTODON_DOMAIN}"},
                    "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                    "statuses": {"max_characters": self.state.max_characters,
                                 "max_media_attachments": 4,
                                 "characters_reserved_per_url": self.state.url_reserved},
                    "media_attachments": {"image_size_limit": 16777216,
                                          "description_limit": DESCRIPTION_MAX}}}

    # --- shapes

    def account_json(self, account: MastodonAccount, source: bool = False) -> dict:
        body = {"id": account.account_id, "username": account.username,
                "acct": account.username, "display_name": "Herald Test",
                "url": f"https://{MASTODON_DOMAIN}/@{account.username}", "locked": False,
                "bot": True, "created_at": "2024-01-01T00:00:00.000Z", "statuses_count": 0}
        if source:
            body["source"] = {"privacy": "public", "sensitive": False, "language": "en",
                              "note": "", "fields": []}
        return body

    def media_json(self, media_id: str) -> dict:
        m = self.state.media[media_id]
        ready = m["polls"] == 0
        url = f"https://files.{MASTODON_DOMAIN}/media/{media_id}.png"
        return {"id": media_id, "type": "image", "url": url if ready else None,
                "preview_url": url, "remote_url": None, "description": m["description"],
                "blurhash": None, "meta": {}}

    def status_json(self, post: dict) -> dict:
        account = MastodonAccount(post["account_id"], post["account"])
        created = datetime.fromtimestamp(post["at"], timezone.utc)
        return {"id": post["id"], "uri": f"https://{MASTODON_DOMAIN}/users/{account.username}"
                f"/statuses/{post['id']}",
                "url": f"https://{MASTODON_DOMAIN}/@{account.username}/{post['id']}",
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created:%f}"[:3] + "Z",
                "account": self.account_json(account), "content": rendered(post["text"]),
                "visibility": post["visibility"], "sensitive": bool(post["spoiler_text"]),
                "spoiler_text": post["spoiler_text"], "language": post["language"],
                "media_attachments": [{"id": m["id"], "type": "image",
                                       "description": m["description"]} for m in post["media"]],
                "mentions": [], "tags": [], "emojis": [], "card": None, "poll": None,
                "reblog": None, "in_reply_to_id": None, "replies_count": 0,
                "reblogs_count": 0, "favourites_count": 0}


def rendered(text: str) -> str:
    """``text`` as Mastodon renders it: escaped, links and hashtags as anchors, paragraphs."""
    def link(url: str) -> str:
        scheme, _, rest = url.partition("://")
        shown, hidden = rest[:30], rest[30:]
        return (f'<a href="{url}" target="_blank" rel="nofollow noopener" translate="no">'
                f'<span class="invisible">{scheme}://</span><span class="'
                f'{"ellipsis" if hidden else ""}">{shown}</span>'
                f'<span class="invisible">{hidden}</span></a>')

    def tag(match: re.Match) -> str:
        return (f'<a href="https://{MASTODON_DOMAIN}/tags/{match[1].lower()}" '
                f'class="mention hashtag" rel="tag">#<span>{match[1]}</span></a>')

    def render(piece: str) -> str:
        out, last = [], 0
        for m in URL_RE.finditer(piece):
            out.append(TAG_RE.sub(tag, html.escape(piece[last:m.start()], quote=False)))
            out.append(link(html.escape(m.group(), quote=True)))
            last = m.end()
        out.append(TAG_RE.sub(tag, html.escape(piece[last:], quote=False)))
        return "".join(out).replace("\n", "<br />")

    return "".join(f"<p>{render(p)}</p>" for p in text.split("\n\n"))


def _flags(parser) -> None:
    parser.add_argument("--mastodon-account", action="append", default=[],
                        metavar="TOKEN:ID:USERNAME", help="another Mastodon account the fake accepts")


def _configure(state: MastodonState, args) -> None:
    for spec in args.mastodon_account:
        state.add_account(*spec.split(":", 2))


CREDENTIALS: Mapping[str, str] = {"access_token": MASTODON_TOKEN}
ENV: Mapping[str, str] = {"MASTODON_ACCESS_TOKEN": MASTODON_TOKEN}

FAKE = FakePlatform(
    name="mastodon", api=MastodonApi, claims=lambda req: req.path.startswith("/api/"),
    seed=seed, state=MastodonState, posting=("/api/v1/statuses",), flags=_flags,
    configure=_configure,
    contract=Contract(
        credentials=CREDENTIALS, wrong={"access_token": "wrong-mastodon-token-0001"},
        options=lambda url: {"api_base_url": url},
        until=datetime.fromtimestamp(RESET_EPOCH, timezone.utc),
        image_path="/api/v2/media", image_refusal="422",
        has_image=lambda post: bool(post["media"]),
        verify_names=f"@{MASTODON_USERNAME} (id {MASTODON_ACCOUNT_ID})",
        lookup_paths=("/statuses",), page_size=PAGE_MAX,
        faults={**COMMON_FAULTS, "403-permissions": AuthFailed, "403-suspended": Suspended,
                "403": Suspended, "422": Rejected}),
    account=lambda url: {"platform": "mastodon", "api_base_url": url,
                         "credentials": {"access_token": "${MASTODON_ACCESS_TOKEN}"}},
    env=ENV,
)
