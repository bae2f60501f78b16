"""The fake Bluesky PDS: XRPC routes under ``/xrpc/``, {"error", "message"} bodies.

Routes and shapes as a PDS (with its AppView behind it) serves them:
``POST com.atproto.server.createSession`` ({identifier, password} -> did, handle,
accessJwt, refreshJwt; 401 AuthenticationRequired for a wrong password),
``POST com.atproto.server.refreshSession`` (Bearer refreshJwt; the old pair is
revoked), ``GET com.atproto.server.getSession``,
``POST com.atproto.repo.uploadBlob`` (raw body -> {"blob": {"$type": "blob",
"ref": {"$link": cid}, "mimeType", "size"}}),
``POST com.atproto.repo.createRecord`` (``app.bsky.feed.post`` checked as the
lexicon says: 300 graphemes and 3,000 bytes of text, facets within the text's
UTF-8 bytes, at most 3 langs, a thumb must be an uploaded blob of at most
1,000,000 bytes; the rkey must be a TID; a record key already used answers
500 InternalServerError, as today's PDS does (``state.duplicate`` = "400"
answers 400 RecordAlreadyExists instead, a possible future)),
``GET com.atproto.repo.getRecord`` (400 RecordNotFound) and
``GET app.bsky.feed.getAuthorFeed`` (newest first, ``limit`` up to 100, an
opaque ``cursor``).

Access tokens expire when the test says: ``state.expire_access()`` expires
every access token issued so far, ``state.expire_refresh()`` every refresh token.

Fault kinds for ``fake.script``: "400" (InvalidRequest, ``message=``), "401"
(AuthenticationRequired), "429" (RateLimitExceeded, ``reset=`` epoch seconds in
``ratelimit-reset``), "500", "503", "expired" (400 ExpiredToken), "takedown" (401
AccountTakedown), "200-no-uri", and the shared kinds of ``shapes.Api`` ("502",
"hang", "slow-accept": recorded, answered late, i.e. a timeout after the record
was made, "trickle", the raw shapes).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

import regex

from bot.adapters.bluesky_text import is_tid, tid
from bot.errors import Suspended

from .shapes import COMMON_FAULTS, RESET_EPOCH, Answer, Api, Contract, FakePlatform, Reply

BSKY_HANDLE = "herald-test.bsky.social"
BSKY_DID = "did:plc:heraldtest4fake2bsky3acct"
BSKY_PASSWORD = "fake-bsky-pass-0001"        # app passwords look like xxxx-xxxx-xxxx-xxxx
POST_NSID = "app.bsky.feed.post"
FEED_MAX = 100               # getAuthorFeed's cap on ``limit``
TEXT_GRAPHEMES, TEXT_BYTES = 300, 3000
THUMB_MAX = 1_000_000        # app.bsky.embed.external thumb maxSize
BLOB_MAX = 5_000_000
NO_AUTH = ("com.atproto.server.createSession", "com.atproto.server.describeServer")


@dataclass
class BskyAccount:
    did: str
    handle: str
    password: str


@dataclass
class BlueskyState:
    """What one fake server's PDS holds beside ``fake.posts``: accounts, tokens, blobs."""

    accounts: dict = field(default_factory=lambda: {
        BSKY_HANDLE: BskyAccount(BSKY_DID, BSKY_HANDLE, BSKY_PASSWORD)})
    access: dict = field(default_factory=dict)       # token -> did
    refresh: dict = field(default_factory=dict)      # token -> did
    expired: set = field(default_factory=set)        # tokens past their time
    blobs: dict = field(default_factory=dict)        # cid -> size
    records: dict = field(default_factory=dict)      # (did, rkey) -> recorded post
    logins: int = 0
    refreshes: int = 0
    duplicate: str = "500"                           # how a used rkey is answered
    lock: threading.Lock = field(default_factory=threading.Lock)
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add_account(self, handle: str, password: str, did: str) -> None:
        self.accounts[handle] = BskyAccount(did, handle, password)

    def issue(self, did: str) -> tuple[str, str]:
        """A new access and refresh token pair for ``did``."""
        with self.lock:
            n = next(self._n)
            access, refresh = f"fake-bsky-access-{n:04d}", f"fake-bsky-refresh-{n:04d}"
            self.access[access], self.refresh[refresh] = did, did
        return access, refresh

    def expire_access(self) -> None:
        self.expired.update(self.access)

    def expire_refresh(self) -> None:
        self.expired.update(self.refresh)

    def account_of(self, did_or_handle: str) -> BskyAccount | None:
        return next((a for a in self.accounts.values() if did_or_handle in (a.did, a.handle)),
                    None)


