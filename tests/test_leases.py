"""Leases share feeds and accounts among the workers of one database (bot.leases).

Each test runs on SQLite and PostgreSQL; several workers are several Leases
objects on one database and one hand-moved clock, so takeover times are exact.
The multi-process tests (real workers, SIGKILL) are in tests/test_workers.py.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import sqlalchemy as sa
from sqlalchemy import event as sa_event

from bot.leases import ONCE, Leases, _share, holders
from bot.store import Store
from postgres import db_url  # noqa: F401  (runs each test on SQLite and PostgreSQL)
from tests.helpers import Clock, article

TTL = timedelta(seconds=20)
FEEDS = [f"feed-{n}" for n in range(10)]
ACCOUNTS = ["x-main", "fb-page", "masto"]


@pytest.fixture
def world(db_url):
    clock = Clock()
    store = Store(db_url, clock)
    store.migrate()
    yield store, clock
    store.close()


def worker(store: Store, clock: Clock, name: str) -> Leases:
    return Leases(store, name, clock, TTL)


def beat(store: Store, leases: Leases, feeds=FEEDS, accounts=ACCOUNTS) -> None:
    """A worker's heartbeat: its refresh writes its beat too (bot.cli.Worker)."""
    leases.refresh(feeds, accounts)


def settle(store, workers, rounds: int = 3) -> None:
    """Beat every worker a few times, as their heartbeats would."""
    for _ in range(rounds):
        for w in workers:
            beat(store, w)


def test_one_worker_holds_everything(world):
    store, clock = world
    only = worker(store, clock, "a")
    beat(store, only)
    assert only.held("feed") == FEEDS and only.held("account") == sorted(ACCOUNTS)
    assert all(only.holds("feed", f) for f in FEEDS)


def test_a_refresh_costs_a_few_statements_however_many_feeds_it_takes_or_keeps(world):
    # A first start takes 2,000 leases at once, and every heartbeat keeps them:
    # a statement per feed would make each heartbeat of 10,000 feeds cost seconds.
    store, clock = world
    many = [f"feed-{n:04d}" for n in range(2000)]
    seen: list[str] = []
    sa_event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    only = worker(store, clock, "a")
    for _ in range(2):
        seen.clear()
        beat(store, only, feeds=many)
        assert len(seen) < 30, f"{len(seen)} statements"
        assert only.held("feed") == many
        clock.advance(seconds=5)


def test_a_steady_heartbeat_writes_its_beat_and_not_a_row_of_the_leases_it_keeps(world):
    # Renewing 10,000 leases every 5 s wrote 600 KB of WAL a heartbeat (10 GB a
    # day); the beat in the same transaction keeps them all.
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])
    writes: list[str] = []
    sa_event.listen(store.engine, "before_cursor_execute", lambda conn, cursor, sql, *args:
                    writes.append(sql.split()[0].upper() + " " + sql.split()[2].lower()
                                  if sql.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
                                  else "") if "leases" in sql else None)
    clock.advance(seconds=5)
    beat(store, a)
    assert not [w for w in writes if w], writes
    assert len(a.held("feed")) == 5 and a.holds("account", a.held("account")[0])
    clock.advance(seconds=19)   # 24 s after a's last refresh, 19 after this one
    beat(store, b)
    assert len(b.held("feed")) == 5, "a's leases held by its beat alone moved too soon"


def test_a_worker_whose_refreshes_fail_looks_dead_and_its_work_moves(world):
    # The beat is written in the refresh's transaction: a worker that can beat
    # but not refresh must not keep its feeds from the others forever.
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])

    failing = {"now": False}

    def fail(conn, cursor, statement, *args):
        if failing["now"] and "FROM leases" in statement:
            raise Injected(statement)
    sa_event.listen(store.engine, "before_cursor_execute", fail)
    try:
        for _ in range(5):
            clock.advance(seconds=5)
            failing["now"] = True
            with pytest.raises(Injected):
                beat(store, a)
            failing["now"] = False
            beat(store, b)
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", fail)
    assert b.held("feed") == FEEDS and b.held("account") == sorted(ACCOUNTS)
    assert not a.held("feed")


