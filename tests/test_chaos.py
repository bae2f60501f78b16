"""Never lose a post, never post twice.

The slow test runs a small ``bench/chaos.py``: Herald as a real process, killed
with SIGKILL at random moments, against fake platforms that fail, rate-limit
and accept slowly. The fast tests replay, deterministically, the ways the
chaos run once posted twice (a post whose outcome was unknown was looked up
only after other sends had pushed it out of a lookup that saw the latest 20
posts) and assert the property that replaced that window: the lookup covers
everything since the post's first try, however many posts and days later.
"""
from __future__ import annotations

import importlib.util
import io
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.base import LOOKUP_LIMIT, Adapter
from bot.config import AccountConfig
from bot.errors import Rejected, Transient
from bot.models import Post, Receipt
from bot.publish import Account, Publisher
from bot.secret import Secret
from bot.store import Store
from tests.helpers import Clock, article

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_LAG = timedelta(minutes=5)   # the platform's clock runs behind ours


class TimelineAdapter(Adapter):
    """A platform that keeps when it accepted each post and honours the lookup
    contract: it sees only posts since ``since`` and refuses (Rejected) to
    search more than LOOKUP_LIMIT. ``script`` answers publish calls: an
    exception, "accept-then-timeout" or None (accept); ``lookup_script`` does
    the same for find_recent."""

    platform = "timeline"
    max_length = 280
    url_length = 23
    counting = "twitter"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.posts: list[tuple[str, datetime]] = []
        self.script: list = []
        self.lookup_script: list = []

    @property
    def links(self) -> list[str]:
        return [link for link, _ in self.posts]

    def accept(self, post: Post) -> None:
        self.posts.append((post.link, self.clock() - PLATFORM_LAG))

    def publish(self, post: Post) -> Receipt:
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Exception):
            raise answer
        self.accept(post)
        if answer == "accept-then-timeout":
            raise Transient("ReadTimeout: no answer within 1 s")
        return Receipt(platform_id=f"id-{len(self.posts)}")

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        answer = self.lookup_script.pop(0) if self.lookup_script else None
        if isinstance(answer, Exception):
            raise answer
        seen = [link for link, at in self.posts if at >= since]
        if len(seen) > LOOKUP_LIMIT:
            raise Rejected(f"cannot look up recent posts: more than {LOOKUP_LIMIT}")
        return Receipt(platform_id="found") if post.link in seen else None


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    store = Store(f"sqlite:///{tmp_path / 'herald.db'}", clock)
    store.migrate()
    store.feed_row("world", "https://news.example.org/rss")
    store.ingest("world", [], [("x", 0)])   # first sight
    yield store
    store.close()


def publisher(store, clock, worker="w1", max_attempts=20):
    config = AccountConfig(name="x", platform="timeline", template="{title} {url}",
                           credentials={"token": Secret("t")}, max_attempts=max_attempts)
    adapter = TimelineAdapter("x", {}, config.credentials, clock=clock)
    return Publisher(store, [Account(config, adapter)], clock, worker, rng=lambda: 0.5), adapter


def send_all(pub, clock, passes=40):
    for _ in range(passes):
        clock.advance(minutes=30)
        pub.run()


def test_an_orphan_accepted_long_ago_is_found_after_many_other_sends(store, clock):
    store.ingest("world", [article(n) for n in range(1, 32)], [("x", 0)])
    dead, platform = publisher(store, clock, worker="dead")
    row = next(r for r in store.queue("x") if r.url == article(31).url)
    post = dead._post(dead.accounts[0], row)
    store.claim(row.id, "dead", post.text)
    platform.accept(post)                 # accepted; the process died before recording it

    clock.advance(days=3)
    survivor, adapter = publisher(store, clock, worker="new")
    adapter.posts = platform.posts
    adapter.lookup_script = [Transient("HTTP 503")] * 3
    send_all(survivor, clock)
    assert adapter.links.count(article(31).url) == 1, "found, not posted again"
    assert len(adapter.posts) == 31
    assert store.outbox_counts()["x"] == {"sent": 31}


