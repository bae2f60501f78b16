"""The fake Graph API: Page token in a header or parameter, {"error": {...}} bodies."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from .shapes import (COMMON_FAULTS, CONTRACT_NOW, DUPLICATE_AND_PERMISSIONS, PAGE_ID, PAGE_NAME, PAGE_TOKEN,
                     REGAIN_MINUTES, Answer, Api, Contract, FakePlatform, Page, Reply)

GRAPH_PATH = re.compile(r"^/(v\d+\.\d+)/(.+)$")
FEED_CAP = 100               # Graph serves at most 100 feed entries a page


class GraphState:
    """The Facebook Pages one fake server accepts."""

    def __init__(self):
        self.pages = {PAGE_ID: Page(PAGE_ID, PAGE_NAME, PAGE_TOKEN)}

    def add_page(self, page_id: str, token: str, name: str) -> None:
        self.pages[page_id] = Page(page_id, name, token)


class GraphApi(Api):
    """Graph API: Page token in a header or parameter, {"error": {...}} bodies."""

    def authenticate(self) -> Reply | None:
        match = GRAPH_PATH.match(self.req.path)
        if not match:
            return self.error(100, "Unknown path components", status=404)
        self.version, self.rest = match.groups()
        token = self._token()
        self.page = next((p for p in self.state.pages.values() if p.token == token), None)
        if self.page is None:
            return self.error(190, "Invalid OAuth access token - Cannot parse access token")
        return None

    def _token(self) -> str:
        header = self.req.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "oauth"):
            return value
        return self.form().get("access_token", "")

    def error(self, code: int, message: str, subcode: int | None = None, status: int = 400,
              headers: dict | None = None, **extra) -> Reply:
        err = {"message": message, "type": "OAuthException", "code": code,
               "fbtrace_id": f"Afake{code}", **extra}
        if subcode is not None:
            err["error_subcode"] = subcode
        return Reply(status, {"error": err}, headers or {})

    def fault(self, f: Answer) -> Reply:
        msg, subcode = f.params.get("message"), f.params.get("subcode")
        if f.kind in ("500", "503"):
            return self.error(2, msg or "An unexpected error has occurred. Please retry your "
                              "request later.", status=int(f.kind), is_transient=True)
        if f.kind == "429":
            return self.rate_limited(f)
        if f.kind == "401":
            return self.error(190, msg or "Error validating access token: Session has expired.",
                              subcode or 463)
        if f.kind == "403-duplicate":
            return self.error(506, msg or "Duplicate status message")
        if f.kind == "403-permissions":
            return self.error(200, msg or "(#200) The user hasn't authorized the application "
                              "to perform this action", status=403)
        if f.kind == "200-no-id":
            return Reply(200, {"success": True})
        if f.kind.startswith("graph-"):
            code = int(f.kind.split("-", 1)[1])
            return self.error(code, msg or f"(#{code}) fake Graph error", subcode)
        return self.error(100, msg or "(#100) Invalid parameter", subcode)

    def rate_limited(self, f: Answer) -> Reply:
        headers = {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 30,
                                              "total_time": 40})}
        if "regain" in f.params:
            headers["X-Business-Use-Case-Usage"] = json.dumps({self.page.page_id: [{
                "type": "pages", "call_count": 100, "total_cputime": 10, "total_time": 10,
                "estimated_time_to_regain_access": f.params["regain"]}]})
        return self.error(4, f.params.get("message") or "(#4) Application request limit reached",
                          status=403, headers=headers, is_transient=True)

    def route(self) -> Reply:
        method, rest = self.req.method, self.rest
        if method == "GET" and rest == "me":
            return Reply(200, {"name": self.page.name, "id": self.page.page_id})
        page_id, _, edge = rest.partition("/")
        if page_id != self.page.page_id:
            return self.error(200, "(#200) The token does not belong to this Page", status=403)
        if method == "POST" and edge in ("feed", "photos"):
            return self.post(edge)
        if method == "GET" and edge == "feed":
            return self.feed()
        return self.error(100, f"Unsupported {method.lower()} request.")

    def post(self, edge: str) -> Reply:
        form = self.form()
        text = form.get("message") if edge == "feed" else form.get("caption")
        if edge == "photos" and not form.get("url"):
            return self.error(324, "(#324) Requires upload file")
        if edge == "feed" and not (text or form.get("link")):
            return self.error(100, "(#100) Missing message or attachment")
        post_id = f"{self.page.page_id}_{self.fake.next_id()}"
        self.fake.record({"platform": "facebook", "account": self.page.page_id, "text": text,
                          "link": form.get("link"), "id": post_id, "image_url": form.get("url"),
                          "version": self.version})
        if edge == "photos":
            return Reply(200, {"id": self.fake.next_id(), "post_id": post_id})
        return Reply(200, {"id": post_id})

    def feed(self) -> Reply:
        """GET /{page}/feed: newest first, ``fields``, ``since`` (unix time),
        ``limit`` (up to 100) and ``after`` cursors; ``paging.next`` carries the
        token in its query, as Graph's does."""
        form = self.form()
        limit, since = form.get("limit", "25"), form.get("since", "0")
        if not (limit.isdigit() and since.isdigit()):
            return self.error(100, "(#100) Invalid parameter")
        mine = [p for p in self.fake.posts_of("account", self.page.page_id)
                if p["at"] >= int(since)]
        start = _after(mine, form.get("after"))
        if start is None:
            return self.error(100, "(#100) The after cursor is invalid", status=400)
        fields = form.get("fields", "created_time,message,id").split(",")
        return self._page(mine[start:], min(int(limit), FEED_CAP), fields, form)

    def _page(self, posts: list[dict], limit: int, fields: list[str], form: dict) -> Reply:
        page = posts[:limit]
        body: dict = {"data": [_entry(p, fields) for p in page]}
        if page:
            body["paging"] = {"cursors": {"before": _cursor(page[0]), "after": _cursor(page[-1])}}
        if len(posts) > limit:
            query = {**{k: v for k, v in form.items() if k != "after"},
                     "access_token": self.page.token, "limit": str(limit),
                     "after": _cursor(page[-1])}
            body["paging"]["next"] = (f"https://graph.facebook.com/{self.version}/"
                                      f"{self.rest}?{urlencode(query)}")
        return Reply(200, body)


