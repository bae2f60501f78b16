"""One Herald per SQLite database: a second one would post everything twice."""
from __future__ import annotations

import fcntl
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from bot.errors import HeraldError, StoreError


class InstanceLock:
    """An exclusive lock file beside a SQLite database (``herald.db.lock``).

    The lock is held by an open file descriptor, so the kernel releases it when
    the process dies, even by SIGKILL: there is never a stale lock to clean up."""

    def __init__(self, database_url: str):
        self.path = _lock_path(database_url)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise HeraldError naming the database and the holder."""
        if self.path is None:
            return
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise HeraldError(f"database {self.path.with_suffix('')} is in use by another Herald "
                              f"({holder}); stop it first or give this one another database") from None
        os.ftruncate(fd, 0)
        started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode())
        self._fd = fd

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"database {self.path.with_suffix('')}: its lock file {self.path} "
                             f"cannot be created ({exc.strerror}); make the folder writable by "
                             "the user Herald runs as") from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def exclusive(self) -> bool:
        """True when this lock guarantees no other Herald uses the database."""
        return self._fd is not None


def _lock_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return None  # server databases: several workers may share them
    return Path(url[len(prefix):] + ".lock")