def test_an_orphan_that_can_never_be_looked_up_fails_and_frees_its_account(store, clock):
    store.ingest("world", [article(n) for n in range(1, 4)], [("x", 0)])
    row = store.queue("x")[0]
    store.claim(row.id, "dead", "text")
    survivor, adapter = publisher(store, clock, worker="new")
    adapter.lookup_script = [Rejected("cannot look up recent posts: not in this tier")]
    assert survivor.run() == 2
    assert store.outbox_counts()["x"] == {"sent": 2, "failed": 1}
    assert "check it, then retry or skip" in store.recent(["failed"])[0].last_error


def test_a_post_that_may_have_been_accepted_is_found_after_the_others_went(store, clock):
    store.ingest("world", [article(n) for n in range(1, 32)], [("x", 0)])
    pub, adapter = publisher(store, clock)
    adapter.script = ["accept-then-timeout"]    # the first post is accepted, then times out
    adapter.lookup_script = [Transient("HTTP 503")] * 5
    pub.run()
    first = adapter.links[0]
    assert len(adapter.posts) == 1, "after a failed try the whole account backs off"
    send_all(pub, clock)
    assert adapter.links.count(first) == 1, "found by the lookup, not posted again"
    assert len(set(adapter.links)) == len(adapter.posts) == 31
    assert store.outbox_counts()["x"] == {"sent": 31}


def test_a_post_retried_by_hand_weeks_later_is_found_not_resent(store, clock):
    store.ingest("world", [article(1)], [("x", 0)])
    pub, adapter = publisher(store, clock, max_attempts=1)
    adapter.script = ["accept-then-timeout"]
    pub.run()
    (row,) = store.recent(["failed"])
    clock.advance(days=30)
    store.ingest("world", [article(n) for n in range(2, 42)], [("x", 0)])
    send_all(pub, clock)
    store.retry(row_id=row.id)            # resets queued_at; the first try stays known
    pub.run()
    assert adapter.links.count(article(1).url) == 1 and len(adapter.posts) == 41
    assert store.outbox_counts()["x"] == {"sent": 41}


