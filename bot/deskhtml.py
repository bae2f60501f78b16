"""The desk's HTML: the page over a status document and the login form.

Pure functions from plain data to a string. Every value from a feed, a
platform or the store goes through ``_e`` (html.escape, quotes included), and
a link is made only of an http(s) URL, so a hostile title or URL stays text.
One column, no script, a little inline CSS: readable on a phone. Times carry
the name of their zone.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

CSS = """
body{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1b1b1b}
main{max-width:46rem;margin:0 auto;padding:.75rem}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .4rem}
h3{font-size:1rem;margin:0 0 .2rem}
section>p,.post,.card{overflow-wrap:anywhere}
.post,.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem;margin:.5rem 0}
.meta{color:#555;font-size:.9rem;margin:.1rem 0}
.notice{padding:.6rem;border-radius:6px;margin:.5rem 0}
.ok{background:#e5f4e8;border:1px solid #8bc79a}.error{background:#fbe9e7;border:1px solid #e0a196}
.bad{color:#a02016;font-weight:600}.wait{color:#8a5a00;font-weight:600}
textarea{width:100%;box-sizing:border-box;font:inherit;min-height:6rem}
form{display:inline-block;margin:.3rem .4rem 0 0}form.edit{display:block}
button{font:inherit;padding:.35rem .9rem;border-radius:5px;border:1px solid #345;background:#234;color:#fff}
button.secondary{background:#fff;color:#234}
ol,ul{padding-left:1.2rem;margin:.3rem 0}
"""


def page(doc: Mapping, *, csrf: str, notice: tuple[str, str] | None = None,
         drafts: Mapping[int, str] | None = None, can_logout: bool = False) -> str:
    """The desk for one status document (bot.report.gather's keys, plus
    ``held`` and ``account["budget"]`` when present). ``drafts``: edited
    texts to show again in their approve forms."""
    parts = [_header(doc, csrf, can_logout)]
    if notice:
        parts.append(f'<p class="notice {_e(notice[0])}" role="status">{_e(notice[1])}</p>')
    parts += [_problems(doc.get("problems") or []),
              _held(doc.get("held") or [], csrf, drafts or {}),
              _failed(doc.get("failed_posts") or [], csrf),
              _accounts(doc.get("accounts") or []),
              _feeds(doc.get("feeds") or []),
              _recent(doc.get("recent_posts") or [])]
    return _document("Herald desk", "".join(parts))


def login_page(csrf: str, error: str | None = None) -> str:
    """The token form."""
    said = f'<p class="notice error" role="alert">{_e(error)}</p>' if error else ""
    return _document("Herald desk: log in", (
        f"<h1>Herald desk</h1>{said}<form method=\"post\" action=\"/desk/login\" class=\"edit\">"
        f"{_csrf(csrf)}<p><label for=\"token\">Desk token</label><br>"
        "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" "
        "required style=\"width:100%;font:inherit\"></p><button>Log in</button></form>"))


def _document(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{body}"
            "</main></body></html>\n")


def _header(doc: Mapping, csrf: str, can_logout: bool) -> str:
    service = doc.get("service") or {}
    running = ("service running" if service.get("running")
               else '<span class="bad">no service running</span>')
    logout = (f'<form method="post" action="/desk/logout">{_csrf(csrf)}'
              '<button class="secondary">Log out</button></form>') if can_logout else ""
    return (f"<header><h1>Herald desk</h1><p class=\"meta\">{running}; as of "
            f"{_when(doc.get('generated_at'))}</p>{logout}</header>")


def _problems(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{_e(p)}</li>" for p in problems)
    return f'<section id="problems"><h2>Needs a person</h2><ul class="bad">{items}</ul></section>'


def _held(posts: Sequence[Mapping], csrf: str, drafts: Mapping[int, str]) -> str:
    cards = "".join(_held_post(p, csrf, drafts.get(p.get("id"))) for p in posts)
    return _section("held", f"Held for approval ({len(posts)})", cards or "<p>Nothing waits for approval.</p>")


def _held_post(post: Mapping, csrf: str, draft: str | None) -> str:
    pid = _id(post)
    composed = post.get("text") or ""
    approve = (f'<form method="post" action="/desk/approve/{pid}" class="edit">{_csrf(csrf)}'
               f'<input type="hidden" name="original" value="{_e(composed)}">'
               f'<label for="text-{pid}">Text (edit it, or leave it as composed)</label>'
               f'<textarea id="text-{pid}" name="text">{_e(composed if draft is None else draft)}</textarea>'
               "<button>Approve</button></form>")
    return (f'<article class="post" id="post-{pid}">{_post_head(post)}{approve}'
            f'{_button("reject", pid, csrf, "Reject", secondary=True)}</article>')


def _failed(posts: Sequence[Mapping], csrf: str) -> str:
    cards = "".join(
        f'<article class="post" id="post-{_id(p)}">{_post_head(p)}'
        f'<p class="bad">{_e(p.get("error") or "failed")}</p>'
        f'{_button("retry", _id(p), csrf, "Retry")}'
        f'{_button("skip", _id(p), csrf, "Skip", secondary=True)}</article>' for p in posts)
    return _section("failed", f"Failed ({len(posts)})", cards or "<p>No failed posts.</p>")


def _post_head(post: Mapping) -> str:
    link = _link(post.get("article_url"), "article")
    return (f"<h3>#{_id(post)} {_e(post.get('title') or '(no title)')}</h3>"
            f"<p class=\"meta\">{_e(post.get('account') or '')} · {_when(post.get('at'))}"
            f"{' · ' + link if link else ''}</p>")


def _accounts(accounts: Sequence[Mapping]) -> str:
    cards = "".join(_account(a) for a in accounts)
    return _section("accounts", "Accounts and queues", cards or "<p>No accounts.</p>")


def _account(account: Mapping) -> str:
    counts = ", ".join(f"{_e(k)} {_e(n)}" for k, n in (account.get("counts") or {}).items())
    lines = [f"<h3>{_e(account.get('name'))} ({_e(account.get('platform'))})</h3>",
             f"<p class=\"meta\">{_state(account)}{' · ' + counts if counts else ''}</p>"]
    if budget := account.get("budget"):
        lines.append(f"<p class=\"meta\">budget: spent {_e(budget.get('spent'))}, left "
                     f"{_e(budget.get('left'))}, resets {_when(budget.get('resets'))}</p>")
    lines.append(_queue(account))
    return f'<div class="card" id="account-{_e(account.get("name"))}">{"".join(lines)}</div>'


def _state(account: Mapping) -> str:
    state = account.get("state")
    if state == "paused":
        by_itself = "; resumes by itself" if account.get("resumes_by_itself") else ""
        return f'<span class="bad">paused: {_e(account.get("paused_reason"))}{by_itself}</span>'
    if state == "waiting":
        return (f'<span class="wait">{_e(account.get("wait_reason") or "waiting")} until '
                f'{_when(account.get("waiting_until"))}</span>')
    return "ok"


def _queue(account: Mapping) -> str:
    queue = account.get("queue") or []
    if not queue:
        return "<p class=\"meta\">queue empty</p>"
    items = "".join(f"<li>#{_id(q)} {_planned(q)}: {_e(q.get('title') or '(no title)')}</li>"
                    for q in queue)
    more = (account.get("queue_total") or 0) - len(queue)
    tail = f"<p class=\"meta\">and {more} more</p>" if more > 0 else ""
    return f"<ol class=\"queue\">{items}</ol>{tail}"


def _planned(item: Mapping) -> str:
    reason = _e(item.get("reason") or "")
    if item.get("reason") == "expired":
        return f"expired {_when(item.get('expires_at'))}"
    if item.get("expires_before_sent"):
        return f'<span class="wait">expires {_when(item.get("expires_at"))} before it can go</span> ({reason})'
    if item.get("at"):
        return f"at {_when(item.get('at'))} ({reason})"
    return f"not planned yet ({reason})"


def _feeds(feeds: Sequence[Mapping]) -> str:
    items = "".join(
        f"<li><b>{_e(f.get('name'))}</b>: last poll {_when(f.get('last_fetch'))}"
        f"{_feed_trouble(f)}</li>" for f in feeds)
    return _section("feeds", "Feeds", f"<ul>{items}</ul>" if items else "<p>No feeds.</p>")


def _feed_trouble(feed: Mapping) -> str:
    if feed.get("state") in (None, "ok"):
        return ", ok"
    error = _e(feed.get("last_error") or feed.get("gone_reason") or "")
    after = f"; next try {_when(feed.get('next_try'))}" if feed.get("next_try") else ""
    return f', <span class="bad">{_e(feed.get("state"))}: {error}</span>{after}'


def _recent(posts: Sequence[Mapping]) -> str:
    items = "".join(
        f"<li>{_link(p.get('permalink'), p.get('title') or '(no title)') or _e(p.get('title'))}"
        f" <span class=\"meta\">{_e(p.get('account'))} · {_when(p.get('at'))}</span></li>"
        for p in posts)
    return _section("recent", "Recently sent", f"<ul>{items}</ul>" if items else "<p>Nothing sent yet.</p>")


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_e(title)}</h2>{body}</section>'


def _button(action: str, pid: str, csrf: str, label: str, *, secondary: bool = False) -> str:
    style = ' class="secondary"' if secondary else ""
    return (f'<form method="post" action="/desk/{action}/{pid}">{_csrf(csrf)}'
            f"<button{style}>{_e(label)}</button></form>")


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(token)}">'


def _id(post: Mapping) -> str:
    """A post id for a path and an HTML id: digits only, whatever came."""
    return str(int(post.get("id") or 0))


def _link(url, label) -> str:
    """An http(s) link, or "" (a javascript: or data: URL from a feed is no link)."""
    if not isinstance(url, str) or urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        return ""
    return f'<a href="{_e(url.strip())}" rel="noopener noreferrer">{_e(label)}</a>'


def _when(at) -> str:
    """A time with the name of its zone, so no editor guesses which one."""
    if isinstance(at, datetime):
        zone = getattr(at.tzinfo, "key", None) or at.tzname() or "local time"
        return _e(f"{at:%Y-%m-%d %H:%M} {zone}")
    return _e(at) if at else "never"


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)
