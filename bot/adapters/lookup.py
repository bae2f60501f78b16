"""The paged look-up every adapter's ``find_recent`` shares, and the matching helpers.

An adapter writes only what is its own: how to fetch one page of the account's
recent posts (``fetch(cursor) -> (items, next cursor)``) and how to tell its
post among them. The paging rules live here, once: newest first, an empty page
or no cursor ends the search (None: "searched all of it"), and more than
LOOKUP_LIMIT posts without the end is Rejected, never "not found".
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bot.adapters.base import LOOKUP_LIMIT
from bot.errors import PublishError, Rejected

T = TypeVar("T")
URL_RE = re.compile(r"https?://\S+")


def search_pages(fetch: Callable[[Any], tuple[Sequence[T], Any]], is_post: Callable[[T], bool],
                 since: datetime, noun: str = "posts") -> T | None:
    """The first item ``is_post`` accepts, paging with ``fetch`` from cursor None;
    None when every page since ``since`` was seen. Raises Rejected past
    LOOKUP_LIMIT items, and whatever ``fetch`` raises."""
    cursor, seen = None, 0
    while seen < LOOKUP_LIMIT:
        items, cursor = fetch(cursor)
        found = next((item for item in items if is_post(item)), None)
        if found is not None:
            return found
        seen += len(items)
        if not (cursor and items):   # an empty page ends it
            return None
    raise Rejected(f"cannot look up recent posts: more than {LOOKUP_LIMIT} {noun} since "
                   f"{since:%Y-%m-%d %H:%M} UTC")


def cannot_look_up(error: PublishError) -> Rejected:
    """A refusal to list posts as Rejected: an account whose posting works must
    not be paused for it, and "not found" would invite a double post."""
    rejected = Rejected(f"cannot look up recent posts: {error.message}")
    rejected.__cause__ = error
    return rejected


def squash(text: str) -> str:
    """``text`` with runs of white space as one space, ends trimmed."""
    return " ".join(text.split())


def without_links(text: str) -> str:
    """``text`` with its URLs taken out (platforms shorten or move them), squashed."""
    return squash(URL_RE.sub("", text))
