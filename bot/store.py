"""Herald's state in a SQL database (SQLite by default, PostgreSQL later).

The store dedupes articles (per feed item id and per canonical URL), keeps one
outbox row per (article, account) and records each platform's answer. Every
change happens in a transaction; a row is marked sent only together with the
platform's id. Written with SQLAlchemy Core so the same code runs on SQLite and
PostgreSQL; the schema is created and upgraded by Alembic migrations.
"""
from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot import dbguard, retention
from bot.errors import StoreError
from bot.models import Article, Target
from bot.retention import SETTLED  # noqa: F401  (what callers import from here)
from bot.schema import (  # noqa: F401  (the tables and keys, as callers import them from here)
    KEY_BYTES, TS, UTCDateTime, account_state, among, articles, db_key, db_text, feed_state,
    item_digest, items, meta, outbox, seen_keys, story_digest, story_key, url_digest, workers)

Clock = Callable[[], datetime]
# What ingest is told an article goes to: (account, priority) pairs for every
# article, or a function giving each article its Targets (routes, filters).
Accounts = Sequence[tuple[str, int]] | Callable[[Article], Sequence[Target]]
MIGRATIONS = Path(__file__).parent / "migrations"
OPEN = ("pending", "sending")   # on their way to the platform ("held" waits for a person)
TARGET_STATUSES = ("pending", "held", "filtered")
MIGRATE_LOCK = 0x4865_7261_6C64  # "Herald": one advisory lock id for migrations
# A first sight of a huge feed is written in transactions of this many items,
# so readers (status) and other writers wait seconds, not minutes, and no
# statement carries more parameters than PostgreSQL takes (65,535).
BATCH = 500
UNCHANGED_FLUSH = 5.0   # seconds an unchanged poll's time may wait in memory (feed_unchanged)


@dataclass(frozen=True)
class Ingested:
    """What one poll added: ``new`` items never seen in this feed, ``queued``
    outbox rows created, ``primed`` True when this was the feed's first sight."""

    new: int
    queued: int
    primed: bool


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE
    so concurrent writers queue instead of failing half-way. Nothing is
    created until the first connection (``Store.migrate`` makes the folder).

    Durability: a transaction commits without waiting for the disk (SQLite
    ``synchronous=NORMAL``, PostgreSQL ``synchronous_commit=off``): a crash may
    lose the last few, never corrupt. One run with the execution option
    ``herald_durable`` (``Store.durable``: what records a post's outcome) waits:
    FULL / on. The log is written in order, so a durable commit makes every
    earlier one durable too."""
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", _postgres_connect)
        sa.event.listen(engine, "begin", _postgres_begin)
    return engine


def sqlite_file(url: str) -> str | None:
    """The file of a plain SQLite URL; None for memory, a server, or a
    ``sqlite:///file:...?uri=true`` URL (SQLite reads that one, not us)."""
    prefix = "sqlite:///"
    path, _, query = (url[len(prefix):] if url.startswith(prefix) else "").partition("?")
    if path in ("", ":memory:") or "uri=true" in query.lower():
        return None
    return path


def make_folder(path: str | None) -> None:
    """The folder of a SQLite file, made when missing."""
    if not path:
        return
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"database folder {folder} cannot be created ({exc.strerror}); "
                         "create it, writable by the user Herald runs as") from None


def code_revision() -> str:
    """The newest migration this Herald has."""
    return max(revisions())


@functools.cache   # the files ship with this Herald: read the folder once
def revisions() -> frozenset[str]:
    """Every migration's revision: its file's four-digit prefix (0001_initial.py
    is "0001", its ``revision``). Read from the names, without alembic: a
    service whose schema is current never imports it (11 MB of memory)."""
    return frozenset(p.name.split("_", 1)[0]
                     for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _db_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front so they queue instead of failing
    # half-way; readers take none (WAL lets them read beside a writer).
    options = conn.get_execution_options()
    if options.get("herald_read"):
        conn.exec_driver_sql("BEGIN")
        return
    # SQLite takes the level per connection, and only outside a transaction;
    # it is set only when this transaction wants another than the last one.
    level = "FULL" if options.get("herald_durable") else "NORMAL"
    if conn.info.get("synchronous") != level:
        conn.exec_driver_sql(f"PRAGMA synchronous={level}")
        conn.info["synchronous"] = level
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_connect(dbapi_conn, _record) -> None:
    with dbapi_conn.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_conn.commit()   # or the pool's rollback would undo the SET


def _postgres_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get("herald_durable"):
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")


def _sqlite_connect(dbapi_conn, record) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    record.info["synchronous"] = "NORMAL"
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def dialect_insert(dialect: str) -> Callable[[sa.Table], sa.Insert]:
    """The ``insert`` of ``dialect`` ("sqlite", "postgresql"): the one with ON CONFLICT."""
    return {"sqlite": sqlite, "postgresql": postgresql}[dialect].insert


def insert_ignore(conn: sa.Connection, table: sa.Table, values: dict, keys: Sequence[str]) -> bool:
    """INSERT that does nothing when a row with the same ``keys`` exists.
    Returns True when a row was inserted. Portable across SQLite and PostgreSQL."""
    stmt = (dialect_insert(conn.dialect.name)(table).values(**values)
            .on_conflict_do_nothing(index_elements=list(keys)))
    if conn.dialect.name == "postgresql":
        # SQLAlchemy adds RETURNING for serial keys there, and then the result
        # reports rowcount -1; ask for a row back and count that instead.
        return conn.execute(stmt.returning(sa.literal(1))).first() is not None
    return conn.execute(stmt).rowcount == 1


def upsert(conn: sa.Connection, table: sa.Table, values: dict, keys: Sequence[str]) -> None:
    """INSERT, or UPDATE the row with the same ``keys``: one statement on both
    SQLite and PostgreSQL."""
    stmt = dialect_insert(conn.dialect.name)(table).values(**values)
    changed = {k: v for k, v in values.items() if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changed))


