"""Which feed items a route lets through (keywords, categories and regular
expressions), and so which accounts an item goes to and how (``router``):
pure functions over an Article.

Keywords and categories are compared folded (NFKD, combining marks removed,
casefolded), so "Élection" matches "election" and "STRASSE" matches "straße".
A keyword is a whole word in scripts written with spaces; at an end written
in a script without them (Chinese, Japanese, Thai, ...) a word boundary means
nothing, and that end matches anywhere (as a substring).

Regexes use the ``regex`` module (as compose does), compiled once (checked at
config time; ``compiled`` caches them) and searched with a timeout over at
most MAX_TEXT characters of the title and of the lead: a pattern with
catastrophic backtracking (``(a+)+$``) costs a bounded time and never stalls a
poll. A search that times out filters the item out, with that reason, rather
than letting through what the editor meant to stop.
"""
from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import regex

from bot.configtypes import AccountConfig, Filters, RouteConfig
from bot.models import Article, Target

log = logging.getLogger(__name__)

MAX_PATTERN = 500       # characters of a filter regex
MAX_TEXT = 5_000        # characters of the title, and of the lead, that filters look at
TIMEOUT = 0.05          # seconds one regex search may take
# Scripts written without spaces between words: a keyword's end in one of them
# needs no word boundary.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
_WORD_CHAR = rf"(?:(?![{_UNSPACED}])[\p{{L}}\p{{N}}])"
_UNSPACED_CHAR = regex.compile(rf"[{_UNSPACED}]")
_TAG = regex.compile(r"<[^<>]{0,2000}>")


def fold(text: str) -> str:
    """``text`` for comparing: compatibility-decomposed, without combining
    marks, casefolded (twice over: casefolding can yield marks, "ǰ")."""
    if text.isascii():   # most titles: nothing to decompose
        return text.lower()
    for _ in range(2):
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        text = text.casefold()
    return text


