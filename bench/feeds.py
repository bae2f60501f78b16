"""Herald's feed fetching and parsing against their floors, side by side in one run.

Serves N generated RSS 2.0 feeds of 50 items with HTML descriptions from a
threaded server on 127.0.0.1 (keep-alive, ETag), then prints per feed:

  unchanged feed   Herald fetch (304)        vs requests.Session + If-None-Match
  first sight      Herald fetch + parse      vs fetch + lxml item extraction
  parser           feedparser path           vs fast path (bot.feeds.parse)

    .venv/bin/python bench/feeds.py --feeds 200 --rounds 3
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from lxml import etree

# HERALD_ROOT runs the same benchmark against another checkout (the "before" figures).
sys.path.insert(0, os.environ.get("HERALD_ROOT") or str(Path(__file__).resolve().parent.parent))

from bot.config import FeedConfig, HttpSettings  # noqa: E402
from bot.feeds import FeedState, fetch, parse  # noqa: E402
from bot.http import HttpClient  # noqa: E402


def feed_body(n: int, items: int = 50) -> bytes:
    parts = []
    for i in range(items):
        desc = (f"<p>Story {i} of feed {n}: <b>heavy rain</b> caused "
                f'<a href="https://news{n}.example/floods/{i}">floods</a> along the coast &amp; '
                "inland on Thursday, officials said.</p><p>More text follows here, with "
                "<em>emphasis</em> and a second paragraph of ordinary length.</p>")
        parts.append(
            f"<item><title>Headline {i} for feed {n}</title>"
            f"<link>https://news{n}.example/2026/11/story-{i}</link>"
            f"<guid>https://news{n}.example/2026/11/story-{i}</guid>"
            f"<pubDate>Thu, 26 Nov 2026 14:{i % 60:02d}:00 +0000</pubDate>"
            f"<description><![CDATA[{desc}]]></description>"
            f"<category>News</category></item>")
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {n}</title><link>https://news{n}.example/</link>"
            + "".join(parts) + "</channel></rss>").encode()


def serve(bodies: dict[str, bytes]):
    tags = {path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in bodies.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Headers and body go out in two writes: without this, Nagle and the
            # peer's delayed ACK add 40 ms to every answer and hide what is measured.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):  # noqa: N802
            tag = tags[self.path]
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            body = bodies[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", tag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, tags


def per_feed(fn, count: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / count * 1000


def lxml_items(body: bytes) -> list:
    root = etree.fromstring(body)
    return [{child.tag: child.text for child in item} for item in root.iter("item")]


def one_round(base: str, paths: list[str], bodies, tags) -> dict[str, float]:
    n = len(paths)
    session = requests.Session()
    client = HttpClient(HttpSettings())
    feeds = [FeedConfig(name=p, url=base + p) for p in paths]
    unchanged = [FeedState(etag=tags[p]) for p in paths]
    cold = FeedState()
    out = {}
    out["floor_304"] = per_feed(lambda: [session.get(base + p, headers={
        "If-None-Match": tags[p]}).content for p in paths], n)
    out["herald_304"] = per_feed(lambda: [fetch(client, f, s) for f, s in zip(feeds, unchanged)], n)
    out["floor_cold"] = per_feed(lambda: [lxml_items(session.get(base + p).content)
                                          for p in paths], n)
    out["herald_cold"] = per_feed(lambda: [fetch(client, f, cold) for f in feeds], n)
    # A checkout without the fast path has no ``fast`` switch: feedparser is all it has.
    slow = {"fast": False} if "fast" in inspect.signature(parse).parameters else {}
    out["feedparser"] = per_feed(lambda: [parse(bodies[p], "b", base + p, **slow)
                                          for p in paths], n)
    out["fast"] = per_feed(lambda: [parse(bodies[p], "b", base + p) for p in paths], n)
    session.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bodies = {f"/feed{n}.xml": feed_body(n) for n in range(args.feeds)}
    server, tags = serve(bodies)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    paths = list(bodies)
    one_round(base, paths[:10], bodies, tags)  # warm up imports and connections
    rounds = [one_round(base, paths, bodies, tags) for _ in range(args.rounds)]
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    rows = [("unchanged feed (304), wall per feed", "herald_304", "floor_304",
             "requests.Session conditional"),
            ("first sight, fetch + parse, per feed", "herald_cold", "floor_cold",
             "fetch + lxml item extraction"),
            ("parser: feedparser vs fast path", "feedparser", "fast", "bot.feeds fast path")]
    print(f"{args.feeds} feeds of 50 items, median of {args.rounds} rounds (ms per feed)")
    print(f"{'':40} {'Herald':>9} {'floor':>9} {'ratio':>7}  floor is")
    for label, mine, floor, what in rows:
        print(f"{label:40} {med[mine]:9.3f} {med[floor]:9.3f} {med[mine] / med[floor]:6.1f}x  {what}")
    server.shutdown()


if __name__ == "__main__":
    main()