class Store:
    """All of Herald's persistent state. ``clock`` returns aware UTC datetimes."""

    def __init__(self, url: str, clock: Clock):
        self.url = url
        self.engine = make_engine(url)
        self.reader = self.engine.execution_options(herald_read=True)
        # For what records a post's outcome: committed to disk before it returns.
        self.durable = self.engine.execution_options(herald_durable=True)
        self.clock = clock
        self.where = dbguard.describe(self.engine.url)
        self.watch = dbguard.FileWatch(sqlite_file(url))
        self.health = dbguard.Reporter()
        self._unchanged: dict[str, datetime] = {}   # see feed_unchanged
        self._unchanged_since = time.monotonic()
        self._unchanged_lock = threading.Lock()

    def migrate(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Create or upgrade the schema to ``revision`` (the newest migration
        by default). Returns the database's revision before and after."""
        make_folder(sqlite_file(self.url))
        with self.tx() as conn:
            if conn.dialect.name == "postgresql":
                # Workers starting together would race to create the same
                # tables; the lock is held until this transaction ends.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK)))
            before = _db_revision(conn)
            if revision == "head" and before == code_revision():
                return before, before   # the common start: nothing to do, no alembic
            from alembic import command
            from alembic.config import Config as AlembicConfig
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            return before, _db_revision(conn)

    def db_revision(self) -> str | None:
        """The database's migration, None when it has none; reads only (a
        SQLite file that does not exist is not created)."""
        path = sqlite_file(self.url)
        if path and not Path(path).exists():
            return None
        with self.read() as conn:
            return _db_revision(conn)

    def schema_state(self) -> str:
        """"current", "behind" (older than this Herald), "ahead" (newer: made
        by a later Herald) or "empty" (no Herald schema). Changes nothing."""
        found = self.db_revision()
        if found is None:
            return "empty"
        if found == code_revision():
            return "current"
        return "behind" if found in revisions() else "ahead"

    def require_current(self) -> None:
        """For commands that only look: raise StoreError unless the schema is
        the one this Herald expects. An empty database is refused too: the
        empty report it would give hides a mistyped database path."""
        state = self.schema_state()
        advice = {
            "empty": "holds no Herald database yet: run `run_bot.py migrate` "
                     "(the service also creates it when it starts)",
            "behind": "the database is older than this Herald: run `run_bot.py migrate`",
            "ahead": "the database is newer than this Herald: upgrade Herald",
        }
        if state != "current":
            raise StoreError(f"{self.where}: {advice[state]}")

    @contextmanager
    def tx(self, engine: sa.Engine | None = None) -> Iterator[sa.Connection]:
        """A transaction. Raises StoreError (logged once per problem) when the
        database itself fails: full disk, read-only, deleted, server down.
        ``engine``: ``self.reader`` (reads only), ``self.durable`` (on disk at
        commit: a post's outcome), or the default (a crash may lose it: feed
        state, what a poll saw, heartbeats, leases)."""
        try:
            self.watch.check()
            with (engine or self.engine).begin() as conn:
                yield conn
        except StoreError as exc:
            self.health.failed(exc)
            raise
        except sa.exc.DBAPIError as exc:
            if not dbguard.is_trouble(exc):
                raise
            error = dbguard.translate(exc, self.where)
            self.health.failed(error)
            raise error from exc
        if engine is not self.reader:  # only a write shows that a full disk has room again
            self.health.ok()

    def read(self) -> AbstractContextManager[sa.Connection]:
        """A read-only transaction: it never waits for a writer on SQLite."""
        return self.tx(self.reader)

    def close(self) -> None:
        self.flush_feeds()
        self.engine.dispose()

    def backup(self, path: str) -> None:
        """A consistent copy of a SQLite database in ``path``, made while the
        service goes on writing (VACUUM INTO reads one snapshot; writers are not
        stopped). The copy is written beside ``path`` and renamed into place,
        so a failed backup leaves no half file. An existing file is never
        overwritten unless it is empty (as ``mktemp`` leaves one). PostgreSQL:
        StoreError saying to use pg_dump, which does this job there."""
        if self.engine.dialect.name != "sqlite":
            raise StoreError(f"{self.where} is a PostgreSQL database: back it up with pg_dump "
                             "(pg_dump --format=custom --file=herald.dump DBNAME; restore with "
                             "pg_restore)")
        if not sqlite_file(self.url):
            raise StoreError(f"{self.where}: only a database file can be backed up")
        target = Path(path)
        _check_target(target)
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        self.watch.check()
        try:
            partial.unlink(missing_ok=True)   # left by a crashed backup of a process with our pid
            self._vacuum_into(partial)
            _sync(partial)
            os.replace(partial, target)
            _sync(target.parent)
        except (sqlite3.Error, OSError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"backup of {self.where} to {target} failed: {detail}") from None
        finally:
            partial.unlink(missing_ok=True)

    def _vacuum_into(self, target: Path) -> None:
        conn = self.engine.raw_connection()  # VACUUM refuses to run inside BEGIN
        try:
            conn.cursor().execute("VACUUM INTO ?", (str(target),))
        finally:
            conn.close()

    # -- feeds ---------------------------------------------------------------

    def feed_row(self, name: str, configured_url: str) -> sa.Row:
        """The feed's state row, created on first use. When the configured URL
        changed, a remembered redirect and the validators are dropped. The
        row keeps only the URL's digest (``url_digest``)."""
        return self.open_feed(name, configured_url)[0]

    def open_feed(self, name: str, configured_url: str) -> tuple[sa.Row, bool]:
        """``feed_row``, and whether this call made the row. A feed whose row
        was just made has shown no item: its items are kept under its name,
        and a feed's row, once made, is never deleted."""
        digest = url_digest(configured_url)
        with self.read() as conn:   # the common case writes nothing, so locks nothing
            row = conn.execute(_stmts(conn.dialect.name).feed, {"name": name}).first()
        if row is not None and row.configured_url == digest:
            return row, False
        with self.tx() as conn:   # RETURNING: a new feed costs one statement, not three
            stmts = _stmts(conn.dialect.name)
            made = conn.execute(stmts.add_feed, {"name": name, "configured_url": digest}).first()
            row = made or conn.execute(stmts.feed, {"name": name}).one()
            if row.configured_url != digest:
                row = conn.execute(stmts.reset_feed, {"feed_name": name,
                                                      "configured_url": digest}).one()
            return row, made is not None

    def update_feed(self, name: str, **values) -> None:
        """Set ``values`` (columns of feed_state) on the feed's row. One
        prepared UPDATE whose SET clause the parameters name: this runs at
        every poll of every feed."""
        _check_feed_columns(values)
        if values:
            with self.tx() as conn:
                _mark_polled(conn, name, values)

    def feed_unchanged(self, name: str, at: datetime) -> None:
        """Note a poll at ``at`` that found the feed as it was and had nothing
        else to record (a 304 of a healthy feed): its last fetch and last
        success times. Kept in memory and written with the others' at the next
        ``flush_feeds``, which runs when the oldest note is UNCHANGED_FLUSH
        old (and at each heartbeat, and at close): ten thousand unchanged
        feeds must not cost ten thousand commits, and a feed's last poll time
        need not survive a crash (the feed is polled again, nothing else)."""
        with self._unchanged_lock:
            if not self._unchanged:
                self._unchanged_since = time.monotonic()
            self._unchanged[name] = at
            due = time.monotonic() - self._unchanged_since >= UNCHANGED_FLUSH
        if due:
            self.flush_feeds()

    def flush_feeds(self) -> None:
        """Write the noted unchanged polls, in one transaction. A time never
        moves back: a later poll already written (a failure, a change) wins.
        When the database fails (logged once by ``tx``) the notes are kept for
        the next flush and nothing is raised, unless the failure is fatal: the
        caller (a poll, a heartbeat, a stop) is not what failed."""
        with self._unchanged_lock:
            noted, self._unchanged = self._unchanged, {}
        if not noted:
            return
        try:
            with self.tx() as conn:
                conn.execute(_stmts(conn.dialect.name).unchanged,
                             [{"feed_name": name, "at": at} for name, at in noted.items()])
        except StoreError as exc:
            self._keep_notes(noted)
            if exc.fatal:
                raise

    def _keep_notes(self, noted: dict[str, datetime]) -> None:
        """Put back notes a failed flush took (a note made since is later and
        wins); the next try is UNCHANGED_FLUSH away, not at the next poll."""
        with self._unchanged_lock:
            self._unchanged = {**noted, **self._unchanged}
            self._unchanged_since = time.monotonic()

    def feeds(self) -> list[sa.Row]:
        with self.read() as conn:
            return list(conn.execute(feed_state.select().order_by(feed_state.c.name)))

    def known_items(self, feed: str, item_ids: Sequence[str]) -> set[str]:
        """Which of ``item_ids`` this feed has shown before (to skip work on them)."""
        with self.read() as conn:
            return _known(conn, feed, item_ids)

    # -- ingest --------------------------------------------------------------

    def ingest(self, feed: str, found: Sequence[Article], accounts: Accounts,
               *, backfill: int = 0, max_age: timedelta | None = None,
               known: Collection[str] | None = None, unseen: bool = False,
               feed_values: Mapping[str, object] | None = None) -> Ingested:
        """Record the articles of one poll and queue the new ones for ``accounts``
        ((name, priority) pairs, or a function giving each article its Targets:
        a "held" Target makes a held row, a "filtered" one a filtered row with
        the reason; ``queued`` counts the others). At the feed's first sight
        nothing is queued but the newest ``backfill`` items. An item already
        seen in this feed, or a story already known by its canonical URL, is
        never queued again for an account that has it. Written in batches of
        BATCH items, each one transaction of a few statements with its outbox
        rows; the feed counts as seen with the last one, which also sets
        ``feed_values`` (feed_state columns, as ``update_feed``: the poll's
        outcome costs no transaction of its own). ``known``: what
        ``known_items`` answered for these items just before (saves asking
        again; an item recorded since by another process is still not queued
        twice). ``unseen``: the caller made the feed's row (``open_feed``);
        when the feed still has no item and is not primed, nothing of it is
        looked up (at a new feed's first sight that lookup of every item was
        a tenth of the store's time)."""
        now, targets, unique = self.clock(), _targets(accounts), _unique(found)
        _check_feed_columns(feed_values or {})
        polled = dict(feed_values or {})
        with self.tx() as conn:   # the plan is read under the write lock, with the first batch
            plan = _plan(conn, feed, unique, known, backfill, max_age, now, unseen)
            if not plan.primed:
                polled["primed_at"] = now
            queued = _batch(conn, feed, plan, 0, targets, now, polled)
        for n in range(1, len(plan.chunks)):
            with self.tx() as conn:
                queued += _batch(conn, feed, plan, n, targets, now, polled)
        return Ingested(new=len(plan.new), queued=queued, primed=not plan.primed)

    def article(self, article_id: int) -> Article:
        with self.read() as conn:
            row = conn.execute(articles.select().where(articles.c.id == article_id)).one()
        return Article(feed=row.feed, item_id=row.url_key, url=row.url, title=row.title,
                       lead=row.lead or "", image=row.image, author=row.author,
                       categories=tuple(json.loads(row.categories or "[]")),
                       published=row.published_at)

    # -- outbox --------------------------------------------------------------

    def queue(self, account: str, statuses: Sequence[str] = ("pending",)) -> list[sa.Row]:
        """Outbox rows of ``account`` in ``statuses``, with their article's dates:
        ``published_at`` and ``first_seen_at`` (its first sight, which a retry's
        new ``queued_at`` does not move)."""
        with self.read() as conn:
            return list(conn.execute(_with_article().where(
                outbox.c.account == account, outbox.c.status.in_(list(statuses)))
                .order_by(outbox.c.id)))

    def post(self, row_id: int) -> sa.Row | None:
        """One outbox row (``status``, ``account``, ``last_error``, ``post_url``...)
        with its article's ``title``, ``url`` and dates as ``queue`` gives them;
        None when there is no such post (never made, or pruned). Reads only."""
        with self.read() as conn:
            return conn.execute(_with_article().where(outbox.c.id == row_id)).first()

    def sent_times(self, account: str, since: datetime) -> list[datetime]:
        with self.read() as conn:
            return [r.sent_at for r in conn.execute(
                sa.select(outbox.c.sent_at).where(outbox.c.account == account,
                                                  outbox.c.status == "sent",
                                                  outbox.c.sent_at >= since)
                .order_by(outbox.c.sent_at))]

    def claim(self, row_id: int, worker: str, text: str, *,
              guard: sa.ColumnElement[bool] | None = None) -> bool:
        """Move a pending row to ``sending`` in its own committed transaction.
        False when another worker took it first, or when ``guard`` (a clause
        ANDed in: "this worker still holds the account's lease") is false.
        The first claim also sets ``first_tried_at``, which nothing clears:
        the post cannot have reached the platform before it."""
        now = self.clock()
        where = [outbox.c.id == row_id, outbox.c.status == "pending"]
        with self.tx(self.durable) as conn:
            result = conn.execute(outbox.update().where(
                *where, *([guard] if guard is not None else [])).values(
                status="sending", claimed_at=now, claimed_by=worker, text=db_text(text), updated_at=now,
                first_tried_at=sa.func.coalesce(outbox.c.first_tried_at, sa.literal(now, TS()))))
            return result.rowcount == 1

    def mark_sent(self, row_id: int, platform_id: str, note: str | None = None,
                  url: str | None = None) -> None:
        """Sent, with the platform's id and, when the receipt has one, the
        post's permalink ``url``; ``note`` says how it was found (a duplicate).
        Not fenced by the claim: the post is on the platform whoever holds
        the row now, and a row left pending would be posted again."""
        now = self.clock()
        self._set(row_id, status="sent", sent_at=now, platform_id=platform_id, last_error=note,
                  post_url=db_text(url), attempts=outbox.c.attempts + 1)

    def release(self, row_id: int, error: str | None, *, not_before: datetime | None = None,
                count_attempt: bool = True, claim: str | None = None) -> bool:
        """Back to pending, e.g. after a transient failure or a rate limit.
        With ``claim`` (the worker whose try this settles) only while that
        claim still holds the row: a row another worker settled meanwhile (it
        found the post on the platform after taking over a stalled claim)
        must not be reopened, or it is posted twice. False when fenced out."""
        return self._set(row_id, fence=claim, status="pending", last_error=error,
                         not_before=not_before, claimed_at=None, claimed_by=None,
                         attempts=outbox.c.attempts + (1 if count_attempt else 0))

    def mark_failed(self, row_id: int, error: str, *, claim: str | None = None) -> bool:
        """Failed; with ``claim``, fenced as ``release`` is (a post found sent
        meanwhile stays sent)."""
        return self._set(row_id, fence=claim, status="failed", last_error=error,
                         attempts=outbox.c.attempts + 1)

    def mark_skipped(self, row_id: int, reason: str) -> None:
        self._set(row_id, status="skipped", last_error=reason)

    def _set(self, row_id: int, *, fence: str | None = None, **values) -> bool:
        """Update one outbox row; with ``fence``, only while that worker's
        claim holds it. True when the row changed."""
        if isinstance(values.get("last_error"), str):
            values["last_error"] = db_text(values["last_error"])
        where = [outbox.c.id == row_id]
        if fence is not None:
            where += [outbox.c.status == "sending", outbox.c.claimed_by == fence]
        with self.tx(self.durable) as conn:
            return conn.execute(outbox.update().where(*where).values(
                updated_at=self.clock(), **values)).rowcount == 1

    def retry(self, *, row_id: int | None = None, account: str | None = None) -> int:
        """Re-queue one failed/skipped post, or all failed posts of an account."""
        where = [outbox.c.id == row_id] if row_id is not None else \
            [outbox.c.account == account, outbox.c.status == "failed"]
        with self.tx(self.durable) as conn:
            return conn.execute(outbox.update().where(
                *where, outbox.c.status.in_(["failed", "skipped"])).values(
                status="pending", attempts=0, not_before=None, queued_at=self.clock(),
                updated_at=self.clock())).rowcount

    def skip(self, row_id: int, reason: str = "skipped by the user") -> int:
        with self.tx(self.durable) as conn:
            return conn.execute(outbox.update().where(
                outbox.c.id == row_id, outbox.c.status.in_(["pending", "failed"])).values(
                status="skipped", last_error=reason, updated_at=self.clock())).rowcount

    # -- the desk: held posts, and what X's budget counts -----------------------

    def held(self, account: str | None = None, limit: int | None = None) -> list[sa.Row]:
        """Held rows (all accounts, or ``account``'s) as ``queue`` gives them,
        oldest first; the first ``limit`` only when given (a page of them)."""
        where = [outbox.c.status == "held"] + ([outbox.c.account == account] if account else [])
        with self.read() as conn:
            return list(conn.execute(_with_article().where(*where).order_by(outbox.c.id)
                                     .limit(limit)))

    def approve(self, row_id: int, text: str | None = None) -> int:
        """A held post goes to the queue: pending, ``queued_at`` now (so
        ``expire_after`` counts from the approval), with the editor's ``text``
        when given. Returns the rows changed (0: no such held post)."""
        now = self.clock()
        edited = {"text": db_text(text)} if text is not None else {}
        with self.tx(self.durable) as conn:
            return conn.execute(outbox.update().where(
                outbox.c.id == row_id, outbox.c.status == "held").values(
                status="pending", queued_at=now, updated_at=now, **edited)).rowcount

    def reject(self, row_id: int, reason: str = "rejected by an editor") -> int:
        """A held post is never sent: ``rejected``, with ``reason``, a state of
        its own so that ``retry`` (which takes failed and skipped posts) cannot
        send what an editor refused. Returns the rows changed."""
        with self.tx(self.durable) as conn:
            return conn.execute(outbox.update().where(
                outbox.c.id == row_id, outbox.c.status == "held").values(
                status="rejected", last_error=db_text(reason), updated_at=self.clock())).rowcount

    def sent_count(self, account: str, since: datetime) -> int:
        """Posts of ``account`` sent at or after ``since``."""
        with self.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
                *_sent_since(account, since))).scalar_one()

    def sent_since(self, account: str, since: datetime) -> list[tuple[datetime, bool]]:
        """(sent_at, has_link) of each post of ``account`` sent at or after
        ``since``, oldest first; ``has_link``: the article's URL is in the
        post's text (X prices such posts higher)."""
        with self.read() as conn:
            rows = conn.execute(sa.select(outbox.c.sent_at, outbox.c.text, articles.c.url)
                                .join(articles, articles.c.id == outbox.c.article_id)
                                .where(*_sent_since(account, since))
                                .order_by(outbox.c.sent_at, outbox.c.id))
            # The URL without its fragment: tracking parameters go before it.
            return [(r.sent_at, bool(r.url and r.text and r.url.split("#")[0] in r.text))
                    for r in rows]

    # -- retention -----------------------------------------------------------

    def prune(self, before: datetime, limit: int = 5000, batch: int = 500) -> int:
        """Delete up to ``limit`` settled outbox rows settled before ``before``
        and the stories no post refers to any more (bot.retention.prune)."""
        return retention.prune(self.tx, before, limit, batch)

    # -- accounts ------------------------------------------------------------

    def account_row(self, name: str) -> sa.Row | None:
        with self.read() as conn:
            return conn.execute(account_state.select().where(account_state.c.name == name)).first()

    def set_account(self, name: str, **values) -> None:
        with self.tx(self.durable) as conn:
            insert_ignore(conn, account_state, {"name": name, "updated_at": self.clock()}, ["name"])
            conn.execute(account_state.update().where(account_state.c.name == name).values(
                updated_at=self.clock(), **values))

    def wait_until(self, name: str, until: datetime, reason: str) -> None:
        """The account sends nothing before ``until``; ``reason`` says why
        (rate limited, monthly usage cap, backing off after errors). A longer
        wait already set (another worker's monthly cap) is kept."""
        c = account_state.c
        longer = sa.and_(c.paused_until.is_not(None), c.paused_until > sa.literal(until, TS()))
        self.set_account(name,
                         paused_until=sa.case((longer, c.paused_until), else_=sa.literal(until, TS())),
                         wait_reason=sa.case((longer, c.wait_reason), else_=sa.literal(db_text(reason))))

    # -- workers -------------------------------------------------------------

    def beat(self, worker: str, host: str, pid: int, started_at: datetime) -> None:
        """The running ``worker`` is alive now (its row made or refreshed)."""
        with self.tx() as conn:
            upsert(conn, workers, {"worker": worker, "host": host, "pid": pid,
                                   "started_at": started_at, "beat_at": self.clock()}, ["worker"])

    def workers(self) -> list[sa.Row]:
        """Heartbeat rows (.worker .host .pid .started_at .beat_at), newest beat
        first; a worker that died without ``end_worker`` stays until it ages."""
        with self.read() as conn:
            return list(conn.execute(workers.select().order_by(workers.c.beat_at.desc(),
                                                               workers.c.worker)))

    def end_worker(self, worker: str) -> None:
        """A clean shutdown: the worker's row goes."""
        with self.tx() as conn:
            conn.execute(workers.delete().where(workers.c.worker == worker))

    # -- reporting -----------------------------------------------------------

    def outbox_counts(self) -> dict[str, dict[str, int]]:
        with self.read() as conn:
            rows = conn.execute(sa.select(outbox.c.account, outbox.c.status, sa.func.count())
                                .group_by(outbox.c.account, outbox.c.status))
            counts: dict[str, dict[str, int]] = {}
            for account, status, n in rows:
                counts.setdefault(account, {})[status] = n
            return counts

    def queue_stats(self, now: datetime) -> dict[str, tuple[int, datetime | None]]:
        """Per account with pending posts: (how many, the earliest time one of
        those due at ``now`` became due, None when none is due yet). A post
        becomes due when queued, or at its ``not_before`` when that is later.
        One GROUP BY query (for metrics, scraped often)."""
        c = outbox.c
        later = sa.and_(c.not_before.is_not(None), c.not_before > c.queued_at)
        due_since = sa.case((later, c.not_before), else_=c.queued_at)
        due = sa.or_(c.not_before.is_(None), c.not_before <= sa.literal(now, TS()))
        oldest = sa.func.min(sa.case((due, due_since)), type_=TS())
        with self.read() as conn:
            rows = conn.execute(sa.select(c.account, sa.func.count(), oldest)
                                .where(c.status == "pending").group_by(c.account))
            return {account: (n, since) for account, n, since in rows}

    def recent(self, statuses: Sequence[str], limit: int = 10) -> list[sa.Row]:
        with self.read() as conn:
            return list(conn.execute(
                sa.select(outbox, articles.c.title, articles.c.url)
                .join(articles, articles.c.id == outbox.c.article_id)
                .where(outbox.c.status.in_(list(statuses)))
                .order_by(outbox.c.updated_at.desc(), outbox.c.id.desc()).limit(limit)))


