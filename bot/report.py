"""What the read-only commands print: config summary, status, previews.

``status`` reads the store and prints one report; ``status --json`` prints the
same content as one JSON object with these keys (stable: a key is only ever
added; ``version`` changes if one is renamed or removed). Times are ISO 8601
with their offset, in the account's schedule time zone for what belongs to an
account, else in the config's ``timezone``.

- ``version`` (1), ``generated_at``, ``timezone`` (the config's zone name),
  ``exit_code`` (0 or 1), ``problems``: the sentences that make it 1.
- ``service``: ``running`` (a worker beat within 2 minutes) and ``workers``,
  newest beat first: ``worker``, ``host``, ``pid``, ``since``,
  ``last_heartbeat``, ``heartbeat_age_seconds``, ``alive``, ``feeds`` and
  ``accounts`` (the names whose leases it holds: what it polls and publishes).
- ``feeds``: ``name``, ``state`` ("ok", "retrying": failed once and backing
  off, "failing": failed again after its back-off, "gone": polling stopped),
  ``last_fetch``, ``last_success``, ``error_streak``, ``last_error``,
  ``gone_reason``, ``next_try``.
- ``failed_posts``, ``recent_posts`` (sent), ``held_posts`` (waiting for an editor's
  approval, ``at``: when held) and ``filtered_posts`` (the latest kept out by a route's
  filters, ``error``: why): ``id``, ``account``, ``title``,
  ``at``, ``article_url``, ``error``, ``platform_id``, ``permalink`` (the
  post's URL on the platform, null when the store does not keep it).
- ``accounts``: ``name``, ``platform``, ``timezone``, ``state`` ("ok",
  "waiting": rate limited or backing off, which lifts by itself; "paused":
  needs ``resume``), ``paused_reason``, ``resumes_by_itself``,
  ``waiting_until``, ``wait_reason``, ``counts`` (status → number),
  ``queue_total`` and ``queue``: the first 20 posts in send order with ``id``,
  ``title``, ``at`` (null: not planned), ``reason``, ``expires_at``,
  ``expires_before_sent`` (true: it expires before its turn comes); with a
  ``budget`` (X), ``budget``: ``unit`` ("posts" or "money"), ``spent``, ``left``
  (this UTC month) and ``resets`` (the first of next month).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.articles import LeadFinder, extract_page
from bot.compose import measure
from bot.config import Config, FeedConfig
from bot.feeds import FeedState, fetch
from bot.http import HttpClient
from bot.leases import holders
from bot.models import Article, Target
from bot.publish import Account, Publisher
from bot.schedule import PLAN_HORIZON
from bot.secret import redact_url
from bot.store import Store

JSON_VERSION = 1
HEARTBEAT_STALE = timedelta(minutes=2)   # no beat for this long: no service running
# A first failure is the poller's business (it backs off); failing again after
# the back-off is a person's.
FAILING_STREAK = 2
STATUSES = ("held", "pending", "sending", "sent", "failed", "skipped", "filtered", "rejected")
QUEUE_LINES, FAILED_LINES, RECENT_LINES, HELD_LINES = 20, 20, 10, 50
TITLE_WIDTH, ERROR_WIDTH = 60, 160   # one line each, whatever the platform answered


def config_summary(config: Config, out: TextIO) -> None:
    out.write(f"config {config.path}: ok\n  database: {redact_url(config.database)}\n"
              f"  timezone: {config.timezone}\n  feeds ({len(config.feeds)}):\n")
    for f in config.feeds:
        out.write(f"    {f.name}: {redact_url(f.url)} every {_span(f.every)}, backfill {f.backfill}\n")
    out.write(f"  accounts ({len(config.accounts)}):\n")
    for a in config.accounts:
        plan = "posts when due" if a.schedule is None else _schedule_text(a.schedule)
        out.write(f"    {a.name}: {a.platform}, {plan}\n")
    out.write(f"  routes ({len(config.routes)}):\n")
    for r in config.routes:
        out.write(f"    {', '.join(r.feeds)} -> {', '.join(r.accounts)}"
                  + (f" (priority {r.priority})" if r.priority else "") + "\n")


def _schedule_text(s) -> str:
    parts = [f"gap {_span(s.min_gap)}" if s.min_gap else "",
             f"max {s.max_per_hour}/h" if s.max_per_hour else "",
             f"max {s.max_per_day}/day" if s.max_per_day else "",
             f"{len(s.windows)} window(s)" if s.windows else ""]
    return ", ".join(p for p in parts if p) or "schedule with no limits"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _local(account: Account, at: datetime) -> str:
    """A planned time in the account's schedule time zone, which is how people read it."""
    tz = ZoneInfo(account.config.schedule.timezone if account.config.schedule else "UTC")
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}"


