"""Herald's poll path against its floors, side by side in one run (issue 12's table).

A child process serves N generated RSS 2.0 feeds of 50 items with HTML
descriptions on 127.0.0.1 (HTTP/1.1 keep-alive, ETag, TCP_NODELAY). This
process does the polling, so its CPU time (time.process_time) is the client's
alone. Per feed, medians of the rounds:

  first sight     Poller.poll on an empty store (fetch, parse, ingest) and
                  bot.feeds.fetch alone  vs  raw keep-alive GET + lxml item extraction,
                                         and vs raw GET + the fastest correct parse
                                         (bot.feeds.parse: the fast path, all fields)
                  bot.feeds.fetch        vs  the same GET + feedparser.parse
  unchanged feed  Poller.poll (304) and bot.feeds.fetch (304)
                                         vs  raw keep-alive conditional GET (http.client),
                                         vs  aiohttp's (the issue's floor) and urllib3's
  one new item    Poller.poll of a primed feed whose document gained one item
                                         vs  the same two floors
  naive loop      Herald's first-sight and 304 poll paths vs a feed2tweet-style
                  loop (feedparser.parse(url), an id set, a JSON cache file)
                  on its cold and warm cycles

    .venv/bin/python bench/feeds.py --feeds 200 --rounds 3
    .venv/bin/python bench/feeds.py --feeds 10000      # one 5-minute cycle's CPU, peak RSS

``--feeds 10000`` (any count over 2,000) primes that many feeds through the poll
path, then times one whole cycle with every feed unchanged and one in which
--changed of them (default 5 %) gained one item; it reports the CPU seconds of
each cycle on this one process (one core), the polls per second that CPU
sustains, the share of a 5-minute interval it fills, and peak RSS.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import inspect
import json
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import feedparser
import urllib3
from lxml import etree

# HERALD_ROOT runs the same benchmark against another checkout (the "before" figures).
sys.path.insert(0, os.environ.get("HERALD_ROOT") or str(Path(__file__).resolve().parent.parent))

from bot.articles import LeadFinder  # noqa: E402
from bot.config import FeedConfig, HttpSettings  # noqa: E402
from bot.feeds import FeedState, fetch, parse  # noqa: E402
from bot.http import HttpClient  # noqa: E402
from bot.poll import Poller  # noqa: E402
from bot.store import Store  # noqa: E402

ITEMS = 50


# ---------------------------------------------------------------- the feeds and their server


def feed_body(n: int, new: int = 0, items: int = ITEMS) -> bytes:
    """Feed ``n``'s document; ``new`` > 0 puts that many newer items on top
    (the oldest fall off), so version k+1 has exactly one item version k lacks."""
    keys = [f"new-{j}" for j in range(new, 0, -1)] + [str(i) for i in range(items)]
    parts = [_item(n, key) for key in keys[:items]]
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {n}</title><link>https://news{n}.example/</link>"
            + "".join(parts) + "</channel></rss>").encode()


def _item(n: int, key: str) -> str:
    minute = sum(map(ord, key)) % 60
    desc = (f"<p>Story {key} of feed {n}: <b>heavy rain</b> caused "
            f'<a href="https://news{n}.example/floods/{key}">floods</a> along the coast &amp; '
            "inland on Thursday, officials said.</p><p>More text follows here, with "
            "<em>emphasis</em> and a second paragraph of ordinary length.</p>")
    return (f"<item><title>Headline {key} for feed {n}</title>"
            f"<link>https://news{n}.example/2026/11/story-{key}</link>"
            f"<guid>https://news{n}.example/2026/11/story-{key}</guid>"
            f"<pubDate>Thu, 26 Nov 2026 14:{minute:02d}:00 +0000</pubDate>"
            f"<description><![CDATA[{desc}]]></description>"
            f"<category>News</category></item>")


class Handler(BaseHTTPRequestHandler):
    """GET /feed<n>.xml; GET /control?upto=K makes feeds n < K one item newer."""

    protocol_version = "HTTP/1.1"
    cache: dict = {}
    upto = 0

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and the
        # peer's delayed ACK add 40 ms to every answer and hide what is measured.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/control":
            Handler.upto = int(parse_qs(parts.query)["upto"][0])
            self.send_response(204)
            self.end_headers()
            return
        n = int(parts.path.removeprefix("/feed").removesuffix(".xml"))
        new = int(n < self.upto)
        tag = f'"{n}-{new}"'
        if self.headers.get("If-None-Match") == tag:
            self.send_response(304)
            self.send_header("ETag", tag)
            self.end_headers()
            return
        body = self.cache.get((n, new)) or feed_body(n, new)
        if len(self.cache) < 2000:
            self.cache[(n, new)] = body
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", tag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(port_out, handler) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    port_out.send(server.server_address[1])
    server.serve_forever()


def start_server(handler: type[Handler] = Handler) -> tuple[multiprocessing.Process, int]:
    """The feed server in a child process (its CPU is not this process's)."""
    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs, handler),
                                                       daemon=True)
    proc.start()
    return proc, ours.recv()


