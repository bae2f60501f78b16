"""Which feed items a route lets through: keywords, categories and regular
expressions, decided by pure functions over an Article.

Keywords and categories are compared folded (NFKD, combining marks removed,
casefolded), so "Élection" matches "election" and "STRASSE" matches "straße".
A keyword is a whole word in scripts written with spaces; in scripts without
them (Chinese, Japanese, Thai, ...) a word boundary means nothing and the
keyword matches as a substring.

Regexes use the ``regex`` module, compiled once (at config time, the first
call caches them) and run with a timeout over a capped length of text, so a
pattern with catastrophic backtracking costs a bounded time and never hangs a
poll: a timed-out pattern counts as "no match" and is logged.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import regex

log = logging.getLogger(__name__)

MAX_PATTERN = 500       # characters of a filter regex
MAX_TEXT = 5_000        # characters of title + lead a regex looks at
TIMEOUT = 0.05          # seconds one regex search may take


@lru_cache(maxsize=256)
def compiled(pattern: str) -> regex.Pattern:
    """``pattern`` compiled case-insensitively (Unicode); regex.error when invalid."""
    return regex.compile(pattern, regex.IGNORECASE | regex.UNICODE | regex.V0)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a filter regex, or None when it can."""
    if len(pattern) > MAX_PATTERN:
        return f"expected a regular expression of at most {MAX_PATTERN} characters"
    try:
        compiled(pattern)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        return f"not a valid regular expression ({exc})"
    return None