def iso(epoch: float) -> str:
    """An atproto datetime: UTC, milliseconds, "Z"."""
    when = datetime.fromtimestamp(epoch, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def cid_of(data: bytes, prefix: str = "bafyrei") -> str:
    return prefix + hashlib.sha256(data).hexdigest()[:52]


def seed(fake, state: BlueskyState, count: int, at: datetime, text: str = "Older story") -> None:
    """``count`` posts the default account made at ``at``."""
    for n in range(count):
        rkey = tid(int(at.timestamp() * 1_000_000) + n, 7)
        record = {"$type": POST_NSID, "text": f"{text} {n}", "createdAt": iso(at.timestamp())}
        post = {"platform": "bluesky", "account": BSKY_HANDLE, "did": BSKY_DID, "rkey": rkey,
                "id": f"at://{BSKY_DID}/{POST_NSID}/{rkey}", "cid": cid_of(rkey.encode()),
                "text": record["text"], "link": None, "thumb": None, "record": record,
                "at": at.timestamp()}
        state.records[(BSKY_DID, rkey)] = post
        fake.record(post)


class BlueskyApi(Api):
    """A PDS's XRPC: Bearer session tokens, {"error": Name, "message": ...} bodies."""

    account: BskyAccount | None = None

    @property
    def nsid(self) -> str:
        return self.req.path[len("/xrpc/"):]

    def authenticate(self) -> Reply | None:
        if self.nsid in NO_AUTH:
            return None
        scheme, _, token = self.req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        tokens = (self.state.refresh if self.nsid == "com.atproto.server.refreshSession"
                  else self.state.access)
        if token in self.state.expired:
            return self.error(400, "ExpiredToken", "Token has expired")
        if token not in tokens:
            return self.error(400, "InvalidToken", "Token could not be verified")
        self.token, self.account = token, self.state.account_of(tokens[token])
        return None

    def error(self, status: int, name: str, message: str, headers: dict | None = None) -> Reply:
        return Reply(status, {"error": name, "message": message}, headers or {})

    def fault(self, f: Answer) -> Reply:
        msg = f.params.get("message")
        if f.kind in ("500", "503"):
            name = "InternalServerError" if f.kind == "500" else "NotEnoughResources"
            return self.error(int(f.kind), name, msg or "Internal Server Error")
        if f.kind == "429":
            return self.rate_limited(f.params.get("reset"))
        if f.kind == "401":
            return self.error(401, "AuthenticationRequired", msg or "Invalid identifier or password")
        if f.kind == "expired":
            return self.error(400, "ExpiredToken", msg or "Token has expired")
        if f.kind == "takedown":
            return self.error(401, "AccountTakedown", msg or "Account has been taken down")
        if f.kind == "200-no-uri":
            return Reply(200, {"validationStatus": "valid"})
        return self.error(400, "InvalidRequest", msg or "Input/record must be an object")

    def rate_limited(self, reset) -> Reply:
        headers = {"ratelimit-limit": "3000", "ratelimit-remaining": "0",
                   "ratelimit-policy": "3000;w=300"}
        if reset is not None:
            headers["ratelimit-reset"] = str(reset)
        return self.error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)

    def route(self) -> Reply:
        routes = {
            ("POST", "com.atproto.server.createSession"): self.create_session,
            ("POST", "com.atproto.server.refreshSession"): self.refresh_session,
            ("GET", "com.atproto.server.getSession"): self.get_session,
            ("POST", "com.atproto.repo.uploadBlob"): self.upload_blob,
            ("POST", "com.atproto.repo.createRecord"): self.create_record,
            ("GET", "com.atproto.repo.getRecord"): self.get_record,
            ("GET", "app.bsky.feed.getAuthorFeed"): self.author_feed,
        }
        handler = routes.get((self.req.method, self.nsid))
        if handler is None:
            return self.error(501, "MethodNotImplemented", f"Method Not Implemented: {self.nsid}")
        return handler()

    def body(self) -> dict:
        try:
            body = json.loads(self.req.body or b"{}")
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {}

    # --- sessions

    def create_session(self) -> Reply:
        body = self.body()
        ident = str(body.get("identifier") or "").lstrip("@")
        account = self.state.account_of(ident)
        if account is None or body.get("password") != account.password:
            return self.error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.state.logins += 1
        return Reply(200, self.session_json(account, *self.state.issue(account.did)))

    def refresh_session(self) -> Reply:
        with self.state.lock:
            self.state.refresh.pop(self.token, None)   # a refresh token is used once
        self.state.refreshes += 1
        return Reply(200, self.session_json(self.account, *self.state.issue(self.account.did)))

    def get_session(self) -> Reply:
        return Reply(200, {"did": self.account.did, "handle": self.account.handle,
                           "active": True, "emailConfirmed": True})

    def session_json(self, account: BskyAccount, access: str, refresh: str) -> dict:
        return {"did": account.did, "handle": account.handle, "accessJwt": access,
                "refreshJwt": refresh, "active": True,
                "didDoc": {"id": account.did, "service": [{
                    "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": f"http://{self.req.host}"}]}}

    # --- blobs and records

    def upload_blob(self) -> Reply:
        data = self.req.body
        if len(data) > BLOB_MAX:
            return self.error(400, "BlobTooLarge", "This file is too large")
        cid = cid_of(data, "bafkrei")
        self.state.blobs[cid] = len(data)
        mime = self.req.headers.get("content-type", "*/*")
        return Reply(200, {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime,
                                    "size": len(data)}})

    def create_record(self) -> Reply:
        body = self.body()
        repo = self.state.account_of(str(body.get("repo") or ""))
        if repo is None or repo.did != self.account.did:
            return self.error(400, "InvalidRequest", "Invalid repo: not the session's account")
        if body.get("collection") != POST_NSID:
            return self.error(400, "InvalidRequest", "Unsupported collection")
        record = body.get("record")
        problem = self.problem(record) if isinstance(record, dict) else "Record must be an object"
        if problem:
            return self.error(400, "InvalidRequest", f"Invalid {POST_NSID} record: {problem}")
        rkey = body.get("rkey") or tid(int(self.fake.clock().timestamp() * 1e6), 0)
        if not isinstance(rkey, str) or not is_tid(rkey):
            return self.error(400, "InvalidRequest", "Invalid record key: must be a TID")
        return self.store(record, rkey)

    def store(self, record: dict, rkey: str) -> Reply:
        did, uri = self.account.did, f"at://{self.account.did}/{POST_NSID}/{rkey}"
        cid = cid_of(json.dumps(record, sort_keys=True).encode())
        with self.state.lock:
            if (did, rkey) in self.state.records:
                return self.duplicate(uri)
            embed = record.get("embed") or {}
            external = embed.get("external") or {}
            post = {"platform": "bluesky", "account": self.account.handle, "did": did,
                    "rkey": rkey, "id": uri, "cid": cid, "text": record["text"],
                    "link": external.get("uri"), "record": record,
                    "thumb": ((external.get("thumb") or {}).get("ref") or {}).get("$link")}
            self.state.records[(did, rkey)] = post
        self.fake.record(post)
        return Reply(200, {"uri": uri, "cid": cid, "validationStatus": "valid",
                           "commit": {"cid": cid_of(uri.encode()), "rev": rkey}})

    def duplicate(self, uri: str) -> Reply:
        if self.state.duplicate == "400":
            return self.error(400, "RecordAlreadyExists", f"Record already exists: {uri}")
        return self.error(500, "InternalServerError", "Internal Server Error")

    def problem(self, record: dict) -> str:
        """What the lexicon (and the PDS) finds wrong with a post record, or ""."""
        text = record.get("text")
        if record.get("$type") != POST_NSID or not isinstance(text, str):
            return "Record/text must be a string"
        if len(regex.findall(r"\X", text)) > TEXT_GRAPHEMES:
            return f"Record/text must not be longer than {TEXT_GRAPHEMES} graphemes"
        if len(text.encode("utf-8")) > TEXT_BYTES:
            return f"Record/text must not be longer than {TEXT_BYTES} characters"
        if not _datetime(record.get("createdAt")):
            return "Record/createdAt must be an valid atproto datetime"
        langs = record.get("langs", [])
        if not isinstance(langs, list) or len(langs) > 3:
            return "Record/langs must not have more than 3 elements"
        return self.facet_problem(text, record.get("facets", [])) or self.embed_problem(record)

    def facet_problem(self, text: str, facets) -> str:
        size = len(text.encode("utf-8"))
        for facet in facets if isinstance(facets, list) else [None]:
            index = facet.get("index") if isinstance(facet, dict) else None
            start, end = (index or {}).get("byteStart"), (index or {}).get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                return "Record/facets/index must lie within the text"
        return ""

    def embed_problem(self, record: dict) -> str:
        embed = record.get("embed")
        if embed is None:
            return ""
        external = embed.get("external") if isinstance(embed, dict) else None
        if not isinstance(external, dict) or embed.get("$type") != "app.bsky.embed.external":
            return "Record/embed must be an app.bsky.embed.external"
        if not all(isinstance(external.get(k), str) for k in ("uri", "title", "description")):
            return "Record/embed/external must have uri, title and description"
        thumb = external.get("thumb")
        if thumb is None:
            return ""
        cid = ((thumb.get("ref") if isinstance(thumb, dict) else None) or {}).get("$link")
        if cid not in self.state.blobs:
            return "Could not find blob: Record/embed/external/thumb"
        if self.state.blobs[cid] > THUMB_MAX:
            return f"Record/embed/external/thumb file too large ({THUMB_MAX} bytes maximum)"
        return ""

    def get_record(self) -> Reply:
        q = self.req.query
        account = self.state.account_of(q.get("repo", ""))
        post = self.state.records.get((account.did if account else "", q.get("rkey", "")))
        if q.get("collection") != POST_NSID or post is None:
            return self.error(400, "RecordNotFound", "Could not locate record")
        return Reply(200, {"uri": post["id"], "cid": post["cid"], "value": post["record"]})

    # --- the author feed

    def author_feed(self) -> Reply:
        q = self.req.query
        account = self.state.account_of(q.get("actor", ""))
        if account is None:
            return self.error(400, "InvalidRequest", "Profile not found")
        limit = int(q["limit"]) if q.get("limit", "").isdigit() else 50
        if not 1 <= limit <= FEED_MAX:
            return self.error(400, "InvalidRequest", f"limit must be 1 to {FEED_MAX}")
        posts = self.fake.posts_of("did", account.did)
        cursors = [_cursor(p) for p in posts]
        start = cursors.index(q["cursor"]) + 1 if q.get("cursor") in cursors else 0
        if q.get("cursor") and start == 0:
            return self.error(400, "InvalidRequest", "Malformed cursor")
        page = posts[start:start + limit]
        body = {"feed": [{"post": self.post_view(p, account)} for p in page]}
        if start + limit < len(posts):
            body["cursor"] = cursors[start + limit - 1]
        return Reply(200, body)

    def post_view(self, post: dict, account: BskyAccount) -> dict:
        view = {"uri": post["id"], "cid": post["cid"], "record": post["record"],
                "author": {"did": account.did, "handle": account.handle},
                "indexedAt": iso(post["at"]), "replyCount": 0, "repostCount": 0,
                "likeCount": 0, "labels": []}
        external = (post["record"].get("embed") or {}).get("external")
        if external:
            view["embed"] = {"$type": "app.bsky.embed.external#view", "external": {
                k: external[k] for k in ("uri", "title", "description")}}
        return view