def test_three_workers_split_the_work_evenly_and_never_share_a_lease(world):
    store, clock = world
    workers = [worker(store, clock, n) for n in "abc"]
    settle(store, workers)
    feeds = [set(w.held("feed")) for w in workers]
    assert sorted(len(f) for f in feeds) == [3, 3, 4]
    assert set().union(*feeds) == set(FEEDS)
    assert sum(len(f) for f in feeds) == len(FEEDS)   # disjoint
    accounts = [w.held("account") for w in workers]
    assert sorted(len(a) for a in accounts) == [1, 1, 1]


def test_a_dead_workers_leases_move_after_the_ttl_and_not_before(world):
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])
    theirs = set(b.held("feed"))
    assert theirs and len(a.held("feed")) == 5
    for _ in range(3):                  # b dies: only a beats now
        clock.advance(seconds=5)
        beat(store, a)
        assert not theirs & set(a.held("feed")), "taken over before the ttl ran out"
    clock.advance(seconds=6)            # b's last beat is now older than the ttl
    beat(store, a)
    assert a.held("feed") == FEEDS and a.held("account") == sorted(ACCOUNTS)


def test_a_dead_workers_lease_stops_counting_in_its_own_memory_too(world):
    store, clock = world
    a = worker(store, clock, "a")
    beat(store, a)
    clock.advance(seconds=21)           # no beat: the database may be down
    assert not a.holds("feed", FEEDS[0])


def test_a_clean_stop_hands_the_work_over_at_the_next_beat(world):
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])
    b.release_all()
    store.end_worker("b")
    beat(store, a)
    assert a.held("feed") == FEEDS
    assert not b.holds("feed", FEEDS[0])


def test_a_new_worker_gets_its_share_as_the_old_one_lets_go(world):
    store, clock = world
    a = worker(store, clock, "a")
    beat(store, a)
    b = worker(store, clock, "b")
    settle(store, [b, a])
    assert len(a.held("feed")) == 5 and len(b.held("feed")) == 5
    assert not set(a.held("feed")) & set(b.held("feed"))


def test_an_account_being_published_for_is_kept_above_the_share(world):
    store, clock = world
    a = worker(store, clock, "a")
    beat(store, a)
    b = worker(store, clock, "b")
    beat(store, b)
    with a.using("x-main"), a.using("fb-page"), a.using("masto"):
        beat(store, a)
        assert a.held("account") == sorted(ACCOUNTS)
    beat(store, a)
    assert len(a.held("account")) == 2   # its share of 3 among 2, now it is idle


def test_a_claim_is_fenced_by_the_lease(world):
    store, clock = world
    store.ingest("world", [article(1)], [("x-main", 0)], backfill=1)
    row = store.queue("x-main")[0]
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])
    holder, other = (a, b) if a.holds("account", "x-main") else (b, a)
    assert not store.claim(row.id, other.worker, "text", guard=other.guard("x-main"))
    assert store.claim(row.id, holder.worker, "text", guard=holder.guard("x-main"))


def test_a_claim_after_the_lease_ran_out_is_refused(world):
    store, clock = world
    store.ingest("world", [article(1)], [("x-main", 0)], backfill=1)
    row = store.queue("x-main")[0]
    a = worker(store, clock, "a")
    beat(store, a)
    clock.advance(seconds=25)
    assert not store.claim(row.id, "a", "text", guard=a.guard("x-main"))


def test_once_takes_only_free_work_and_no_worker_makes_room_for_it(world):
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])
    once = worker(store, clock, ONCE + "c")
    beat(store, once)
    assert once.held("feed") == []
    settle(store, [a, b])
    assert len(a.held("feed")) + len(b.held("feed")) == len(FEEDS)
    b.release_all()
    store.end_worker("b")
    beat(store, once)
    assert len(once.held("feed")) == 5   # what b let go, nothing of a's


def test_a_feed_removed_from_the_config_is_let_go(world):
    store, clock = world
    a = worker(store, clock, "a")
    beat(store, a)
    beat(store, a, feeds=FEEDS[:3])
    assert a.held("feed") == FEEDS[:3]
    assert {r.name for r in holders(store) if r.kind == "feed"} == set(FEEDS[:3])