def schedule_preview(publisher: Publisher, out: TextIO, hours: int = 24) -> None:
    """The planned posts of the next ``hours``, per account."""
    horizon = publisher.clock() + timedelta(hours=hours)
    for account in publisher.accounts:
        slots, rows = publisher.plan(account)
        planned = [s for s in slots if s.at and s.at <= horizon]
        out.write(f"{account.name}: {len(planned)} post(s) in the next {hours} h\n")
        for slot in planned:
            out.write(f"  {_local(account, slot.at)}  #{rows[slot.key].id} ({slot.reason}) "
                      f"{cut(rows[slot.key].title or '', 70)}\n")


# -- status -----------------------------------------------------------------------

def status(store: Store, publisher: Publisher, out: TextIO, *, as_json: bool = False,
           now: datetime | None = None, zone: str = "UTC") -> int:
    """Write the status report (text, or JSON with the keys in the module
    docstring) and return the exit code: 1 when a problem needs a person (an
    account paused, a feed failing past its back-off or gone, no service
    running), else 0. ``zone`` is the config's time zone, used for whatever
    belongs to no account with a schedule of its own. Reads only."""
    doc = gather(store, publisher, now or store.clock(), ZoneInfo(zone))
    if as_json:
        out.write(json.dumps(doc, default=_iso, ensure_ascii=False, indent=2) + "\n")
    else:
        _render(doc, out)
    return doc["exit_code"]


def gather(store: Store, publisher: Publisher, now: datetime, zone: ZoneInfo) -> dict:
    """The status as plain data; times are aware datetimes in their zone."""
    zones = {a.name: _zone_of(a, zone) for a in publisher.accounts}
    counts = store.outbox_counts()
    doc = {
        "version": JSON_VERSION, "generated_at": now.astimezone(zone), "timezone": zone.key,
        "service": _service(store.workers(), _holdings(store), now, zone),
        "feeds": [_feed(row, zone) for row in store.feeds()],
        "failed_posts": [_post(r, zones.get(r.account, zone), r.updated_at)
                         for r in store.recent(["failed"], FAILED_LINES)],
        "accounts": [_account(store, publisher, a, counts.get(a.name, {}), now, zones[a.name])
                     for a in publisher.accounts],
        "recent_posts": [_post(r, zones.get(r.account, zone), r.sent_at or r.updated_at)
                         for r in store.recent(["sent"], RECENT_LINES)],
        "held_posts": [_post(r, zones.get(r.account, zone), r.queued_at)
                       for r in store.held(limit=HELD_LINES)],
        "filtered_posts": [_post(r, zones.get(r.account, zone), r.updated_at)
                           for r in store.recent(["filtered"], RECENT_LINES)],
    }
    doc["problems"] = _problems(doc)
    doc["exit_code"] = 1 if doc["problems"] else 0
    return doc


def _zone_of(account: Account, default: ZoneInfo) -> ZoneInfo:
    schedule = account.config.schedule
    return ZoneInfo(schedule.timezone) if schedule else default


def _service(workers: Sequence, held: Mapping[str, dict], now: datetime, zone: ZoneInfo) -> dict:
    """Workers by newest beat; the service runs while one beat recently."""
    found = []
    for w in workers:
        age = max(0, int((now - w.beat_at).total_seconds()))
        mine = held.get(w.worker, {})
        found.append({"worker": w.worker, "host": w.host, "pid": w.pid,
                      "since": w.started_at.astimezone(zone), "last_heartbeat": w.beat_at.astimezone(zone),
                      "heartbeat_age_seconds": age, "alive": age <= HEARTBEAT_STALE.total_seconds(),
                      "feeds": mine.get("feed", []), "accounts": mine.get("account", [])})
    return {"running": any(w["alive"] for w in found), "workers": found}


def _holdings(store: Store) -> dict[str, dict[str, list[str]]]:
    """worker → kind ("feed", "account") → the names it holds leases on."""
    held: dict[str, dict[str, list[str]]] = {}
    for lease in holders(store):
        held.setdefault(lease.holder, {}).setdefault(lease.kind, []).append(lease.name)
    return held


