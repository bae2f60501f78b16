"""Leases: which worker polls a feed and which publishes for an account.

Several ``run`` workers on one PostgreSQL database are one service because the
database says who does what. A row of ``leases`` names a feed or an account and
its holder; the lease lasts while the holder beats (its ``workers`` row). At
every heartbeat a worker (``Leases.refresh``), in one transaction:

- beats: writes its ``workers`` row, which keeps every lease it holds (one
  row written, not ten thousand renewed: a heartbeat every 5 s renewing
  10,000 rows wrote 600 KB of WAL, 10 GB a day);
- keeps what it holds, up to its fair share of the live workers' work;
- lets go of what is above that share (never an account it is publishing for);
- takes leases that are free or held by a worker whose heartbeat stopped, up
  to its share.

A worker polls only feeds it holds and publishes only for accounts it holds,
so caps, gaps and windows hold as with one process; a post is claimed only
while the lease is held (``guard``, checked in the claim's own statement), so
a worker that lost its lease cannot claim behind the new holder's back.

A worker is alive while its heartbeat is younger than ``ttl``, so a dead
worker's work moves within ``ttl`` plus one heartbeat. A refresh that fails
writes no beat either: a worker whose refreshes fail looks dead to the others
after ``ttl`` and stops trusting its own leases then too. The wall clocks of
the workers' hosts must agree (NTP) to well within ``ttl``.

SQLite has one worker (the instance lock) and runs the same code: it holds
everything. ``once`` takes only what no live worker holds (``greedy``) and
never counts as a worker that others make room for (its id starts "once/").
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import sqlalchemy as sa

from bot.store import TS, Store, dialect_insert, meta, upsert, workers

log = logging.getLogger(__name__)
KINDS = ("feed", "account")
# The id prefix of a ``once`` run, which takes only free work. Not "once:": a
# service on a host named "once" has the id "once:<pid>:<time>", and a host
# name never holds a "/".
ONCE = "once/"
FORGET_DEAD = timedelta(hours=1)   # a dead worker's row stays this long, for status
CHUNK = 500   # names in one IN list
REFRESH_LOCK = 0x4865_7261_6C65   # PostgreSQL advisory lock: one refresh at a time
# ``until`` is written when a lease is taken and never renewed: the holder's
# beat keeps a lease now. Versions before renewed it at every heartbeat and
# still read it: during a rolling upgrade an old worker with room may take a
# new one's leases, which the new one then sees and lets go of.
leases = sa.Table(
    "leases", meta,   # 0008
    sa.Column("kind", sa.String(16), primary_key=True), sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200)), sa.Column("until", TS))


@dataclass(frozen=True)
class LeaseRow:
    kind: str
    name: str
    holder: str
    beat_at: datetime | None   # the holder's last heartbeat (None: its row is gone)


class Leases:
    """The leases of one worker, kept in the database and mirrored in memory
    (``holds`` asks no database: ten thousand poll jobs ask it).

    The mirror is also where a refresh starts from: the database changes this
    worker's rows only in this worker's refreshes, or when another worker's
    refresh takes one (it is then that worker's row). So a refresh reads only
    the rows other workers hold, not the thousands this one keeps every
    heartbeat; after a refresh that failed it reads its own rows again."""

    def __init__(self, store: Store, worker: str, clock: Callable[[], datetime], ttl: timedelta,
                 *, exclusive: bool = False, host: str = "", pid: int = 0,
                 started_at: datetime | None = None):
        self.store, self.worker, self.clock, self.ttl = store, worker, clock, ttl
        # The rest of this worker's heartbeat row (for status), written by each refresh.
        self._row = {"worker": worker, "host": host, "pid": pid,
                     "started_at": started_at or clock()}
        self.greedy = worker.startswith(ONCE)
        # With the SQLite instance lock no other Herald is alive, whatever the
        # workers table says (a worker SIGKILLed a moment ago still looks alive).
        self.exclusive = exclusive
        self._held: dict[str, frozenset[str]] = {}   # kind -> names, as the last refresh left them
        self._until = datetime.min.replace(tzinfo=timezone.utc)   # each of them runs till then
        self._known = False   # whether _held is what the database has as this worker's
        self._taken: dict[str, datetime] = {}   # account -> when this worker took its lease
        self._beats: dict[str, datetime] = {}   # every worker's last beat, at the last refresh
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    # -- asking (memory only) ----------------------------------------------------

    def holds(self, kind: str, name: str) -> bool:
        """True while this worker's lease on ``name`` runs."""
        with self._lock:
            names, until = self._held.get(kind, frozenset()), self._until
        return name in names and until > self.clock()

    def held(self, kind: str) -> list[str]:
        with self._lock:
            names, until = self._held.get(kind, frozenset()), self._until
        return sorted(names) if until > self.clock() else []

    def last_beat(self, worker: str) -> datetime | None:
        """``worker``'s last beat as the last refresh saw it (None: no row:
        never seen, stopped, or dead longer than FORGET_DEAD)."""
        with self._lock:
            return self._beats.get(worker)

    def taken_at(self, account: str) -> datetime | None:
        """When this worker took the lease on ``account`` it holds (the clock
        of the refresh that took it); None when it holds none. A claim by
        another worker on the account is older: the claim is fenced by the
        lease, and that worker starts no call once it has lost the lease."""
        with self._lock:
            return self._taken.get(account)

    def guard(self, account: str) -> sa.ColumnElement[bool]:
        """A clause for ``Store.claim``: this worker holds ``account`` now
        (the row is its own and its beat is one the others count as alive)."""
        c, w = leases.c, workers.c
        return sa.and_(
            sa.exists().where(c.kind == "account", c.name == account, c.holder == self.worker),
            sa.exists().where(w.worker == self.worker,
                              w.beat_at >= sa.literal(self.clock() - self.ttl, TS())))

    @contextmanager
    def using(self, account: str) -> Iterator[None]:
        """While a publish pass works on ``account``, a refresh keeps its lease."""
        with self._lock:
            self._busy.add(account)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(account)

    # -- the heartbeat's work ------------------------------------------------------

    def refresh(self, feeds: Sequence[str], accounts: Sequence[str]) -> list[tuple[str, str]]:
        """Beat, let go and take leases so this worker holds its share of
        ``feeds`` and ``accounts`` (the configured names). Refreshes run one at a time
        (they take milliseconds): workers taking and letting go of hundreds of
        leases at once would otherwise lock rows in each other's way until
        PostgreSQL ends one of them. A refresh the database ends anyway (a
        deadlock with something else, a serialization failure) tries once more.
        Returns the (kind, name) leases this refresh took that were not held."""
        with self._lock:
            before = self._held
        try:
            self._refresh(feeds, accounts)
        except sa.exc.OperationalError as exc:
            log.warning("leases: refresh failed (%s); trying again", type(exc.orig).__name__)
            self._refresh(feeds, accounts)
        with self._lock:
            after = self._held
        return sorted((kind, name) for kind, names in after.items()
                      for name in names - before.get(kind, frozenset()))

    def _refresh(self, feeds: Sequence[str], accounts: Sequence[str]) -> None:
        try:
            with self.store.tx() as conn:
                if conn.dialect.name == "postgresql":   # SQLite's BEGIN IMMEDIATE does this already
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(REFRESH_LOCK)))
                now = self.clock()   # after the wait: the beat that keeps the leases
                upsert(conn, workers, {**self._row, "beat_at": now}, ["worker"])
                beats = self._beats_of(conn, now)
                live = sorted({w for w, at in beats.items() if at >= now - self.ttl}
                              | {self.worker})
                held = {kind: self._balance(conn, kind, names, live, now)
                        for kind, names in (("feed", feeds), ("account", accounts))}
        except BaseException:
            with self._lock:   # rolled back, and _split may have let go in memory already
                # (a COMMIT whose answer was lost may have landed: what the next
                # refresh keeps counts as taken then, not at a remembered time)
                self._known, self._taken = False, {}
            raise
        with self._lock:
            kept, won = held["account"]
            self._taken = {**{n: self._taken.get(n, now) for n in kept}, **dict.fromkeys(won, now)}
            self._held = {kind: keep | won for kind, (keep, won) in held.items()}
            self._until, self._beats, self._known = now + self.ttl, beats, True

    def _beats_of(self, conn: sa.Connection, now: datetime) -> dict[str, datetime]:
        """Every worker's last beat (a few rows), after forgetting the long
        dead; with the instance lock, only this one's (no other is alive)."""
        conn.execute(workers.delete().where(workers.c.beat_at < now - FORGET_DEAD))
        if self.exclusive:
            return {self.worker: now}
        return dict(conn.execute(sa.select(workers.c.worker, workers.c.beat_at)).all())

    def _balance(self, conn: sa.Connection, kind: str, names: Sequence[str], live: list[str],
                 now: datetime) -> tuple[frozenset[str], frozenset[str]]:
        """This worker's leases of ``kind`` after keeping, letting go and
        taking: (those it kept, those it took)."""
        others = self._others(conn, kind, live)
        configured = set(names)
        mine = self._own(conn, kind) - others.keys()   # another refresh took those
        self._drop(conn, kind, sorted(mine - configured))
        mine &= configured
        share = len(configured) if self.greedy else _share(len(configured), live, self.worker)
        keep, extra = self._split(kind, mine, share)
        self._drop(conn, kind, extra)
        wanted = _wanted(configured, keep, others, share - len(keep), self.worker)
        self._take(conn, kind, wanted, live, now)
        return keep, frozenset(self._won(conn, kind, wanted))

    def _own(self, conn: sa.Connection, kind: str) -> frozenset[str]:
        """The names the database has as this worker's: as the last refresh
        left them, or (at the first, or after one failed) read again."""
        with self._lock:
            if self._known:
                return self._held.get(kind, frozenset())
        return frozenset(conn.execute(sa.select(leases.c.name).where(
            leases.c.kind == kind, leases.c.holder == self.worker)).scalars().all())

    def _others(self, conn: sa.Connection, kind: str, live: list[str]) -> dict[str, bool]:
        """Each lease of ``kind`` another worker holds, and whether it is free
        to take (its holder stopped beating)."""
        c = leases.c
        found = conn.execute(sa.select(c.name, _free(live)).where(
            c.kind == kind, c.holder != self.worker)).all()   # all(): one fetch, not one per row
        return {name: bool(gone) for name, gone in found}

    def _split(self, kind: str, mine: frozenset[str],
               share: int) -> tuple[frozenset[str], list[str]]:
        """(kept, let go): accounts being published for are always kept. What
        goes stops counting in memory at once, under the lock a publish pass
        takes to mark an account busy: a pass never starts on an account
        whose lease is being let go."""
        if len(mine) <= share:   # the usual heartbeat: nothing to let go, nothing to rank
            return mine, []
        with self._lock:
            busy = set(self._busy) if kind == "account" else set()
            ranked = sorted(mine, key=lambda n: (n not in busy, _rank(n, self.worker)))
            cut = max(share, len(busy & mine))
            self._held = {**self._held, kind: self._held.get(kind, frozenset()) - set(ranked[cut:])}
        return frozenset(ranked[:cut]), ranked[cut:]

    def _take(self, conn: sa.Connection, kind: str, names: list[str], live: list[str],
              now: datetime) -> None:
        """Take ``names`` where still free; the statement rechecks each row, so
        two workers taking at once cannot both win."""
        if names:   # one statement for them all (a first start takes 10,000), in one
            # order in every worker: no deadlock between takers
            conn.execute(_add_lease(conn.dialect.name), [
                {"kind": kind, "name": name, "holder": self.worker, "until": now + self.ttl}
                for name in sorted(names)])
        for chunk in _chunks(names):
            c = leases.c
            conn.execute(leases.update().where(
                c.kind == kind, c.name.in_(chunk), c.holder != self.worker, _free(live))
                .values(holder=self.worker, until=now + self.ttl))

    def _won(self, conn: sa.Connection, kind: str, wanted: list[str]) -> set[str]:
        """Which of ``wanted`` the take got, as the database says (another
        worker may have taken one since the read). What was kept needs no
        asking: refreshes run one at a time (BEGIN IMMEDIATE, the advisory
        lock) and only a refresh changes another worker's rows, so what this
        one knew as its own and kept is its own."""
        c, won = leases.c, set()
        ours = sa.select(c.name).where(c.kind == kind, c.holder == self.worker)
        if len(wanted) > CHUNK:   # a first start: one read of its rows, not 20 long IN lists
            return set(conn.execute(ours).scalars().all()).intersection(wanted)
        for chunk in _chunks(wanted):
            won.update(conn.execute(ours.where(c.name.in_(chunk))).scalars().all())
        return won

    def _drop(self, conn: sa.Connection, kind: str, names: list[str]) -> None:
        for chunk in _chunks(names):
            conn.execute(leases.delete().where(
                leases.c.kind == kind, leases.c.holder == self.worker, leases.c.name.in_(chunk)))

    def release_all(self) -> None:
        """A clean stop: every lease of this worker goes at once, so the
        others take its work at their next heartbeat, not after ``ttl``."""
        with self._lock:
            self._held, self._taken, self._known = {}, {}, False
        with self.store.tx() as conn:
            conn.execute(leases.delete().where(leases.c.holder == self.worker))