def _check_feed_columns(values: Mapping[str, object]) -> None:
    if unknown := values.keys() - set(feed_state.c.keys()):
        raise TypeError(f"not a feed_state column to set: {sorted(unknown)}")


def _mark_polled(conn: sa.Connection, feed: str, values: Mapping[str, object]) -> None:
    """Set ``values`` on the feed's row: one prepared UPDATE whose SET clause
    the parameters name (this runs at every poll of every feed)."""
    if values:
        conn.execute(_stmts(conn.dialect.name).update_feed, {"feed_name": feed, **values})


@dataclass(frozen=True)
class _Plan:
    """What one ingest writes, decided from the first batch's transaction."""

    primed: bool            # the feed was seen before
    new: list[Article]      # not known in this feed
    to_queue: set[str]      # item ids to queue
    chunks: list[list[Article]]


def _plan(conn: sa.Connection, feed: str, unique: list[Article], known: Collection[str] | None,
          backfill: int, max_age: timedelta | None, now: datetime, unseen: bool) -> _Plan:
    state = conn.execute(_stmts(conn.dialect.name).primed, {"name": feed}).first()
    primed = state is not None and state.primed_at is not None
    if known is None and unseen and not primed and not (state and state.has_items):
        known = ()   # still as its caller made it: nothing recorded, nothing pruned
    if known is None:
        known = _known(conn, feed, [a.item_id for a in unique])
    new = [a for a in unique if a.item_id not in known]
    # The backfill is chosen over the whole document, not over what is still
    # unrecorded: a first sight cut short by a failed batch must not, when
    # tried again, queue the next-newest items as well.
    to_queue = {a.item_id for a in (new if primed else newest(unique, backfill))
                if a.item_id not in known and not _too_old(a, max_age, now)}
    return _Plan(primed, new, to_queue, _chunks(new, BATCH) or [[]])