@lru_cache(maxsize=256)
def compiled(pattern: str) -> regex.Pattern:
    """``pattern`` compiled case-insensitively; regex.error when invalid."""
    return regex.compile(pattern, regex.IGNORECASE | regex.V0)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a filter regex, or None when it can."""
    if len(pattern) > MAX_PATTERN:
        return f"expected a regular expression of at most {MAX_PATTERN} characters"
    try:
        compiled(pattern)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        return f"not a valid regular expression ({exc})"
    return None


@lru_cache(maxsize=4096)
def keyword_pattern(keyword: str) -> regex.Pattern:
    """A folded keyword as a regex over folded text: its words in order, any
    white space between them, a word boundary at each end in a spaced script."""
    folded = fold(keyword).split()
    body = r"\s+".join(regex.escape(word) for word in folded)
    before = "" if _UNSPACED_CHAR.match(folded[0][0]) else rf"(?<!{_WORD_CHAR})"
    after = "" if _UNSPACED_CHAR.match(folded[-1][-1]) else rf"(?!{_WORD_CHAR})"
    return regex.compile(before + body + after)


@dataclass(frozen=True)
class Matcher:
    """A Filters compiled: call ``decide(article)``."""

    filters: Filters
    include: tuple[tuple[str, regex.Pattern], ...]
    exclude: tuple[tuple[str, regex.Pattern], ...]
    categories: frozenset[str]
    exclude_categories: frozenset[str]
    match: regex.Pattern | None
    not_match: regex.Pattern | None

    def decide(self, article: Article) -> str | None:
        """None when ``article`` passes, else a short reason it does not."""
        for check in (self._categories, self._keywords, self._patterns):
            reason = check(article)
            if reason:
                return reason
        return None

    def _categories(self, article: Article) -> str | None:
        folded = {fold(c).strip(): c for c in article.categories}
        for key, name in folded.items():
            if key in self.exclude_categories:
                return f"category {_quoted(name)} excluded"
        if self.categories and not self.categories & folded.keys():
            if not folded:
                return "no category (included: " + ", ".join(self.filters.categories) + ")"
            return "category " + ", ".join(map(_quoted, folded.values())) + " not included"
        return None

    def _keywords(self, article: Article) -> str | None:
        text = fold(_title(article)) + "\n" + fold(_lead(article))
        for keyword, pattern in self.exclude:
            if pattern.search(text):
                return f"excluded keyword {_quoted(keyword)}"
        if self.include and not any(pattern.search(text) for _, pattern in self.include):
            return "no included keyword (" + ", ".join(self.filters.include) + ")"
        return None

    def _patterns(self, article: Article) -> str | None:
        texts = (_title(article), _lead(article))
        try:
            if self.match and not any(self.match.search(t, timeout=TIMEOUT) for t in texts):
                return f"does not match /{self.filters.match}/"
            if self.not_match and any(self.not_match.search(t, timeout=TIMEOUT) for t in texts):
                return f"matches /{self.filters.not_match}/"
        except TimeoutError:
            log.warning("feed %s: a filter regex took over %gs on %s; filtered out",
                        article.feed, TIMEOUT, article.item_id, extra={"feed": article.feed})
            return "a filter regex timed out"
        return None


@lru_cache(maxsize=256)
def matcher(filters: Filters) -> Matcher:
    """``filters`` compiled once (keywords folded, regexes compiled)."""
    words = lambda items: tuple((k, keyword_pattern(k)) for k in items if fold(k).split())  # noqa: E731
    return Matcher(filters=filters, include=words(filters.include), exclude=words(filters.exclude),
                   categories=frozenset(fold(c).strip() for c in filters.categories),
                   exclude_categories=frozenset(fold(c).strip() for c in filters.exclude_categories),
                   match=compiled(filters.match) if filters.match else None,
                   not_match=compiled(filters.not_match) if filters.not_match else None)


def decide(filters: Filters | None, article: Article) -> str | None:
    """None when ``article`` passes ``filters`` (or there are none), else why not:
    'excluded keyword "sport"', 'category "Opinion" not included',
    'does not match /^breaking/', ..."""
    return matcher(filters).decide(article) if filters else None


def decider(filters: Filters | None) -> Callable[[Article], str | None]:
    """``decide`` with ``filters`` compiled now."""
    if not filters:
        return lambda article: None
    return matcher(filters).decide


def _title(article: Article) -> str:
    return article.title[:MAX_TEXT]


def _lead(article: Article) -> str:
    """The lead, else the feed's summary without its tags (bounded either way)."""
    return article.lead[:MAX_TEXT] if article.lead else _TAG.sub(" ", article.summary[:4 * MAX_TEXT])[:MAX_TEXT]


def _quoted(text: str) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= 60 else text[:57] + "…") + '"'


# ---------------------------------------------------------------- routing

_RANK = {"pending": 2, "held": 1, "filtered": 0}


def router(routes: Sequence[RouteConfig],
           accounts: Sequence[AccountConfig]) -> Callable[[Article], list[Target]]:
    """Per article, the accounts ``routes`` (those carrying a feed) reach, each with its route's
    decision: "filtered" (with the reason) when the route's filters stop it,
    else "held" when the route or the account wants approval, else "pending".

    An account two routes reach gets the best decision (pending over held over
    filtered), at the highest priority among the routes that gave it. The
    filters are compiled once, here."""
    approving = {a.name for a in accounts if a.approve}
    legs = [(route, decider(route.filters)) for route in routes]

    def targets(article: Article) -> list[Target]:
        best: dict[str, Target] = {}
        for route, decide_one in legs:
            reason = decide_one(article)
            for name in route.accounts:
                status = "filtered" if reason else "held" if route.approve or name in approving else "pending"
                best[name] = _better(best.get(name), Target(name, route.priority, status, reason))
        return sorted(best.values(), key=lambda t: t.account)
    return targets


def _better(old: Target | None, new: Target) -> Target:
    if old is None:
        return new
    return max(old, new, key=lambda t: (_RANK[t.status], t.priority))