# ---------------------------------------------------------------- floors


class Raw:
    """The floor's HTTP: one http.client connection kept alive, nothing else."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def get(self, path: str, etag: str | None = None) -> bytes:
        self.conn.request("GET", path, headers={"If-None-Match": etag} if etag else {})
        return self.conn.getresponse().read()


class Naive:
    """A feed2tweet-style loop, the issue's "naive" comparison: each cycle
    feedparser.parse(url) fetches every feed (its own urllib, no validators,
    a new connection each time) and parses it whole; entry ids not in the cache
    are new; the cache is written to a JSON file at the end of the cycle."""

    def __init__(self, cache: str):
        self.cache, self.seen = cache, set()

    def cycle(self, urls: list[str]) -> int:
        new = 0
        for url in urls:
            for entry in feedparser.parse(url).entries:
                key = entry.get("id") or entry.get("link")
                if key not in self.seen:
                    self.seen.add(key)
                    new += 1
        with open(self.cache, "w") as fh:
            json.dump(sorted(self.seen), fh)
        return new


def aiohttp_304(base: str, paths: list[str], tags: list) -> None:
    """The issue's floor for an unchanged feed: aiohttp's keep-alive
    conditional GETs, one after another in one event loop."""
    async def run():
        async with aiohttp.ClientSession() as session:
            for path, tag in zip(paths, tags):
                async with session.get(base + path, headers={"If-None-Match": tag.etag}) as resp:
                    await resp.read()
    asyncio.run(run())


def urllib3_304(pools: urllib3.PoolManager, base: str, paths: list[str], tags: list) -> None:
    """The library Herald fetches with, bare: a keep-alive conditional GET."""
    for path, tag in zip(paths, tags):
        pools.request("GET", base + path, headers={"If-None-Match": tag.etag}, retries=False)


def lxml_items(body: bytes) -> list:
    root = etree.fromstring(body)
    return [{child.tag: child.text for child in item} for item in root.iter("item")]


# ---------------------------------------------------------------- measuring


def cpu(fn, count: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per item of running ``fn`` once over ``count`` items."""
    wall, began = time.perf_counter(), time.process_time()
    fn()
    return ((time.process_time() - began) / count * 1000,
            (time.perf_counter() - wall) / count * 1000)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class TimedStore(Store):
    """The real store, noting the CPU its calls from the poller take (``spent``,
    seconds), to tell the store's share of the poll path from the rest."""

    spent = 0.0
    _depth = 0

    def _timed(self, method, *args, **kwargs):
        began, self._depth = time.process_time(), self._depth + 1
        try:
            return method(*args, **kwargs)
        finally:
            self._depth -= 1
            if not self._depth:  # feed_row calls open_feed: count the outer call only
                self.spent += time.process_time() - began

    def feed_row(self, *args, **kwargs):
        return self._timed(super().feed_row, *args, **kwargs)

    def open_feed(self, *args, **kwargs):
        return self._timed(super().open_feed, *args, **kwargs)

    def update_feed(self, *args, **kwargs):
        return self._timed(super().update_feed, *args, **kwargs)

    def known_items(self, *args, **kwargs):
        return self._timed(super().known_items, *args, **kwargs)

    def ingest(self, *args, **kwargs):
        return self._timed(super().ingest, *args, **kwargs)

    def feed_unchanged(self, *args, **kwargs):
        return self._timed(super().feed_unchanged, *args, **kwargs)

    def flush_feeds(self, *args, **kwargs):
        return self._timed(super().flush_feeds, *args, **kwargs)


def in_store(herald: Poller, fn, count: int) -> dict[str, tuple[float, float]]:
    """``cpu`` of ``fn``, and the part of it spent in the store (as CPU, wall 0).
    The unchanged polls' times noted in memory are written inside the timing
    (the service writes them at each heartbeat)."""
    herald.store.spent = 0.0
    total = cpu(lambda: (fn(), herald.store.flush_feeds()), count)
    return {"": total, "_store": (herald.store.spent / count * 1000, 0.0)}