def _batch(conn: sa.Connection, feed: str, plan: _Plan, n: int,
           targets: Callable[[Article], Sequence[Target]], now: datetime,
           polled: Mapping[str, object]) -> int:
    """Record batch ``n`` of ``plan``; the last one also sets ``polled`` on the feed."""
    queued = _record(conn, feed, plan.chunks[n], targets, now, plan.to_queue)
    if n == len(plan.chunks) - 1:
        _mark_polled(conn, feed, polled)
    return queued


def _targets(accounts: Accounts) -> Callable[[Article], Sequence[Target]]:
    """``accounts`` as a function of the article, whichever form was given."""
    if callable(accounts):
        return accounts
    fixed = [Target(name, priority) for name, priority in accounts]
    return lambda _article: fixed


def _outbox_row(article_id: int, target: Target, now: datetime) -> dict:
    if target.status not in TARGET_STATUSES:
        raise ValueError(f"unknown target status {target.status!r}")
    return {"article_id": article_id, "account": target.account, "status": target.status,
            "priority": target.priority, "queued_at": now, "attempts": 0, "updated_at": now,
            "last_error": db_text(target.reason) if target.status == "filtered" else None}


def _sent_since(account: str, since: datetime) -> list[sa.ColumnElement[bool]]:
    return [outbox.c.account == account, outbox.c.status == "sent",
            outbox.c.sent_at >= sa.literal(since, TS())]


