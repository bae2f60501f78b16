"""A throwaway PostgreSQL cluster for tests, and a ``db_url`` fixture that runs
a test on both SQLite and PostgreSQL.

The cluster is started once per session (initdb with trust auth in a temp dir,
listening only on 127.0.0.1, durability switched off because nothing here must
survive) and each test gets an empty database. PostgreSQL refuses to run as
root, so under root the server runs as the ``postgres`` system user. When no
server binaries are found the PostgreSQL cases are skipped with the reason.

Use: ``from postgres import db_url`` in a test module (tests/conftest.py
provides the session fixture ``postgres_server`` and ``postgres_url``).
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

DBNAME = "herald_test"
# Nothing written here needs to survive a crash, so skip every fsync.
FAST = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200")


@dataclass
class PostgresServer:
    """A running cluster: where it listens and how to run its tools."""

    bindir: Path
    root: Path
    port: int
    user: str | None  # the system user the server runs as, None for ourselves

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=self.root)

    def sql(self, *statements: str, dbname: str = "postgres") -> None:
        """Run ``statements`` as the superuser, in autocommit mode (CREATE
        DATABASE refuses to run inside a transaction)."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=dbname, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def find_bindir() -> Path | None:
    """The PostgreSQL server binaries: $HERALD_PG_BIN, the newest Debian
    install under /usr/lib/postgresql, or ``pg_ctl`` on PATH."""
    candidates = [os.environ.get("HERALD_PG_BIN", "")]
    installed = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(installed, key=lambda p: [int(n) for n in re.findall(r"\d+", p)],
                         reverse=True)
    on_path = shutil.which("pg_ctl")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    for candidate in filter(None, candidates):
        if all((Path(candidate) / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(bindir: Path) -> PostgresServer:
    """initdb and start a cluster in a fresh temp dir; raises on failure."""
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        pwd.getpwnam(user)  # KeyError when there is no such system user
    # Not under pytest's tmp_path: its parents are private to root.
    root = Path(tempfile.mkdtemp(prefix="herald-pg-"))
    if user:
        shutil.chown(root, user)
    server = PostgresServer(bindir, root, free_port(), user)
    try:
        server.run("initdb", "-D", "data", "-A", "trust", "-U", "postgres", "-E", "UTF8",
                   "--locale=C", "--no-sync", "--no-instructions")
        options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} {FAST}"
        server.run("pg_ctl", "-D", "data", "-l", "server.log", "-w", "-o", options, "start")
    except (subprocess.CalledProcessError, OSError) as exc:
        log = root / "server.log"
        if isinstance(exc, subprocess.CalledProcessError) and log.exists():
            exc.stderr = (exc.stderr or "") + log.read_text()[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


def stop_server(server: PostgresServer) -> None:
    try:
        server.run("pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster for the whole session (skips when none is installed)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (set HERALD_PG_BIN to their bin dir)")
    try:
        server = start_server(bindir)
    except (subprocess.CalledProcessError, OSError, KeyError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        pytest.fail(f"could not start PostgreSQL from {bindir}: {detail}")
    try:
        server.sql(f"CREATE DATABASE {DBNAME}")
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def postgres_url(postgres_server):
    """A SQLAlchemy URL of an empty database. Emptied again after the test
    (connections the test left open are cut): dropping the schema costs about
    20 ms where CREATE DATABASE costs 250."""
    yield postgres_server.url(DBNAME)
    postgres_server.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        "DROP SCHEMA public CASCADE", "CREATE SCHEMA public", dbname=DBNAME)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same test on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'herald.db'}"
    return request.getfixturevalue("postgres_url")