def poller(db: str, client: HttpClient, clock: Clock) -> Poller:
    store = TimedStore(f"sqlite:///{db}", clock)
    store.migrate()
    return Poller(store, client, LeadFinder(None), lambda feed: [("desk", 0)], clock)


def feeds_for(base: str, ns: range) -> list[FeedConfig]:
    return [FeedConfig(name=f"f{n}", url=f"{base}/feed{n}.xml", fetch_article="never")
            for n in ns]


def one_round(port: int, n: int, rnd: int, tmp: str) -> dict[str, tuple[float, float]]:
    base, paths = f"http://127.0.0.1:{port}", [f"/feed{i}.xml" for i in range(n)]
    raw, client, clock = Raw(port), HttpClient(HttpSettings()), Clock()
    pools = urllib3.PoolManager(retries=False)
    bodies = [raw.get(p) for p in paths]
    feeds = feeds_for(base, range(n))
    tags = [FeedState(etag=f'"{i}-0"') for i in range(n)]
    herald = poller(os.path.join(tmp, f"round{rnd}.db"), client, clock)
    naive = Naive(os.path.join(tmp, f"naive{rnd}.json"))
    out = {
        "naive_cold": cpu(lambda: naive.cycle([base + p for p in paths]), n),
        "naive_warm": cpu(lambda: naive.cycle([base + p for p in paths]), n),
        "floor_cold": cpu(lambda: [lxml_items(raw.get(p)) for p in paths], n),
        "floor_parse": cpu(lambda: [parse(raw.get(p), "b", base + p) for p in paths], n),
        "feedparser": cpu(lambda: [(raw.get(p), feedparser.parse(b))
                                   for p, b in zip(paths, bodies)], n),
        "fetch_cold": cpu(lambda: [fetch(client, f, FeedState()) for f in feeds], n),
        **_named("poll_cold", in_store(herald, lambda: [herald.poll(f) for f in feeds], n)),
        "floor_304": cpu(lambda: [raw.get(p, t.etag) for p, t in zip(paths, tags)], n),
        "aiohttp_304": cpu(lambda: aiohttp_304(base, paths, tags), n),
        "urllib3_304": cpu(lambda: urllib3_304(pools, base, paths, tags), n),
        "fetch_304": cpu(lambda: [fetch(client, f, t) for f, t in zip(feeds, tags)], n),
        **_named("poll_304", in_store(herald, lambda: [herald.poll(f, force=True)
                                                       for f in feeds], n)),
    }
    raw.get(f"/control?upto={n}")
    out["floor_new"] = cpu(lambda: [lxml_items(raw.get(p)) for p in paths], n)
    out["floor_new_parse"] = cpu(lambda: [parse(raw.get(p), "b", base + p) for p in paths], n)
    out.update(_named("poll_new", in_store(herald, lambda: [herald.poll(f, force=True)
                                                            for f in feeds], n)))
    raw.get("/control?upto=0")
    herald.store.close()
    return out


def _named(name: str, parts: dict) -> dict:
    return {name + suffix: value for suffix, value in parts.items()}


ROWS = [  # label, Herald, floor, what the floor is
    ("first sight, poll path (fetch+parse+store)", "poll_cold", "floor_parse",
     "keep-alive GET + fastest correct parse (fast path)"),
    ("first sight, poll path (fetch+parse+store)", "poll_cold", "floor_cold",
     "keep-alive GET + lxml item extraction"),
    ("first sight, fetch + parse", "fetch_cold", "floor_cold",
     "keep-alive GET + lxml item extraction"),
    ("first sight, fetch + parse vs feedparser", "fetch_cold", "feedparser",
     "keep-alive GET + feedparser.parse"),
    ("unchanged feed (304), poll path", "poll_304", "floor_304",
     "raw keep-alive conditional GET"),
    ("unchanged feed (304), fetch", "fetch_304", "floor_304",
     "raw keep-alive conditional GET"),
    ("unchanged feed (304), poll path", "poll_304", "aiohttp_304",
     "aiohttp keep-alive conditional GET (the issue's floor)"),
    ("unchanged feed (304), poll path", "poll_304", "urllib3_304",
     "urllib3 keep-alive conditional GET (Herald's HTTP library, bare)"),
    ("one new item in a feed, poll path", "poll_new", "floor_new_parse",
     "keep-alive GET + fastest correct parse (fast path)"),
    ("one new item in a feed, poll path", "poll_new", "floor_new",
     "keep-alive GET + lxml item extraction"),
]