@dataclass(frozen=True)
class _Statements:
    """Ingest's statements, built once per dialect: SQLAlchemy then only looks
    its compiled form up (building one costs more than SQLite running it)."""

    feed: sa.Select
    add_feed: sa.Insert
    reset_feed: sa.Update
    update_feed: sa.Update
    unchanged: sa.Update
    primed: sa.Select
    known: sa.Select
    seen: sa.Select
    article_ids: sa.Select
    add_articles: sa.Insert
    add_items: sa.Insert
    add_items_quiet: sa.Insert
    add_posts: sa.Insert
    remember: sa.Insert


def _later(column: sa.Column) -> sa.Case:
    """``column`` set to the bound "at" unless it already holds a later time."""
    at = sa.bindparam("at", type_=TS())
    return sa.case((sa.or_(column.is_(None), column < at), at), else_=column)


@functools.cache
def _stmts(dialect: str) -> _Statements:
    ins = dialect_insert(dialect)
    return _Statements(
        feed=feed_state.select().where(feed_state.c.name == sa.bindparam("name")),
        add_feed=ins(feed_state).values(error_streak=0).on_conflict_do_nothing(
            index_elements=["name"]).returning(*feed_state.c),
        reset_feed=feed_state.update().where(feed_state.c.name == sa.bindparam("feed_name")).values(
            url=None, etag=None, last_modified=None, gone_reason=None, error_streak=0)
        .returning(*feed_state.c),
        update_feed=feed_state.update().where(feed_state.c.name == sa.bindparam("feed_name")),
        unchanged=feed_state.update().where(feed_state.c.name == sa.bindparam("feed_name")).values(
            last_fetch_at=_later(feed_state.c.last_fetch_at),
            last_success_at=_later(feed_state.c.last_success_at)),
        primed=sa.select(feed_state.c.primed_at,
                         sa.exists().where(items.c.feed == feed_state.c.name).label("has_items"))
        .where(feed_state.c.name == sa.bindparam("name")),
        known=sa.select(items.c.item_id).where(items.c.feed == sa.bindparam("feed"),
                                               among(items.c.item_id, dialect, sa.String)),
        seen=sa.select(seen_keys.c.key).where(among(seen_keys.c.key, dialect, sa.LargeBinary)),
        article_ids=sa.select(articles.c.url_key, articles.c.id).where(
            among(articles.c.url_key, dialect, sa.Text)),
        add_articles=ins(articles).on_conflict_do_nothing(index_elements=["url_key"]),
        add_items=ins(items).on_conflict_do_nothing(index_elements=["feed", "item_id"])
        .returning(items.c.item_id),
        add_items_quiet=ins(items).on_conflict_do_nothing(index_elements=["feed", "item_id"]),
        add_posts=ins(outbox).on_conflict_do_nothing(index_elements=["article_id", "account"])
        .returning(outbox.c.status),
        remember=ins(seen_keys).on_conflict_do_nothing(index_elements=["key"]))


