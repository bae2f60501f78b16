"""The Bluesky platform: plain XRPC over a ``PlatformSession``, no SDK.

The ``atproto`` SDK (0.0.73) builds its own httpx client with redirects
followed and no total deadline (a trickling server holds a job for ever), lets
other httpx errors escape untranslated, keeps the session tokens in reprs, and
brings pydantic, httpx, cryptography, dnspython and libipld for five JSON
routes. So Herald speaks the routes itself, through the session every adapter
uses (deadline, no redirects, ``ERRORS`` read before any answer is used).

Login is an app password (``com.atproto.server.createSession``, limited to 30
a 5 minutes and 300 a day per account), so the tokens are kept in memory,
wrapped in ``Secret``, and renewed with ``refreshSession`` when the PDS says
ExpiredToken; when the refresh token is refused too, it logs in again.

Each post's record key is a TID derived from the post (``bluesky_text``): a
retry names the same record, so a PDS that made it already refuses the second
(today with a 500; a conflict answer some day) and the record read back by
its key becomes AlreadyPosted with its URI.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import requests

from bot.adapters.answers import (REDIRECTED, SERVER, UNREADABLE_SUCCESS, Answer, Rule, answer_of,
                                  epoch, json_object, raise_unless_ok, require_id, retry_after)
from bot.adapters.base import LOOKUP_LIMIT, TIMEOUTS, Adapter, credential, Option
from bot.adapters.bluesky_text import clean_text, facets, record_key
from bot.adapters.lookup import squash
from bot.adapters.session import Limits, PlatformSession
from bot.errors import (AlreadyPosted, AuthFailed, HeraldError, RateLimited, Rejected, Suspended,
                        Transient)
from bot.models import Post, Receipt
from bot.secret import Secret, mask

log = logging.getLogger(__name__)

BSKY_SOCIAL = "https://bsky.social"
POST_NSID = "app.bsky.feed.post"
POST_URL = "https://bsky.app/profile/{}/post/{}"
PAGE_SIZE = 100                  # getAuthorFeed's maximum
DEFAULT_WAIT = timedelta(minutes=15)
THUMB_MAX = 1_000_000            # the lexicon's limit for a link card's thumb
TITLE_MAX, DESCRIPTION_MAX = 300, 1000   # characters of the card we send
IMAGE_TYPES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF8", "image/gif"), (b"RIFF", "image/webp"))
TAKEDOWN_ACTION = ("the Bluesky account is taken down, suspended or deactivated: settle it "
                   "with Bluesky, then run `run_bot.py resume {account}`")


class SessionExpired(AuthFailed):
    """The session's token expired: renew it and ask again (AuthFailed if it escapes)."""


def rate_wait(answer: Answer, now: datetime) -> datetime:
    """When a 429 lifts: ``ratelimit-reset`` (epoch seconds), else Retry-After, else 15 minutes."""
    reset = epoch(answer.headers.get("ratelimit-reset"), now)
    return reset if reset and reset > now else (retry_after(answer.headers, now)
                                                or now + DEFAULT_WAIT)


# The PDS's answers off the happy path, first match wins (see bot.adapters.answers).
ERRORS = (
    UNREADABLE_SUCCESS,
    REDIRECTED,
    Rule(SessionExpired, reason={"ExpiredToken", "InvalidToken"}, note="session expired"),
    Rule(Suspended, reason={"AccountTakedown", "AccountSuspended", "AccountDeactivated"},
         action=TAKEDOWN_ACTION),
    Rule(RateLimited, status={429}, wait=rate_wait),
    Rule(AuthFailed, reason={"AuthFactorTokenRequired"},
         note="the account asks for an emailed code: use an app password"),
    Rule(AuthFailed, status={401, 403}),
    Rule(Transient, status=SERVER),
    Rule(Transient, is_json=False),
    Rule(Rejected),               # 400 InvalidRequest (too long, bad facet), 413, ...
)


@dataclass
class Tokens:
    """One login: who, and the session's tokens (never shown)."""

    did: str
    handle: str
    access: Secret
    refresh: Secret


