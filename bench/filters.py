"""Benchmark: the cost of deciding a route's filters for one article.

Decides a typical route's filters (6 include and 6 exclude keywords, two
categories, a match and a not_match regex) for N generated articles (title
and a 300-character lead, mixed Latin with accents and CJK), and prints the
time per article as a ratio to a floor measured in the same run: folding the
title and lead once (what any accent-insensitive filter must do), and to a
naive substring check (lowercase, ``in``; wrong on whole words and accents).

    .venv/bin/python bench/filters.py [-n 20000]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.configtypes import Filters  # noqa: E402
from bot.filters import decide, fold  # noqa: E402
from bot.models import Article  # noqa: E402

WORDS = ["élection", "vote", "Zürich", "council", "bridge", "東京都", "budget", "said", "weather", "Müller",
         "café", "strike", "transport", "goal", "market", "the", "of", "and", "a", "in", "to", "news"]
RARE = ["horoscope", "quiz", "sport", "オリンピック"]   # in about one article in five
RULES = Filters(include=("election", "vote", "budget", "council", "東京", "strike"),
                exclude=("horoscope", "quiz", "sport", "sponsored", "live blog", "オリンピック"),
                categories=("World", "Politics"), exclude_categories=("Ads",),
                match=r"\b(said|says|voted?|年)\b|[。]", not_match=r"^\[ad\]")


def articles(count: int, seed: int = 1) -> list[Article]:
    rnd = random.Random(seed)
    text = lambda n: " ".join(rnd.choice(WORDS) for _ in range(n))  # noqa: E731
    return [Article(feed="f", item_id=str(i), url=f"https://n.example/{i}", title=text(8),
                    lead=text(40) + (" " + rnd.choice(RARE) if rnd.random() < 0.2 else ""),
                    categories=(rnd.choice(["World", "Politics", "Politics", "Ads"]),)) for i in range(count)]


def timed(work, items) -> float:
    started = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - started) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    items = articles(parser.parse_args().n)
    decide(RULES, items[0])   # compile once, as the config does
    floor = timed(lambda a: fold(a.title) + fold(a.lead), items)
    naive_words = [w.lower() for w in RULES.include + RULES.exclude]
    naive = timed(lambda a: [w in (a.title + a.lead).lower() for w in naive_words], items)
    herald = timed(lambda a: decide(RULES, a), items)
    passed = sum(decide(RULES, a) is None for a in items)
    print(f"articles: {len(items)}, passed: {passed}")
    print(f"floor (fold title+lead): {floor * 1e6:.1f} µs/article")
    print(f"naive substring check:   {naive * 1e6:.1f} µs/article  ({naive / floor:.2f}× floor)")
    print(f"Herald decide():         {herald * 1e6:.1f} µs/article  ({herald / floor:.2f}× floor)")


if __name__ == "__main__":
    main()