def _known(conn: sa.Connection, feed: str, item_ids: Sequence[str]) -> set[str]:
    """Which of ``item_ids`` ``feed`` has shown: in ``items``, or pruned since
    and remembered by digest in ``seen_keys`` (asked only for the rest)."""
    stmts, keys = _stmts(conn.dialect.name), {db_key(item_id): item_id for item_id in item_ids}
    found: set[str] = set()
    for chunk in _chunks(list(keys), BATCH):
        found.update(keys[k] for k in conn.execute(stmts.known, {"feed": feed, "ids": chunk}).scalars())
    digests = {item_digest(feed, k): v for k, v in keys.items() if v not in found}
    return found | {digests[d] for d in _seenamong(conn, list(digests))}


def _seenamong(conn: sa.Connection, digests: Sequence[bytes]) -> set[bytes]:
    """Those of ``digests`` seen_keys holds."""
    stmt, seen = _stmts(conn.dialect.name).seen, set()
    for chunk in _chunks(list(digests), BATCH):
        seen.update(conn.execute(stmt, {"ids": chunk}).scalars())
    return seen


def _record(conn: sa.Connection, feed: str, chunk: Sequence[Article],
            targets: Callable[[Article], Sequence[Target]], now: datetime,
            to_queue: set[str]) -> int:
    """Record one chunk of new items and their stories in a few statements,
    queueing those in ``to_queue``. Returns the rows queued (held included,
    filtered not). An item another process recorded meanwhile is not queued
    again: only the items this INSERT made are."""
    if not chunk:
        return 0
    stmts = _stmts(conn.dialect.name)
    story = {a.item_id: db_key(story_key(a.url)) for a in chunk}
    digest = {k: story_digest(k) for k in set(story.values())}
    pruned = _seenamong(conn, sorted(digest.values()))
    # A story pruned long ago, back under a new item id: remember the id too
    # (it is not new next time) and record or queue nothing of it.
    gone = [a for a in chunk if digest[story[a.item_id]] in pruned]
    if gone:
        conn.execute(stmts.remember, [{"key": item_digest(feed, db_key(a.item_id))} for a in gone])
    live = [a for a in chunk if digest[story[a.item_id]] not in pruned]
    if not live:
        return 0
    insert_many(conn, stmts.add_articles, [_article_row(a, story[a.item_id], now) for a in live])
    ids = dict(conn.execute(stmts.article_ids, {"ids": sorted(set(story.values()))}).all())
    rows = {a.item_id: {"feed": feed, "item_id": db_key(a.item_id),
                        "article_id": ids[story[a.item_id]], "first_seen_at": now} for a in live}
    fresh = _add_items(conn, [row for item_id, row in rows.items() if item_id in to_queue],
                       [row for item_id, row in rows.items() if item_id not in to_queue])
    posts = [_outbox_row(ids[story[a.item_id]], t, now) for a in live
             if a.item_id in to_queue and db_key(a.item_id) in fresh for t in targets(a)]
    if not posts:
        return 0
    return sum(status != "filtered" for status in conn.execute(stmts.add_posts, posts).scalars())


