"""Small shared helpers for tests: a settable clock and article factories."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.models import Article

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


def article(n: int, feed: str = "world", **changes) -> Article:
    values = dict(feed=feed, item_id=f"guid-{n}", url=f"https://news.example.org/story-{n}",
                  title=f"Story number {n}", lead=f"The lead sentence of story {n} is here.",
                  published=T0 - timedelta(hours=n))
    values.update(changes)
    return Article(**values)
