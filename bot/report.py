"""What the read-only commands print: config summary, status, previews."""
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
from bot.models import Article
from bot.publish import Account, Publisher
from bot.secret import redact_url
from bot.store import Store


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


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else "never"


def status(store: Store, publisher: Publisher, out: TextIO) -> None:
    out.write("feeds:\n")
    for row in store.feeds():
        health = row.gone_reason or (f"failing x{row.error_streak}: {row.last_error}"
                                     if row.error_streak else "ok")
        out.write(f"  {row.name}: last fetch {_when(row.last_fetch_at)}, last success "
                  f"{_when(row.last_success_at)}, {health}\n")
    counts = store.outbox_counts()
    out.write("accounts:\n")
    for account in publisher.accounts:
        c = counts.get(account.name, {})
        line = ", ".join(f"{k} {c[k]}" for k in ("pending", "sending", "sent", "failed", "skipped") if c.get(k))
        out.write(f"  {account.name} ({account.config.platform}): {line or 'nothing yet'}"
                  f"{_pause(store, account.name)}\n")
        _queue(publisher, account, out)
    _rows(out, "failed posts", store.recent(["failed"], 20), lambda r: r.last_error or "")
    _rows(out, "recent posts", store.recent(["sent"], 10), lambda r: f"id {r.platform_id}")


def _pause(store: Store, name: str) -> str:
    state = store.account_row(name)
    if state and state.paused_reason:
        return f"  [PAUSED: {state.paused_reason}; fix it, then `run_bot.py resume {name}`]"
    if state and state.paused_until and state.paused_until > store.clock():
        return f"  [{state.wait_reason or 'rate limited'} until {_when(state.paused_until)} UTC]"
    return ""


def _local(account: Account, at: datetime) -> str:
    """A planned time in the account's schedule time zone, which is how people read it."""
    tz = ZoneInfo(account.config.schedule.timezone if account.config.schedule else "UTC")
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}"


def _queue(publisher: Publisher, account: Account, out: TextIO) -> None:
    slots, rows = publisher.plan(account)
    state = publisher.store.account_row(account.name)
    if slots and state and state.paused_reason:
        out.write(f"    {len(slots)} post(s) wait until the account is resumed\n")
        return
    for slot in slots[:20]:
        row = rows[slot.key]
        at = f"at {_local(account, slot.at)}" if slot.at else "not planned"
        out.write(f"    #{row.id} {at} ({slot.reason}): {row.title[:70]}\n")
    if len(slots) > 20:
        out.write(f"    ... and {len(slots) - 20} more\n")


def _rows(out: TextIO, title: str, rows: Sequence, detail: Callable) -> None:
    if rows:
        out.write(f"{title}:\n")
    for r in rows:
        out.write(f"  #{r.id} {r.account} {_when(r.updated_at)}: {r.title[:60]} — {detail(r)}\n")


def schedule_preview(publisher: Publisher, out: TextIO, hours: int = 24) -> None:
    """The planned posts of the next ``hours``, per account."""
    horizon = publisher.clock() + timedelta(hours=hours)
    for account in publisher.accounts:
        slots, rows = publisher.plan(account)
        planned = [s for s in slots if s.at and s.at <= horizon]
        out.write(f"{account.name}: {len(planned)} post(s) in the next {hours} h\n")
        for slot in planned:
            out.write(f"  {_local(account, slot.at)}  #{rows[slot.key].id} ({slot.reason}) "
                      f"{rows[slot.key].title[:70]}\n")


class Previewer:
    """Runs fetch → lead → compose without recording anything."""

    def __init__(self, config: Config, client: HttpClient, leads: LeadFinder,
                 accounts: Sequence[Account], hashtags: Callable[[str, str], Mapping[str, str]],
                 accounts_for: Callable[[str], Sequence[tuple[str, int]]]):
        self.config = config
        self.accounts_for = accounts_for
        self.client = client
        self.leads = leads
        self.accounts = {a.name: a for a in accounts}
        self.hashtags = hashtags

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
        """Per account: the text, its length as the platform counts it, the limit."""
        routed = {name for name, _ in self.accounts_for(article.feed)} or set(self.accounts)
        out = {}
        for name in sorted(routed):
            account = self.accounts[name]
            text = account.text(article, self.hashtags(article.feed, name))
            out[name] = {"text": text, "length": measure(text, account.limits),
                         "limit": account.limits.max_length}
        return out

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
                out.write(f"--- {name} ({post['length']}/{post['limit']})\n{post['text']}\n")
            out.write("\n")


def _as_url(source: str) -> str:
    return source if "://" in source else str(Path(source).resolve())