def _add_items(conn: sa.Connection, to_queue: list[dict], others: list[dict]) -> set[str]:
    """Insert item rows; returns which of ``to_queue`` this INSERT made. Only
    those are asked back: with RETURNING, SQLAlchemy renders multi-row
    INSERTs and reads each row back instead of one driver executemany, and
    at a first sight all but the backfill are recorded, never queued."""
    stmts = _stmts(conn.dialect.name)
    insert_many(conn, stmts.add_items_quiet, others)
    return set(conn.execute(stmts.add_items, to_queue).scalars()) if to_queue else set()


def insert_many(conn: sa.Connection, stmt: sa.Insert, rows: Sequence[Mapping]) -> None:
    """``conn.execute(stmt, rows)`` for an INSERT without RETURNING whose rows
    all have the same keys. On SQLite it is one driver executemany of tuples:
    SQLAlchemy's own builds and processes a parameter dict per row, which at a
    feed's first sight (50 articles, 50 items) cost more than SQLite's work.
    The values go through the columns' own bind processors, so the database
    gets what SQLAlchemy would have sent."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(stmt, rows)
        return
    sql, plan = _positional(stmt, tuple(rows[0]), conn.dialect)
    conn.exec_driver_sql(sql, [tuple(p(row[k]) if p else row[k] for k, p in plan) for row in rows])


@functools.lru_cache(maxsize=64)
def _positional(stmt: sa.Insert, keys: tuple[str, ...], dialect: sa.Dialect) -> tuple[str, tuple]:
    """The SQL of ``stmt`` for rows of ``keys`` and, in its parameters'
    order, each one's key and bind processor (None: sent as it is)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    columns = stmt.table.c
    return compiled.string, tuple((k, columns[k].type.dialect_impl(dialect).bind_processor(dialect))
                                  for k in compiled.positiontup)