def _cursor(post: dict) -> str:
    return f"{iso(post['at'])}::{post['cid'][-12:]}"


def _datetime(value) -> bool:
    if not isinstance(value, str) or not value.endswith(("Z", "+00:00")):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _flags(parser) -> None:
    parser.add_argument("--bsky-account", action="append", default=[],
                        metavar="HANDLE:PASSWORD:DID", help="another Bluesky account the fake accepts")


def _configure(state: BlueskyState, args) -> None:
    for spec in args.bsky_account:
        handle, password, did = spec.split(":", 2)
        state.add_account(handle, password, did)


ENV = {"BLUESKY_APP_PASSWORD": BSKY_PASSWORD}

FAKE = FakePlatform(
    name="bluesky", api=BlueskyApi, claims=lambda req: req.path.startswith("/xrpc/"),
    seed=seed, state=BlueskyState, posting=("com.atproto.repo.createRecord",),
    flags=_flags, configure=_configure,
    contract=Contract(
        credentials={"app_password": BSKY_PASSWORD},
        wrong={"app_password": "wrong-bsky-pass-0001"},
        options=lambda url: {"service": url, "handle": BSKY_HANDLE},
        until=datetime.fromtimestamp(RESET_EPOCH, timezone.utc),
        image_path="com.atproto.repo.uploadBlob", image_refusal="400",
        has_image=lambda post: bool(post.get("thumb")),
        verify_names=f"@{BSKY_HANDLE} ({BSKY_DID})",
        lookup_paths=("app.bsky.feed.getAuthorFeed",), page_size=FEED_MAX,
        faults={**COMMON_FAULTS, "takedown": Suspended}),
    account=lambda url: {"platform": "bluesky", "service": url, "handle": BSKY_HANDLE,
                         "credentials": {"app_password": "${BLUESKY_APP_PASSWORD}"}},
    env=ENV,
)