def test_holders_names_every_lease_for_status(world):
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    settle(store, [a, b])
    rows = holders(store)
    assert {r.holder for r in rows} == {"a", "b"}
    assert {(r.kind, r.name) for r in rows} == {("feed", f) for f in FEEDS} | \
        {("account", n) for n in ACCOUNTS}


def test_workers_refreshing_at_the_same_moment_never_hold_one_lease_twice(world):
    store, clock = world
    workers = [worker(store, clock, n) for n in "abcd"]
    errors = []

    def run(w):
        try:
            for _ in range(5):
                w.refresh(FEEDS, ACCOUNTS)
        except Exception as exc:   # noqa: BLE001  (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert not errors
    held = [f for w in workers for f in w.held("feed")]
    assert len(held) == len(set(held))


# Service workers only: a ``once`` run takes what is free and has no share.
@given(st.integers(0, 500), st.lists(st.text(min_size=1, max_size=5).filter(
    lambda w: not w.startswith(ONCE)), min_size=1, max_size=8, unique=True))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_the_shares_add_up_and_differ_by_one_at_most(n, names):
    live = sorted(names)
    shares = [_share(n, live, w) for w in live]
    assert sum(shares) == n
    assert max(shares) - min(shares) <= 1


def test_the_instance_lock_makes_every_other_holder_dead_at_once(world):
    store, clock = world
    gone = worker(store, clock, "killed")
    beat(store, gone)                  # SIGKILLed a moment ago: its beat is fresh
    after = Leases(store, "restarted", clock, TTL, exclusive=True)
    beat(store, after)
    assert after.held("feed") == FEEDS and after.held("account") == sorted(ACCOUNTS)
    assert after.last_beat("killed") is None, "no other worker counts as alive"


def test_a_lease_let_go_stops_counting_before_a_pass_can_start_on_it(world):
    store, clock = world
    a = worker(store, clock, "a")
    beat(store, a)
    beat(store, worker(store, clock, "b"))
    beat(store, a)                     # a lets go of what is now b's share
    released = set(ACCOUNTS) - set(a.held("account"))
    assert released and not any(a.holds("account", n) for n in released)


SLOW_FEED = """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>
<link>https://news.example.org/</link><description>d</description>
<item><title>A slow feed's story</title><link>https://news.example.org/slow-1</link>
<guid>slow-1</guid><description>The lead of the slow story is here.</description></item>
</channel></rss>"""


def test_once_keeps_its_leases_while_a_poll_outlasts_them(tmp_path, httpserver, capsys):
    """A cron `once` whose polls take longer than takeover_after still sends."""
    import time

    from werkzeug import Response

    from bot.cli import main
    httpserver.expect_request("/slow.xml").respond_with_handler(
        lambda request: (time.sleep(4), Response(SLOW_FEED, content_type="application/rss+xml"))[1])
    config = tmp_path / "herald.yaml"
    config.write_text(f"""
version: 1
database: sqlite:///{tmp_path}/h.db
workers: {{heartbeat: 1s, takeover_after: 3s}}
feeds:
  - {{name: slow, url: "{httpserver.url_for('/slow.xml')}", backfill: 1, fetch_article: never}}
accounts:
  - {{name: out, platform: console, template: "{{title}} {{url}}"}}
routes:
  - {{feeds: [slow], accounts: [out]}}
""")
    assert main(["--config", str(config), "once"]) == 0
    assert "A slow feed's story https://news.example.org/slow-1" in capsys.readouterr().out


def test_a_refresh_names_the_leases_it_newly_took(world):
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    assert len(a.refresh(FEEDS, ACCOUNTS)) == len(FEEDS) + len(ACCOUNTS)
    assert a.refresh(FEEDS, ACCOUNTS) == [], "kept leases are not new"
    settle(store, [b, a])
    b.release_all()
    store.end_worker("b")
    taken = a.refresh(FEEDS, ACCOUNTS)
    assert taken and all(a.holds(kind, name) for kind, name in taken)


class Injected(RuntimeError):
    """A refresh that dies halfway (the database went away mid-transaction)."""