def _feed(row, zone: ZoneInfo) -> dict:
    streak = row.error_streak or 0
    state = ("gone" if row.gone_reason else "failing" if streak >= FAILING_STREAK
             else "retrying" if streak else "ok")
    return {"name": row.name, "state": state, "last_fetch": _in(row.last_fetch_at, zone),
            "last_success": _in(row.last_success_at, zone), "error_streak": streak,
            "last_error": row.last_error, "gone_reason": row.gone_reason,
            "next_try": _in(row.next_poll_at, zone) if streak and not row.gone_reason else None}


def _post(row, zone: ZoneInfo, at: datetime | None) -> dict:
    return {"id": row.id, "account": row.account, "title": row.title or "", "at": _in(at, zone),
            "article_url": row.url,
            "error": row.last_error if row.status in ("failed", "filtered") else None,
            "platform_id": row.platform_id, "permalink": getattr(row, "post_url", None)}


def _account(store: Store, publisher: Publisher, account: Account, counts: Mapping[str, int],
             now: datetime, zone: ZoneInfo) -> dict:
    state = store.account_row(account.name)
    paused = state.paused_reason if state else None
    # An auth pause lifts by itself at the next pass once the credentials changed.
    lifts = bool(paused and state.auth_failed_fingerprint
                 and state.auth_failed_fingerprint != account.fingerprint())
    until = state.paused_until if state and state.paused_until and state.paused_until > now else None
    info = {"name": account.name, "platform": account.config.platform, "timezone": zone.key,
            "state": "paused" if paused else "waiting" if until else "ok",
            "paused_reason": paused, "resumes_by_itself": lifts, "waiting_until": _in(until, zone),
            "wait_reason": (state.wait_reason or "rate limited") if until else None,
            "counts": {k: counts[k] for k in STATUSES if counts.get(k)}}
    info["queue"], info["queue_total"] = _plan(publisher, account, info, now, zone)
    if account.config.budget:
        info["budget"] = _budget(publisher.budget(account), zone)
    return info


def _budget(spend, zone: ZoneInfo) -> dict:
    """This month's X spend (Publisher.budget): in posts or money, what is
    left, when it resets; money as a float, which JSON can carry."""
    number = float if spend.unit == "money" else int
    return {"unit": spend.unit, "spent": number(spend.spent), "left": number(spend.left),
            "resets": _in(spend.resets, zone)}


def _plan(publisher: Publisher, account: Account, info: dict, now: datetime,
          zone: ZoneInfo) -> tuple[list[dict], int]:
    """The first QUEUE_LINES planned posts and how many wait in all."""
    slots, rows = publisher.plan(account)
    schedule = account.config.schedule
    keep = schedule.expire_after if schedule else None
    cut_at, items = None, []
    for slot in slots:
        if slot.at and slot.at > now + PLAN_HORIZON and cut_at is None:
            cut_at = slot.at   # the plan stops here; the posts after it are not planned
        if len(items) == QUEUE_LINES:
            continue
        row = rows[slot.key]
        expires = row.queued_at + keep if keep else None
        # Unplanned before the horizon means it would go only after its expiry.
        lost = bool(expires and slot.at is None and slot.reason != "expired"
                    and (cut_at is None or expires < cut_at))
        reason = (info["wait_reason"] if slot.reason == "paused" else slot.reason)
        if info["state"] == "paused" and not info["resumes_by_itself"]:
            reason, at = "paused", None
        else:
            at = _in(slot.at, zone)
        items.append({"id": row.id, "title": row.title or "", "at": at, "reason": reason,
                      "expires_at": _in(expires, zone), "expires_before_sent": lost})
    return items, len(slots)


def _problems(doc: dict) -> list[str]:
    """What makes the exit code 1, one sentence each."""
    found = [f"account {a['name']} is paused: {a['paused_reason']}" for a in doc["accounts"]
             if a["state"] == "paused" and not a["resumes_by_itself"]]
    for f in doc["feeds"]:
        if f["state"] == "gone":
            found.append(f"feed {f['name']} is gone: {f['last_error'] or f['gone_reason']}")
        elif f["state"] == "failing":
            found.append(f"feed {f['name']} failed {f['error_streak']} times in a row: {f['last_error']}")
    if not doc["service"]["running"]:
        found.append("no service running")
    return found


def _in(at: datetime | None, zone: ZoneInfo) -> datetime | None:
    return at.astimezone(zone) if at else None