def _entry(post: dict, fields: list[str]) -> dict:
    created = datetime.fromtimestamp(post["at"], timezone.utc)
    known = {"id": post["id"], "message": post["text"], "link": post["link"],
             "created_time": created.strftime("%Y-%m-%dT%H:%M:%S+0000")}
    return {f: known[f] for f in fields if known.get(f) is not None}


def _cursor(post: dict) -> str:
    return base64.urlsafe_b64encode(post["id"].encode()).decode().rstrip("=")


def _after(posts: list[dict], cursor: str | None) -> int | None:
    """Where the page after ``cursor`` starts; None for a cursor Graph never gave."""
    if cursor is None:
        return 0
    cursors = [_cursor(p) for p in posts]
    return cursors.index(cursor) + 1 if cursor in cursors else None


def seed(fake, state: GraphState, count: int, at: datetime, text: str) -> None:
    """``count`` posts the default Page made at ``at``."""
    for n in range(count):
        fake.record({"platform": "facebook", "account": PAGE_ID, "image_url": None,
                     "text": f"{text} {n}", "link": None, "id": f"{PAGE_ID}_{fake.next_id()}",
                     "at": at.timestamp()})


def _flags(parser) -> None:
    parser.add_argument("--page", action="append", default=[], metavar="ID:TOKEN:NAME",
                        help="another Facebook Page the fake accepts")


def _configure(state: GraphState, args) -> None:
    for spec in args.page:
        state.add_page(*spec.split(":", 2))


FAKE = FakePlatform(
    name="facebook", api=GraphApi, claims=lambda req: bool(GRAPH_PATH.match(req.path)),
    seed=seed, state=GraphState, posting=("/feed", "/photos"), flags=_flags,
    configure=_configure,
    contract=Contract(
        credentials={"page_access_token": PAGE_TOKEN},
        wrong={"page_access_token": "wrong-page-token-0001"},
        options=lambda url: {"graph_base_url": url, "page_id": PAGE_ID},
        until=CONTRACT_NOW + timedelta(minutes=REGAIN_MINUTES),
        image_path="/photos", image_refusal="graph-324",
        has_image=lambda post: bool(post["image_url"]),
        verify_names=f"{PAGE_NAME} (id {PAGE_ID})",
        lookup_paths=("/feed",), page_size=FEED_CAP,
        faults={**COMMON_FAULTS, **DUPLICATE_AND_PERMISSIONS}),
    account=lambda url: {"platform": "facebook", "page_id": PAGE_ID, "graph_base_url": url,
                         "credentials": {"page_access_token": "${FB_PAGE_TOKEN}"}},
    env={"FB_PAGE_TOKEN": PAGE_TOKEN},
)