def holders(store: Store) -> list[LeaseRow]:
    """Every lease, by holder, kind and name, with the holder's last beat
    (for status). Reads only."""
    c = leases.c
    with store.read() as conn:
        rows = conn.execute(sa.select(c.kind, c.name, c.holder, workers.c.beat_at)
                            .outerjoin(workers, workers.c.worker == c.holder)
                            .order_by(c.holder, c.kind, c.name))
        return [LeaseRow(r.kind, r.name, r.holder, r.beat_at) for r in rows]


def _share(n: int, live: list[str], worker: str) -> int:
    """This worker's part of ``n`` among the live service workers: the first
    ``n % len`` of them (by id) take one more, so the parts differ by one."""
    service = sorted(w for w in live if not w.startswith(ONCE)) or [worker]
    rank = service.index(worker) if worker in service else 0
    base, rest = divmod(n, len(service))
    return base + (1 if rank < rest else 0)


def _free(live: list[str]) -> sa.ColumnElement[bool]:
    """A lease free to take: its holder stopped beating (``live`` always
    holds the asking worker, so it is never empty)."""
    return leases.c.holder.not_in(live)


def _wanted(configured: set[str], keep: frozenset[str], others: dict[str, bool], room: int,
            worker: str) -> list[str]:
    """Up to ``room`` of the ``configured`` names not kept that are free:
    without a row, or another worker's whose holder is dead. With no room
    (the usual heartbeat), nothing is looked at."""
    if room <= 0:
        return []
    free = [n for n in configured if n not in keep and others.get(n, True)]
    return sorted(free, key=lambda n: _rank(n, worker))[:room]


@lru_cache(maxsize=65536)   # every heartbeat ranks every feed again
def _rank(name: str, worker: str) -> bytes:
    """An order of the names that differs per worker (rendezvous hashing), so
    workers taking at the same moment reach for different feeds first."""
    return hashlib.sha256(f"{worker}\0{name}".encode()).digest()


@lru_cache(maxsize=None)
def _add_lease(dialect: str) -> sa.Insert:
    """INSERT a lease unless the name has one (taken again below if it is free)."""
    return dialect_insert(dialect)(leases).on_conflict_do_nothing(index_elements=["kind", "name"])


def _chunks(names: Sequence[str], size: int = CHUNK) -> list[list[str]]:
    return [list(names[i:i + size]) for i in range(0, len(names), size)]
