"""What the desk page (bot.desk) reads and does, over the store and the publisher.

The page shows the status document of ``bot.report.gather`` with the held
posts' composed text, and acts through the store's verbs, each allowed only
from the states ``retry``, ``skip``, ``approve`` and ``reject`` take on the
command line. An edited text is checked against the platform's limit as the
post will be counted there.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import report
from bot.compose import measure, within
from bot.publish import Publisher
from bot.store import Store

MAX_EDIT = 10_000   # characters an edited text may have before it is even measured
# action → (the states it applies to, what the editor reads after)
ACTIONS = {
    "approve": (("held",), "approved: it joins the queue"),
    "reject": (("held",), "rejected: it will not be sent"),
    "retry": (("failed", "skipped"), "queued again"),
    "skip": (("pending", "failed"), "skipped"),
}


class DeskBackend:
    """bot.desk.DeskData for one running service."""

    def __init__(self, store: Store, publisher: Callable[[], Publisher], zone: str,
                 clock: Callable[[], datetime]):
        # ``publisher`` is asked each time: a reload builds a new one.
        self.store, self.publisher, self.zone, self.clock = store, publisher, zone, clock

    def doc(self) -> dict:
        publisher = self.publisher()
        doc = report.gather(self.store, publisher, self.clock(), ZoneInfo(self.zone))
        rows = {r.id: r for r in self.store.held(limit=report.HELD_LINES)}   # one read, not one a post
        doc["held"] = [dict(post, text=self._text(publisher, rows.get(post["id"])))
                       for post in doc["held_posts"]]
        return doc

    def _text(self, publisher: Publisher, row) -> str:
        """The text the post would go out with, as composed now."""
        account = _account(publisher, row.account) if row else None
        if account is None:
            return ""
        try:
            return publisher.text_for(account, row)
        except Exception as exc:   # a poisoned article: the editor sees why, the page still loads
            return f"(cannot compose: {type(exc).__name__})"

    def act(self, action: str, post_id: int, text: str | None) -> str:
        """Do ``action`` to post ``post_id``; the sentence for the editor, or
        ValueError with the reason it cannot be done."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        row = self.store.post(post_id)
        if row is None:
            raise ValueError(f"post {post_id} does not exist (any more)")
        allowed, done = ACTIONS[action]
        edited = (text or "").strip() or None if action == "approve" else None
        if edited is not None and (problem := self.check_text(post_id, edited)):
            raise ValueError(problem)
        if row.status not in allowed or not self._change(action, post_id, edited):
            raise ValueError(f"post {post_id} is {row.status}, not {' or '.join(allowed)}")
        return f"post {post_id} ({row.account}) {done}: {report.cut(row.title or '', 80)}"

    def _change(self, action: str, post_id: int, text: str | None) -> int:
        store = self.store
        return {"approve": lambda: store.approve(post_id, text),
                "reject": lambda: store.reject(post_id),
                "retry": lambda: store.retry(row_id=post_id),
                "skip": lambda: store.skip(post_id)}[action]()

    def check_text(self, post_id: int, text: str) -> str | None:
        """None when ``text`` fits its account's platform, else why not."""
        row = self.store.post(post_id)
        account = _account(self.publisher(), row.account) if row else None
        if account is None:
            return f"post {post_id} belongs to no configured account"
        if len(text) > MAX_EDIT:
            return f"the text is {len(text)} characters; the limit is {account.limits.max_length}"
        used = measure(text, account.limits)
        if used > account.limits.max_length:
            return (f"the text counts {used} on {account.config.platform}; "
                    f"the limit is {account.limits.max_length}")
        if not within(text, account.limits):
            return (f"the text is {len(text.encode('utf-8', 'surrogatepass'))} bytes of UTF-8; "
                    f"{account.config.platform} takes at most {account.limits.max_bytes}")
        return None


def _account(publisher: Publisher, name: str):
    return next((a for a in publisher.accounts if a.name == name), None)