def _iso(value):
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    raise TypeError(f"{type(value).__name__} is not JSON")


# -- status as text -----------------------------------------------------------------

def _render(doc: dict, out: TextIO) -> None:
    out.write(_header(doc["service"]) + "\n")
    out.write("feeds:\n")
    for f in doc["feeds"]:
        out.write(f"  {f['name']}: last fetch {_when(f['last_fetch'])}, last success "
                  f"{_when(f['last_success'])}, {_health(f)}\n")
    _posts(out, "failed posts", doc["failed_posts"], lambda p: cut(p["error"] or "", ERROR_WIDTH))
    _posts(out, "held for approval (approve ID or reject ID)", doc["held_posts"],
           lambda p: "waiting for an editor")
    _posts(out, "filtered out", doc["filtered_posts"], lambda p: cut(p["error"] or "", ERROR_WIDTH))
    out.write("accounts:\n")
    for a in doc["accounts"]:
        line = ", ".join(f"{k} {n}" for k, n in a["counts"].items())
        out.write(f"  {a['name']} ({a['platform']}): {line or 'nothing yet'}{_hold(a)}\n")
        if "budget" in a:
            b = a["budget"]
            out.write(f"    budget: {b['spent']} {b['unit']} spent this month, {b['left']} left, "
                      f"resets {_when(b['resets'])}\n")
        _queue_lines(a, out)
    _posts(out, "recent posts", doc["recent_posts"],
           lambda p: f"id {p['platform_id']}" + (f" {p['permalink']}" if p["permalink"] else ""))
    if doc["problems"]:
        out.write(f"problems (exit 1): {'; '.join(doc['problems'])}\n")


def _header(service: dict) -> str:
    workers = service["workers"]
    alive = [w for w in workers if w["alive"]]
    if len(alive) > 1:
        return f"service running: {len(alive)} workers\n" + "\n".join(map(_worker_line, alive))
    if alive:
        w = alive[0]
        return (f"service running (pid {w['pid']}, host {w['host']}, since {_when(w['since'])}, "
                f"last heartbeat {w['heartbeat_age_seconds']} s ago)")
    if workers:
        w = workers[0]
        return (f"no service running (last heartbeat {_when(w['last_heartbeat'])}, "
                f"{_ago(w['heartbeat_age_seconds'])}, pid {w['pid']} on host {w['host']})")
    return "no service running"


def _worker_line(w: dict) -> str:
    """One worker of several: where it runs and what it holds."""
    def names(kind: str) -> str:
        held = w[kind]
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        return f"{len(held)} {kind}" + (f" ({shown})" if held else "")
    return (f"  worker pid {w['pid']} on {w['host']}, since {_when(w['since'])}, beat "
            f"{w['heartbeat_age_seconds']} s ago: {names('feeds')}; {names('accounts')}")


def _health(feed: dict) -> str:
    if feed["state"] == "gone":
        return f"GONE: {cut(feed['last_error'] or feed['gone_reason'], ERROR_WIDTH)}; polling stopped"
    if feed["state"] == "ok":
        return "ok"
    label = "FAILING" if feed["state"] == "failing" else "failed"
    return (f"{label} x{feed['error_streak']}: {cut(feed['last_error'] or '', ERROR_WIDTH)}; "
            f"next try {_when(feed['next_try'])}")


def _hold(account: dict) -> str:
    name = account["name"]
    if account["state"] == "paused" and account["resumes_by_itself"]:
        return (f"  [PAUSED: {account['paused_reason']}; the credentials changed since, "
                f"so it resumes at the next pass]")
    if account["state"] == "paused":
        return f"  [PAUSED: {account['paused_reason']}; fix it, then `run_bot.py resume {name}`]"
    if account["state"] == "waiting":
        return f"  [{account['wait_reason']} until {_when(account['waiting_until'])}]"
    return ""


def _queue_lines(account: dict, out: TextIO) -> None:
    if account["state"] == "paused" and not account["resumes_by_itself"] and account["queue_total"]:
        out.write(f"    {account['queue_total']} post(s) wait until the account is resumed\n")
        return
    for item in account["queue"]:
        if item["reason"] == "expired":
            when = f"expired {_when(item['expires_at'])}, skipped at the next pass"
        elif item["expires_before_sent"]:
            when = f"expires {_when(item['expires_at'])} before it can go ({item['reason']})"
        elif item["at"]:
            when = f"at {_when(item['at'])} ({item['reason']})"
        else:
            when = f"not planned yet ({item['reason']})"
        out.write(f"    #{item['id']} {when}: {cut(item['title'], TITLE_WIDTH)}\n")
    if account["queue_total"] > len(account["queue"]):
        out.write(f"    ... and {account['queue_total'] - len(account['queue'])} more\n")