def _article_row(article: Article, key: str, now: datetime) -> dict:
    return {"url_key": key, "url": db_text(article.url), "feed": article.feed,
            "title": db_text(article.title), "lead": db_text(article.lead),
            "image": db_text(article.image), "author": db_text(article.author),
            "categories": json.dumps([db_text(c) for c in article.categories]),
            "published_at": article.published, "first_seen_at": now}


def _with_article() -> sa.Select:
    """Outbox rows with what their article adds (retention never deletes an
    article a post still refers to, so every post has one)."""
    return (sa.select(outbox, articles.c.published_at, articles.c.first_seen_at,
                      articles.c.title, articles.c.url)
            .join(articles, articles.c.id == outbox.c.article_id))


def _check_target(target: Path) -> None:
    if not target.parent.is_dir():
        raise StoreError(f"backup {target}: the folder {target.parent} does not exist")
    if target.is_dir() or (target.exists() and target.stat().st_size > 0):
        raise StoreError(f"backup {target} exists; Herald never overwrites a file: "
                         "choose a new name or move that one away")


def _sync(path: Path) -> None:
    """Make ``path`` (a file, or a folder after a rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(seq: Sequence, size: int) -> list:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def _unique(found: Sequence[Article]) -> list[Article]:
    """Drop repeated item ids within one poll (some feeds list an item twice)."""
    seen: dict[str, Article] = {}
    for article in found:
        seen.setdefault(article.item_id, article)
    return list(seen.values())


def newest(found: Sequence[Article], n: int) -> list[Article]:
    """The newest ``n`` by publication time; undated items keep feed order."""
    if n <= 0:
        return []
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    ranked = sorted(enumerate(found), key=lambda p: (p[1].published or epoch, -p[0]), reverse=True)
    return [a for _, a in ranked[:n]]


def _too_old(article: Article, max_age: timedelta | None, now: datetime) -> bool:
    return bool(max_age and article.published and now - article.published > max_age)
