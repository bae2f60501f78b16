"""Benchmark: Herald's post length against twitter-text 3.1.0 (npm, X's own library).

Composes N X posts from generated articles (seeded: newer emoji, ZWJ sequences,
flag-like pairs, bare ccTLD domains, t.co links with a query, accented domains,
CJK, RTL), asks node's ``twitter-text`` ``parseTweet`` for each, and prints how
often Herald's counting disagrees, how often Herald counts less (the dangerous
way), and how many composed posts the reference counts over 280.

Needs node and ``npm install twitter-text@3.1.0`` in some folder (never in the
repository); tests do not use this script.

    cd /tmp/tt && npm install twitter-text@3.1.0
    .venv/bin/python bench/twitter_count.py --node-modules /tmp/tt/node_modules [-n 10000]
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import twittertext  # noqa: E402
from bot.compose import Limits, compose  # noqa: E402
from bot.models import Article  # noqa: E402

X = Limits(280, 23, "twitter")
TEMPLATES = ["{title}: {lead} {hashtags} {url}", "{title}\n\n{lead}\n{url}", "{lead} {url}"]
PIECES = ["news", "Zürich", "talks,", "東京都は", "、", "。", "مرحبا", "שלום", "ñandú.museum/",
          "foo.jp", "it.so", "bit.ly", "t.co", "https://t.co/ab1?x=1", "example.com", "éa.com/x",
          "🫶🏼", "🐦‍⬛", "🙂‍↕️", "🏃‍➡️", "🐻‍❄️", "🧑‍🤝‍🧑", "🇦🇦", "🇫🇷", "👨‍👩‍👧‍👦", "👍🏽",
          "❤️‍🔥", "😶‍🌫️", "🫱🏻‍🫲🏿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "#️⃣", "©", "©️", "👩🏽‍🚀", "🤝🏻",
          "\u202e", "\u200b", "\x00", "e\u0301", "supercalifragilistic", "1,000", "(update)"]

NODE_SCRIPT = """
const tt = require('twitter-text');
const lines = require('fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);
for (const line of lines) console.log(tt.parseTweet(JSON.parse(line)).weightedLength);
"""


def articles(count: int, seed: int) -> list[Article]:
    """``count`` generated articles, the same for the same seed."""
    rnd = random.Random(seed)

    def text(most: int) -> str:
        return " ".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, most)))

    return [Article(feed="f", item_id=str(i), url=f"https://example.com/{i}",
                    title=text(25), lead=text(90), categories=("News", "Zürich"))
            for i in range(count)]


def reference_lengths(texts: list[str], node_modules: Path) -> list[int]:
    """twitter-text 3.1.0's weighted length of each text, from node."""
    body = "\n".join(json.dumps(t) for t in texts) + "\n"
    env = {"NODE_PATH": str(node_modules), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    out = subprocess.run(["node", "-e", NODE_SCRIPT], input=body, capture_output=True,
                         text=True, check=True, env=env).stdout
    return [int(float(n)) for n in out.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, required=True)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--show", type=int, default=5, help="disagreements to print")
    args = parser.parse_args()
    posts = [compose(a, TEMPLATES[i % len(TEMPLATES)], X)
             for i, a in enumerate(articles(args.n, args.seed))]
    reference = reference_lengths(posts, args.node_modules)
    herald = [twittertext.weighted_length(p) for p in posts]
    as_310 = [twittertext.parse(p, as_310=True).weighted_length for p in posts]
    report(posts, herald, as_310, reference, args.show)
    return 0


def report(posts: list[str], herald: list[int], as_310: list[int], reference: list[int],
           show: int) -> None:
    differ = [i for i, (h, r) in enumerate(zip(herald, reference, strict=True)) if h != r]
    under = [i for i in differ if herald[i] < reference[i]]
    print(f"posts: {len(posts)}")
    print(f"Herald (max of both) != reference: {len(differ)}; Herald < reference: {len(under)}")
    print(f"Herald as_310 != reference: {sum(a != r for a, r in zip(as_310, reference))}")
    print(f"over 280 by reference: {sum(r > 280 for r in reference)}; "
          f"by Herald: {sum(h > 280 for h in herald)}")
    for i in (under + differ)[:show]:
        print(f"  herald {herald[i]} reference {reference[i]}: {posts[i]!r}")


if __name__ == "__main__":
    sys.exit(main())