def _posts(out: TextIO, title: str, posts: Sequence[dict], detail: Callable[[dict], str]) -> None:
    if posts:
        out.write(f"{title}:\n")
    for p in posts:
        out.write(f"  #{p['id']} {p['account']} {_when(p['at'])}: "
                  f"{cut(p['title'], TITLE_WIDTH)} — {detail(p)}\n")


def _when(at: datetime | None) -> str:
    """A time with the name of its zone, so no reader guesses which one."""
    return f"{at:%Y-%m-%d %H:%M} {at.tzinfo.key}" if at else "never"


def _ago(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def cut(title: str, width: int) -> str:
    """``title`` on one line, at most ``width`` characters, cut at a word
    boundary when one is near (an ellipsis marks the cut)."""
    text = " ".join(title.split())
    if len(text) <= width:
        return text
    head = text[:width - 1]
    space = len(head) if text[len(head)] == " " else head.rfind(" ")
    # A title without spaces (CJK, a long URL) is cut where it must be.
    return (head[:space] if space >= width // 2 else head).rstrip(" ,;:-–—") + "…"


class Previewer:
    """Runs fetch → lead → compose without recording anything."""

    def __init__(self, config: Config, client: HttpClient, leads: LeadFinder,
                 accounts: Sequence[Account]):
        self.config = config
        self.client = client
        self.leads = leads
        self.accounts = {a.name: a for a in accounts}
        self.routes = {f.name: config.targets(f.name) for f in config.feeds}

    def articles(self, *, source: str | None = None, html: str | None = None,
                 url: str | None = None, limit: int = 5) -> list[Article]:
        """Articles from a saved page (``html`` + ``url``), a feed URL or file
        (``source``), or else every configured feed; at most ``limit`` per feed."""
        if html:
            return [self._from_page(Path(html).read_bytes(), url or Path(html).resolve().as_uri())]
        feeds = [FeedConfig(name="preview", url=_as_url(source))] if source else self.config.feeds
        found = []
        for feed in feeds:
            items = fetch(self.client, feed, FeedState()).articles or []
            found += [self.leads.enrich(a, feed.fetch_article) for a in items[:limit]]
        return found

    def _from_page(self, body: bytes, url: str) -> Article:
        page = extract_page(body, url)
        return Article(feed="preview", item_id=url, url=page.canonical_url or url,
                       title=page.title or "", lead=page.lead, image=page.image,
                       author=page.author, published=page.published)

    def posts(self, article: Article) -> dict[str, dict]:
        """Per account: the text (its link with the tracking parameters), its
        length as the platform counts it, the limit, and what the routes
        decide: ``status`` "pending", "held" (waits for an editor) or
        "filtered" (``reason`` says why; it would be recorded, not sent)."""
        route = self.routes.get(article.feed)
        targets = route(article) if route else [Target(name) for name in self.accounts]
        out = {}
        for target in targets or [Target(name) for name in self.accounts]:
            account = self.accounts[target.account]
            style = self.config.style(article.feed, account.name) if route else None
            text = account.text(article, account.config.hashtags, style)
            out[account.name] = {"text": text, "length": measure(text, account.limits),
                                 "limit": account.limits.max_length, "status": target.status,
                                 "reason": target.reason}
        return dict(sorted(out.items()))

    def show(self, articles: Sequence[Article], out: TextIO, *, as_json: bool = False) -> None:
        for article in articles:
            posts = self.posts(article)
            if as_json:
                out.write(json.dumps({"title": article.title, "lead": article.lead,
                                      "url": article.url, "image": article.image,
                                      "posts": posts}, ensure_ascii=False) + "\n")
                continue
            out.write(f"=== {article.title}\n    {article.url}\n")
            for name, post in posts.items():
                decided = {"held": " [held for approval]",
                           "filtered": f" [filtered out: {post['reason']}]"}.get(post["status"], "")
                out.write(f"--- {name} ({post['length']}/{post['limit']}){decided}\n{post['text']}\n")
            out.write("\n")


def _as_url(source: str) -> str:
    return source if "://" in source else str(Path(source).resolve())
