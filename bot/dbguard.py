"""The database in trouble: turn what SQLite or PostgreSQL says into one line
that names the database and what to do, and notice a database file deleted or
replaced while Herald runs (SQLite would go on writing into the unlinked file,
and every record since would be lost at the next start)."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from bot.errors import StoreError

log = logging.getLogger(__name__)

# (words in the driver's message, what to tell the operator); first match wins.
ADVICE = (
    (("disk is full", "no space left", "could not extend file", "disk full"),
     "the disk is full; free some space and Herald goes on by itself"),
    (("readonly database", "read-only", "read only"),
     "it is read-only; make the file and its folder writable by the user Herald runs as"),
    (("unable to open database file", "disk i/o error"),
     "it cannot be opened or written; check that its folder exists and is writable by the "
     "user Herald runs as (SQLite writes -wal and -shm files beside it)"),
    (("file is not a database", "malformed"),
     "it is not a usable SQLite database; restore it from a backup or move it away and let "
     "Herald create a new one"),
    (("database is locked",),
     "another process holds it locked; stop that process or wait"),
    (("connection refused", "could not connect", "connection to server", "server closed",
      "terminating connection", "timeout expired", "no route to host"),
     "the database server does not answer; check that it runs and is reachable"),
    (("password authentication failed", "role", "permission denied"),
     "the server refused Herald's login or rights; check the database URL's user and grants"),
)


def describe(url: sa.URL) -> str:
    """How to name the database in a message: the file, or the server without
    its password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def translate(exc: sa.exc.DBAPIError, where: str) -> StoreError:
    """The StoreError for a driver error that is about the database itself."""
    detail = str(exc.orig or exc).strip()
    for words, advice in ADVICE:
        if any(w in detail.lower() for w in words):
            return StoreError(f"database {where}: {advice}")
    return StoreError(f"database {where}: {detail.splitlines()[0] if detail else type(exc).__name__}")


def is_trouble(exc: BaseException) -> bool:
    """True for errors about the database (disk, file, server), False for
    Herald's own mistakes (a constraint, bad SQL), which must stay loud."""
    return isinstance(exc, sa.exc.OperationalError) or type(exc) is sa.exc.DatabaseError


class FileWatch:
    """Remembers which file a SQLite database is, so that one deleted or
    replaced under a running Herald stops it instead of writing into nothing."""

    def __init__(self, path: str | None):
        self.path = path
        self.identity: tuple[int, int] | None = None

    def check(self) -> None:
        """Raise a fatal StoreError when the file is gone or is another file."""
        if not self.path:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.identity is None:
                return  # not created yet: the first transaction creates it
            raise self._gone("was deleted") from None
        except OSError as exc:  # its folder unreadable, say: not fatal, may pass
            raise StoreError(f"database {self.path}: cannot be checked ({exc.strerror}); make "
                             "its folder readable by the user Herald runs as") from None
        identity = (st.st_dev, st.st_ino)
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            raise self._gone("was replaced")

    def _gone(self, what: str) -> StoreError:
        return StoreError(f"database {self.path} {what} while Herald ran; Herald stops so that "
                          "nothing more is recorded into it. Restore it from a backup (or move "
                          "the new file away) and start Herald again", fatal=True)


class Reporter:
    """Logs a database problem once when it starts and once when it has passed,
    not on every job: a full disk must not fill what is left of it with the
    log. A small write can succeed on a full disk, so a problem has passed only
    when ``quiet`` seconds went by without it."""

    def __init__(self, quiet: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.quiet = quiet
        self.clock = clock
        self.problem: str | None = None
        self.last_failed = 0.0
        self.lock = threading.Lock()

    def failed(self, error: StoreError) -> None:
        with self.lock:
            if str(error) != self.problem:
                log.error("%s", error)
            error.logged = True
            self.problem, self.last_failed = str(error), self.clock()

    def ok(self) -> None:
        if self.problem is None or self.clock() - self.last_failed < self.quiet:
            return
        with self.lock:
            if self.problem is not None:
                log.info("database works again (it was: %s)", self.problem)
            self.problem = None