STEPS = st.lists(st.one_of(
    st.tuples(st.just("beat"), st.sampled_from("ab"), st.sets(st.sampled_from(FEEDS), min_size=8)),
    st.tuples(st.just("fail"), st.sampled_from("ab"), st.integers(1, 6)),
    st.tuples(st.just("advance"), st.sampled_from([5, 21])),
    st.tuples(st.just("release"), st.sampled_from("ab"))), max_size=12)


@given(steps=STEPS)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_what_a_worker_believes_it_holds_the_database_says_it_holds(world, steps):
    # A refresh starts from what the last one left in memory instead of reading
    # this worker's thousands of rows; beats, deaths, config changes and
    # refreshes dying halfway must never make memory claim a lease the
    # database gives to no one or to another worker.
    store, clock = world
    with store.tx() as conn:
        conn.execute(sa.text("DELETE FROM leases"))
        conn.execute(sa.text("DELETE FROM workers"))
    workers = {n: worker(store, clock, n) for n in "ab"}
    fault = {"after": 0}

    def inject(conn, cursor, statement, *args):
        if fault["after"] and "leases" in statement:
            fault["after"] -= 1
            if not fault["after"]:
                raise Injected(statement)
    sa_event.listen(store.engine, "before_cursor_execute", inject)
    try:
        for step in steps:
            _run(store, clock, workers, fault, step)
            _check(store, clock, workers, just_beat=step[1] if step[0] == "beat" else None)
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", inject)


def _run(store, clock, workers, fault, step) -> None:
    kind, *args = step
    if kind == "advance":
        clock.advance(seconds=args[0])
    elif kind == "release":
        workers[args[0]].release_all()
    elif kind == "beat":
        beat(store, workers[args[0]], feeds=sorted(args[1]))
    else:
        fault["after"] = args[1]
        try:
            beat(store, workers[args[0]])
        except Injected:
            pass
        fault["after"] = 0


def _check(store, clock, workers, just_beat) -> None:
    valid = {(r.kind, r.name): r.holder for r in holders(store)
             if r.beat_at is not None and r.beat_at >= clock() - TTL}
    for name, w in workers.items():
        believed = {(k, n) for k in ("feed", "account") for n in w.held(k)}
        assert all(valid.get(lease) == name for lease in believed), name
        if name == just_beat:   # right after its refresh it also knows all it has
            assert believed == {lease for lease, holder in valid.items() if holder == name}


def test_a_worker_back_from_the_dead_believes_only_in_what_was_left_to_it(world):
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    beat(store, a)
    clock.advance(seconds=21)    # a stalls; b takes everything from it
    beat(store, b)
    beat(store, a)
    valid = {r.name: r.holder for r in holders(store) if r.kind == "feed"}
    assert all(valid[f] == "a" for f in a.held("feed"))
    assert not set(a.held("feed")) & set(b.held("feed"))


def test_a_refresh_that_dies_after_letting_go_is_set_right_by_the_next(world):
    # a lets go of half its feeds for b in memory, then the transaction dies:
    # the database still has them as a's, and the next refresh must see that.
    store, clock = world
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    beat(store, a)
    beat(store, b)

    def die_at_the_let_go(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("DELETE FROM LEASES"):
            raise Injected(statement)
    sa_event.listen(store.engine, "before_cursor_execute", die_at_the_let_go)
    with pytest.raises(Injected):
        beat(store, a)
    sa_event.remove(store.engine, "before_cursor_execute", die_at_the_let_go)
    beat(store, a)
    mine = {r.name for r in holders(store) if r.holder == "a" and r.kind == "feed"}
    assert set(a.held("feed")) == mine and len(mine) == len(FEEDS) // 2
    beat(store, b)
    assert sorted(a.held("feed") + b.held("feed")) == FEEDS


def test_a_service_on_a_host_named_once_is_a_worker_others_make_room_for(world):
    # Its id is "once:<pid>:<time>" (bot.cli.worker_id); only a ``once`` run's
    # prefix makes a worker take free work alone and count for nobody.
    store, clock = world
    a, host_once = worker(store, clock, "a"), worker(store, clock, "once:4242:1764000000")
    settle(store, [a, host_once])
    assert not host_once.greedy
    assert len(a.held("feed")) == len(host_once.held("feed")) == len(FEEDS) // 2
