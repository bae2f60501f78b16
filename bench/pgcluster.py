"""A throwaway PostgreSQL cluster for the benchmarks (tests/postgres.py starts
it: temp dir, 127.0.0.1 only, fsync off), or None with the reason printed."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

from postgres import PostgresServer, find_bindir, start_server, stop_server  # noqa: E402


@contextmanager
def cluster(*databases: str, skip: bool = False) -> Iterator[PostgresServer | None]:
    """A running cluster with ``databases`` made, stopped and deleted after."""
    bindir = None if skip else find_bindir()
    if bindir is None:
        print("\nPostgreSQL: skipped (no server binaries, or --skip-postgres)")
        yield None
        return
    server = start_server(bindir)
    try:
        server.sql(*(f"CREATE DATABASE {name}" for name in databases))
        yield server
    finally:
        stop_server(server)


def dsn(server: PostgresServer, database: str) -> str:
    """A libpq connection string for ``database`` (psycopg without SQLAlchemy)."""
    return f"host=127.0.0.1 port={server.port} user=postgres dbname={database}"
