"""The shared paged look-up: its paging rules hold for any adapter's pages."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.adapters.base import LOOKUP_LIMIT
from bot.adapters.lookup import search_pages, without_links
from bot.errors import Rejected

SINCE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def pages_of(items: list[int], size: int):
    """A fetch over ``items`` in pages of ``size``; the cursor is the next offset."""
    calls = []

    def fetch(cursor):
        start = cursor or 0
        calls.append(start)
        page = items[start:start + size]
        return page, (start + size if start + size < len(items) else None)
    return fetch, calls


def test_it_pages_until_the_post_and_stops_there():
    fetch, calls = pages_of(list(range(250)), 100)
    assert search_pages(fetch, lambda n: n == 230, SINCE) == 230
    assert calls == [0, 100, 200]


def test_the_last_page_seen_whole_means_absent():
    fetch, calls = pages_of(list(range(150)), 100)
    assert search_pages(fetch, lambda n: False, SINCE) is None and calls == [0, 100]


def test_an_empty_page_ends_it_even_with_a_cursor():
    assert search_pages(lambda cursor: ([], "more"), lambda n: True, SINCE) is None


def test_past_the_limit_it_is_rejected_never_absent():
    fetch, _ = pages_of(list(range(LOOKUP_LIMIT + 50)), 100)
    with pytest.raises(Rejected, match=f"more than {LOOKUP_LIMIT} toots since 2026-01-01"):
        search_pages(fetch, lambda n: False, SINCE, "toots")


def test_text_is_compared_without_its_links():
    assert without_links("Budget  passed https://t.co/x\n") == without_links(
        "Budget passed https://news.example/budget")