def load_chaos():
    spec = importlib.util.spec_from_file_location("bench_chaos", ROOT / "bench" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_chaos_run_covers_every_platform_the_fake_server_registers():
    chaos = load_chaos()
    from tests.fakes.server import platforms
    assert list(chaos.platforms()) == sorted(n for n, p in platforms().items() if p.account)
    assert {"twitter", "facebook", "mastodon", "bluesky"} <= set(chaos.platforms())
    assert list(chaos.platforms(["mastodon", "twitter"])) == ["mastodon", "twitter"]
    with pytest.raises(ValueError, match="no fake platform myspace; known: bluesky"):
        chaos.platforms(["twitter", "myspace"])


def test_a_platforms_tally_counts_each_article_once_and_names_the_rest():
    chaos = load_chaos()
    links = [f"https://news.example.org/chaos/1-2/story-{n}" for n in range(4)]
    posts = [{"link": links[0]}, {"link": None, "text": f"Story 1 {links[1]}"},
             {"link": links[1]}, {"link": None, "text": "no link at all"}, {"link": links[3]}]
    t = chaos.tally(posts, links, chaos.Counter(refused=0))
    assert (t.pairs, t.once, t.lost, t.duplicates) == (4, 2, [2], [(1, 2)])
    assert t.strays == ["None x1"] and not t.ok
    assert chaos.tally([{"link": link} for link in links], links, chaos.Counter()).ok
    assert not chaos.tally([{"link": link} for link in links], links,
                           chaos.Counter(refused=1)).ok, "a refused re-send fails the run"


def test_a_fakes_log_tells_refused_re_sends_from_requests_cut_short(tmp_path):
    chaos = load_chaos()
    log = tmp_path / "fake-twitter.jsonl"
    lines = [("POST", "/2/tweets", 201, None), ("POST", "/2/tweets", 503, "503"),
             ("POST", "/2/tweets", 403, None), ("POST", "/2/tweets", 400, None),
             ("GET", "/2/users/1/tweets", 400, None), ("POST", "/2/tweets", 201, "slow-accept")]
    log.write_text("".join(json.dumps({"method": m, "path": p, "status": s, "fault": f}) + "\n"
                           for m, p, s, f in lines))
    fake = chaos.FakeServer(chaos.platforms()["twitter"], chaos.Options(), log, 0.0, 1)
    assert fake.faults() == {"5xx": 1, "refused": 1, "malformed": 1, "slow-accept": 1}


@pytest.mark.slow
def test_kills_and_platform_faults_lose_nothing_and_double_nothing_on_any_platform():
    chaos = load_chaos()
    # Milder than the full run, to fit in about a minute: Graph's 429 pauses a Page for a
    # minute or more (the others', 3 s here, cover that path) and 5xx retries back off.
    opts = chaos.Options(pairs=48, kills=3, seed=11, fail_5xx=0.1, fb_rate_limit=0.0,
                         timeout=150)
    out = io.StringIO()
    result = chaos.Chaos(opts, out=out).run()
    chaos.report(result, "test_chaos", out=out)
    log = out.getvalue()
    assert result.error is None, log
    assert sorted(result.platforms) == ["bluesky", "facebook", "mastodon", "twitter"], log
    for name, t in result.platforms.items():
        assert t.pairs == 12 and t.once == 12, (name, log)
        assert t.lost == [] and t.duplicates == [] and t.strays == [], (name, log)
        assert t.faults["refused"] == 0, f"{name}: no accepted post was sent again"
    assert result.kills >= 3 and result.exit_code == 0 and result.ok, log
    assert result.faults["5xx"] > 0, "the platforms did misbehave"


def test_poll_counts_are_per_feed_per_whole_interval():
    chaos = load_chaos()
    # a: one poll in each of three 5 s intervals, two in the third; b: two in the first only
    times = {"a": [0.1, 5.2, 10.3, 10.4, 15.0], "b": [1.0, 2.0, -1.0]}
    polls = chaos.count_polls(times, 0.0, 15.0, 5)
    assert polls.intervals == 3
    assert polls.per_interval == {0: 2, 1: 2, 2: 2}
    assert polls.per_feed == {"a": 4, "b": 2}, "polls outside the window are left out"
    assert polls.mean == 1.0
    assert "0 polls: 2, 1 polls: 2, 2 polls: 2" in chaos.polls_note(polls)


def test_articles_are_spread_over_the_feeds_and_each_request_is_counted():
    chaos = load_chaos()
    feeds = chaos.FeedServer("1-2", ["chaos-0", "chaos-1", "chaos-2"])
    feeds.add(7)
    with feeds.farm:
        import urllib.request
        bodies = {name: urllib.request.urlopen(feeds.url(name), timeout=10).read().decode()
                  for name in feeds.names}
    for n in range(7):
        holding = [name for name, body in bodies.items() if f"{feeds.link(n)}<" in body]
        assert holding == [f"chaos-{n % 3}"], n
    assert feeds.farm.polls() == {name: 1 for name in feeds.names}


def test_several_workers_need_a_postgresql_database():
    chaos = load_chaos()
    with pytest.raises(SystemExit):
        chaos.parse(["--workers", "2"])
    with pytest.raises(SystemExit):
        chaos.parse(["--workers", "2", "--database", "sqlite:////tmp/x.db"])
    opts = chaos.parse(["--workers", "3", "--database", "throwaway"])
    assert (opts.workers, opts.feed_count) == (3, 6)
    assert chaos.parse([]).feed_count == 1


@pytest.mark.slow
def test_kills_spread_over_three_workers_on_postgresql_lose_and_double_nothing(postgres_url):
    chaos = load_chaos()
    opts = chaos.Options(platforms=["twitter", "mastodon"], pairs=24, kills=3, seed=12,
                         fail_5xx=0.1, timeout=150, workers=3, database=postgres_url)
    out = io.StringIO()
    result = chaos.Chaos(opts, out=out).run()
    chaos.report(result, "test_chaos --workers 3", out=out)
    log = out.getvalue()
    assert result.error is None, log
    for name, t in result.platforms.items():
        assert t.once == t.pairs == 12 and not t.lost and not t.duplicates, (name, log)
        assert t.faults["refused"] == 0, f"{name}: no accepted post was sent again"
    assert result.kills >= 3 and result.exit_code == 0 and result.ok, log
    # Three workers polling every feed would make about 3 polls per interval; a
    # kill leaves its feeds unpolled until the takeover.
    assert 0.5 <= result.polls.mean <= 1.3, log