def table(args, port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one_round(port, min(10, args.feeds), 99, tmp)  # warm up imports and connections
        rounds = [one_round(port, args.feeds, r, tmp) for r in range(args.rounds)]
    med = {key: tuple(statistics.median(r[key][i] for r in rounds) for i in (0, 1))
           for key in rounds[0]}
    print(f"{args.feeds} feeds of {ITEMS} items, median of {args.rounds} rounds, "
          "ms per feed (CPU of this process; wall in brackets)")
    print(f"{'':44} {'Herald':>8} {'floor':>8} {'ratio':>6}  floor is")
    for label, mine, floor, what in ROWS:
        (hc, hw), (fc, fw) = med[mine], med[floor]
        print(f"{label:44} {hc:8.3f} {fc:8.3f} {hc / fc:5.1f}x  {what}"
              f"   [wall {hw:.3f} vs {fw:.3f}: {hw / fw:.1f}x]")
    for label, mine, theirs in (("cold cycle (first sight)", "poll_cold", "naive_cold"),
                                ("warm cycle (nothing new, 304)", "poll_304", "naive_warm")):
        (hc, hw), (nc, nw) = med[mine], med[theirs]
        print(f"{label:30} Herald {hc:7.3f} vs naive feed2tweet-style loop {nc:7.3f} ms CPU a "
              f"feed: {nc / hc:5.1f}x faster   [wall {hw:.3f} vs {nw:.3f}: {nw / hw:.1f}x]")
    print("where the poll path's CPU goes (ms per feed): store calls (open_feed, known_items, "
          "ingest, update_feed) / the rest (HTTP client, parsing, poller)")
    for label, key in (("first sight", "poll_cold"), ("unchanged (304)", "poll_304"),
                       ("one new item", "poll_new")):
        store, total = med[key + "_store"][0], med[key][0]
        print(f"  {label:16} {store:7.3f} store / {total - store:7.3f} rest")


# ---------------------------------------------------------------- the 10,000-feed cycle


def cycle(args, port: int) -> None:
    n, base = args.feeds, f"http://127.0.0.1:{port}"
    changed_n = max(1, round(n * args.changed))
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        herald = poller(os.path.join(tmp, "cycle.db"), HttpClient(HttpSettings()), clock)
        feeds = feeds_for(base, range(n))
        prime = cpu(lambda: [herald.poll(f) for f in feeds], n)
        print(f"first sight of {n} feeds of {ITEMS} items: {prime[0] * n / 1000:.1f} s CPU "
              f"({prime[0]:.2f} ms a feed), {prime[1] * n / 1000:.1f} s wall")
        clock.now += timedelta(minutes=5)
        warm = in_store(herald, lambda: [herald.poll(f) for f in feeds], n)
        report("unchanged cycle (every feed 304)", warm, n)
        clock.now += timedelta(minutes=5)
        Raw(port).get(f"/control?upto={changed_n}")
        busy = in_store(herald, lambda: [herald.poll(f) for f in feeds], n)
        report(f"cycle with {changed_n} feeds ({args.changed:.0%}) one item newer", busy, n)
        herald.store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the polling process: {peak:.0f} MB "
          f"(store holds {n * ITEMS + changed_n} items, not the issue's 1,000,000 articles)")
    print("How far this carries: every poll was measured, one after another in one process "
          "(nothing is extrapolated from a sample), so the CPU of a cycle is one core's load "
          "for it; the service runs polls on threads, but the GIL keeps their Python on one "
          f"core. The store is SQLite in {tempfile.gettempdir()}; the feed server is another "
          "process on loopback (no TLS, no network latency).")


def report(label: str, measured: dict, polls: int) -> None:
    (cpu_ms, wall_ms), store_ms = measured[""], measured["_store"][0]
    seconds = cpu_ms * polls / 1000
    print(f"{label}: {seconds:.1f} s CPU for {polls} polls ({cpu_ms:.2f} ms a poll, of which "
          f"store {store_ms:.2f}; wall {wall_ms:.2f} ms) = {1000 / cpu_ms:.0f} polls/s on one "
          f"core; {seconds / 300:.0%} of one core over a 5-minute interval")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--changed", type=float, default=0.05,
                    help="share of feeds with one new item in the --feeds 10000 cycle")
    args = ap.parse_args()
    proc, port = start_server()
    try:
        if "known" not in inspect.signature(fetch).parameters:
            print("(a checkout without known=: the poll path parses every item)")
        (cycle if args.feeds > 2000 else table)(args, port)
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