class BlueskyAdapter(Adapter):
    """Posts to Bluesky as ``handle`` with an app password, through ``service`` (its PDS)."""

    platform: ClassVar[str] = "bluesky"
    max_length: ClassVar[int] = 300
    url_length: ClassVar[int | None] = None     # a link in the text counts as written
    counting: ClassVar[str] = "graphemes"
    max_bytes: ClassVar[int | None] = 3000      # the record's text: 300 graphemes and 3,000 bytes
    credentials: ClassVar[Mapping[str, Option]] = {
        "app_password": credential(help="an app password (Settings → Privacy and security → "
                                        "App passwords), never the account's own password"),
    }
    options: ClassVar[Mapping[str, Option]] = {
        "service": Option(str, BSKY_SOCIAL, help="the PDS (or entryway) to log in at"),
        "handle": Option(str, required=True, help="the account's handle (or its email)"),
        "languages": Option(str, help='the posts\' language tags, comma-separated ("en, fr"; '
                                      "at most 3); else the article's language"),
        "link_card": Option(bool, True, help="attach a link card (title, description)"),
        "attach_image": Option(bool, True, help="give the card the article's image as its "
                                                "thumbnail (Bluesky draws none itself)"),
        **TIMEOUTS,
    }

    _http: PlatformSession | None = None
    _tokens: Tokens | None = None

    # --- the API

    def publish(self, post: Post) -> Receipt:
        """Create ``post`` as an app.bsky.feed.post record (facets, langs, link card)
        under a record key derived from it; return its receipt (the at:// URI).

        Raises AuthFailed (wrong app password, a session that cannot be renewed),
        Suspended (account taken down or deactivated), RateLimited (429, until
        ``ratelimit-reset``), Transient (5xx, timeout, deadline, an answer without a
        URI: outcome unknown), AlreadyPosted (an earlier try made the record: its
        URI) or Rejected (400: too long, invalid; the PDS's message kept)."""
        tokens = self._session()
        rkey = record_key(post.account, post.key, post.link)
        record = self._record(post)
        try:
            body = self._xrpc("POST", "com.atproto.repo.createRecord", json={
                "repo": tokens.did, "collection": POST_NSID, "rkey": rkey, "record": record})
        except (Transient, Rejected) as exc:
            if answer_of(exc) is not None:     # an answer, not a timeout: is the record there?
                self._raise_if_made(rkey, exc)
            raise
        return self._receipt(body.get("uri"), rkey)

    def verify(self) -> str:
        """Return "@handle (did:plc:…)" for the session. Raises like ``publish``."""
        body = self._xrpc("GET", "com.atproto.server.getSession")
        return f"@{body.get('handle')} ({require_id(body.get('did'), 'Bluesky')})"

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        """Find ``post`` (its record key, link or text) in the account's author feed
        since ``since``, page by page; None only when all of it was seen.

        The feed comes from the AppView, which may not list a record made a second
        ago: a retry that follows a None is still safe, since the record key makes
        the PDS refuse a second copy. Raises Rejected beyond LOOKUP_LIMIT posts,
        Transient for a page that is not whole, otherwise like ``publish``."""
        tokens = self._session()
        rkey = record_key(post.account, post.key, post.link)
        cursor, seen = None, 0
        while True:
            items, cursor = self._feed_page(tokens.did, cursor)
            for item in items:
                # The feed has no "since": the post after the last one looked at tells
                # whether more were posted since then.
                if _sort_at(item) < since:
                    return None
                if seen >= LOOKUP_LIMIT:
                    raise Rejected(f"cannot look up recent posts: more than {LOOKUP_LIMIT} "
                                   f"posts since {since:%Y-%m-%d %H:%M} UTC")
                if _matches(item, post, rkey, tokens.did):
                    return self._receipt(item.get("uri"), rkey)
                seen += 1
            if not (cursor and items):
                return None

    # --- the record

    def _record(self, post: Post) -> dict:
        text = clean_text(post.text)
        record: dict[str, Any] = {"$type": POST_NSID, "text": text,
                                  "createdAt": _datetime(self.clock())}
        found = facets(text, post.link)
        if found:
            record["facets"] = found
        langs = self._languages(post)
        if langs:
            record["langs"] = langs
        if self.opts["link_card"] and post.link:
            record["embed"] = self._card(post)
        return record

    def _languages(self, post: Post) -> list[str]:
        configured = self.opts.get("languages") or []
        if isinstance(configured, str):
            configured = configured.split(",")
        langs = [str(lang).strip() for lang in configured if str(lang).strip()]
        if not langs and post.language:
            langs = [post.language]
        return langs[:3]           # the lexicon allows three

    def _card(self, post: Post) -> dict:
        external: dict[str, Any] = {
            "uri": post.link, "title": clean_text(post.title or post.link)[:TITLE_MAX],
            "description": clean_text(post.description)[:DESCRIPTION_MAX]}
        thumb = self._thumb(post)
        if thumb:
            external["thumb"] = thumb
        return {"$type": "app.bsky.embed.external", "external": external}

    def _thumb(self, post: Post) -> dict | None:
        """The card's thumbnail as an uploaded blob, or None: a picture that cannot be
        had costs only the picture. The account's trouble fails the post too."""
        return self.with_image(post, self._upload, reraise=(AuthFailed, RateLimited, Suspended))

    def _upload(self, data: bytes) -> dict:
        mime = next((kind for magic, kind in IMAGE_TYPES if data.startswith(magic)), None)
        if mime is None:
            raise Rejected("not a PNG, JPEG, GIF or WebP image")
        if len(data) > THUMB_MAX:
            raise Rejected(f"image larger than {THUMB_MAX} bytes, Bluesky's limit for a card")
        body = self._xrpc("POST", "com.atproto.repo.uploadBlob", data=data,
                          headers={"Content-Type": mime})
        blob = body.get("blob")
        if not (isinstance(blob, dict) and isinstance(blob.get("ref"), dict)):
            raise Rejected("uploadBlob answered without a blob")
        return blob

    def _raise_if_made(self, rkey: str, failure: Exception) -> None:
        """Raise AlreadyPosted when the record under ``rkey`` exists (an earlier try
        made it); return quietly when it does not or cannot be read."""
        try:
            body = self._xrpc("GET", "com.atproto.repo.getRecord", params={
                "repo": self._tokens.did, "collection": POST_NSID, "rkey": rkey})
        except HeraldError:
            return
        uri = body.get("uri")
        if isinstance(uri, str) and uri.endswith(f"/{rkey}"):
            raise AlreadyPosted(f"record {rkey} exists: an earlier try made it", platform_id=uri,
                                url=self._receipt(uri, rkey).url) from failure

    def _receipt(self, uri: Any, rkey: str) -> Receipt:
        uri = require_id(uri, "Bluesky")
        handle = self._tokens.handle if self._tokens else self.opts["handle"]
        return Receipt(platform_id=uri, url=POST_URL.format(handle, uri.rsplit("/", 1)[-1]),
                       extra={"rkey": rkey})

    def _feed_page(self, did: str, cursor: str | None) -> tuple[list[dict], str | None]:
        params = {"actor": did, "limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
        body = self._xrpc("GET", "app.bsky.feed.getAuthorFeed", params=params)
        feed = body.get("feed")
        if not isinstance(feed, list):
            raise Transient("Bluesky answered a feed page without a feed: cannot tell what it "
                            "holds")
        items = [i["post"] for i in feed if isinstance(i, dict) and isinstance(i.get("post"), dict)
                 and not i.get("reason")]          # reposts and pins are not our posts
        nxt = body.get("cursor")
        return items, nxt if isinstance(nxt, str) and nxt else None

    # --- the session

    def _xrpc(self, method: str, nsid: str, **kwargs) -> dict:
        """One XRPC call with the session's access token, renewed once when expired."""
        tokens = self._session()
        try:
            return self._send(method, nsid, tokens.access, **kwargs)
        except SessionExpired:
            tokens = self._renew(tokens)
        try:
            return self._send(method, nsid, tokens.access, **kwargs)
        except SessionExpired as exc:
            self._tokens = None
            raise AuthFailed(f"the new Bluesky session was refused: {exc.message}") from exc

    def _session(self) -> Tokens:
        if self._tokens is None:
            self._tokens = self._login()
        return self._tokens

    def _login(self) -> Tokens:
        handle = str(self.opts["handle"]).lstrip("@")
        try:
            body = self._send("POST", "com.atproto.server.createSession", None, json={
                "identifier": handle, "password": self.credentials["app_password"].reveal()})
        except SessionExpired as exc:     # no token was sent: a refusal, whatever it says
            raise AuthFailed(exc.message) from exc
        return _tokens(body)

    def _renew(self, old: Tokens) -> Tokens:
        """A refreshed session; a new login when the refresh token is refused too."""
        self._tokens = None
        try:
            body = self._send("POST", "com.atproto.server.refreshSession", old.refresh)
            self._tokens = _tokens(body)
        except (AuthFailed, Rejected):
            log.info("%s: Bluesky refused the refresh token; logging in again", self.account)
            self._tokens = self._login()
        return self._tokens

    def _send(self, method: str, nsid: str, token: Secret | None, *, headers=None,
              **kwargs) -> dict:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        response = self._client.request(method, f"{self._base}/xrpc/{nsid}", headers=headers,
                                        **kwargs)
        body = json_object(response)     # the session let through only readable successes
        if body is None:
            raise Transient(f"Bluesky answered {nsid} with something other than JSON")
        return body

    @property
    def _base(self) -> str:
        return str(self.opts["service"]).rstrip("/")

    @property
    def _client(self) -> PlatformSession:
        """The HTTP session, built on first use (never at import or construction)."""
        if self._http is None:
            self._http = PlatformSession(self._base, self._base, Limits.of(self.opts),
                                         self._check).adopt(self.session, self.gate)
        return self._http

    def _check(self, response: requests.Response) -> None:
        raise_unless_ok(ERRORS, xrpc_answer(response), self.clock(), self.account)


def xrpc_answer(response: requests.Response) -> Answer:
    """What an XRPC answer says: its error name (as ``reason``) and message."""
    body = json_object(response)
    status = response.status_code
    name, message = _text((body or {}).get("error")), _text((body or {}).get("message"))
    ok = 200 <= status < 300 and body is not None and not name
    if body is None:
        words = f"Bluesky gave an answer that is not JSON (HTTP {status})"
    else:
        words = f"{name or f'HTTP {status}'}: {message}" if message else (name or f"HTTP {status}")
    return Answer(status=status, ok=ok, words=mask(words)[:500], reason=name,
                  is_json=body is not None, headers=response.headers)


def _tokens(body: dict) -> Tokens:
    access, refresh = body.get("accessJwt"), body.get("refreshJwt")
    if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
        raise Transient("Bluesky answered the login without session tokens")
    # Secret() registers each token, so the log filter masks it wherever it appears.
    access_s, refresh_s = Secret(access), Secret(refresh)
    return Tokens(require_id(body.get("did"), "Bluesky"), _text(body.get("handle")),
                  access_s, refresh_s)


def _matches(item: dict, post: Post, rkey: str, did: str) -> bool:
    """A feed post is ``post`` when it has its record key, its link or its text."""
    author = item.get("author")
    if not isinstance(author, dict) or author.get("did") != did:
        return False
    uri, record = _text(item.get("uri")), item.get("record")
    record = record if isinstance(record, dict) else {}
    if uri.endswith(f"/{POST_NSID}/{rkey}"):
        return True
    if post.link and post.link in _links(record):
        return True
    return bool(post.text) and squash(_text(record.get("text"))) == squash(clean_text(post.text))


def _links(record: dict) -> set[str]:
    embed = record.get("embed")
    external = embed.get("external") if isinstance(embed, dict) else None
    found = {_text(external.get("uri"))} if isinstance(external, dict) else set()
    for facet in record.get("facets") or []:
        for feature in (facet.get("features") or []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("uri"):
                found.add(_text(feature.get("uri")))
    return found


def _sort_at(item: dict) -> datetime:
    """When the feed placed a post: the earlier of its indexedAt and createdAt (the
    AppView's sortAt); a time it cannot read counts as now (keep looking)."""
    record = item.get("record") if isinstance(item.get("record"), dict) else {}
    times = [_parse(item.get("indexedAt")), _parse(record.get("createdAt"))]
    return min((t for t in times if t), default=datetime.max.replace(tzinfo=timezone.utc))


def _parse(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else None


def _datetime(now: datetime) -> str:
    """An atproto datetime: UTC, milliseconds, "Z"."""
    now = now.astimezone(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
