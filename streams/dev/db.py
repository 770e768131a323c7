"""A throwaway PostgreSQL server with the platform's schema, for `make run`, tests and
benchmarks.

`initdb` in a temp dir (owned by the `postgres` user when we run as root, since initdb refuses
root), started with `wal_level=logical` on a free loopback port with its socket in the same
dir, and always stopped with `pg_ctl stop -m immediate` and the dir removed: nothing outlives
the `throwaway_postgres()` context.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

from streams.dev.broker import free_port
from streams.settings import REPO_ROOT

PLATFORM_DDL = REPO_ROOT / "schemas" / "platform" / "platform.sql"

PG_BIN = Path(os.environ.get("WEDSYNC_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str
    datadir: Path

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run as the `postgres` user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], timeout: float = 60.0) -> None:
    result = subprocess.run(
        _as_postgres(cmd), capture_output=True, text=True, timeout=timeout, cwd="/"
    )
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()}")


def available() -> bool:
    """True when the PostgreSQL server binaries are installed here."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


@contextlib.contextmanager
def throwaway_postgres(timeout: float = 60.0) -> Iterator[PostgresServer]:
    """Start a fresh logical-replication-ready PostgreSQL; stop and delete it on exit."""
    base = Path(tempfile.mkdtemp(prefix="wedsync-pg-"))
    datadir = base / "data"
    started = False
    try:
        if os.geteuid() == 0:
            shutil.chown(base, user="postgres", group="postgres")
        base.chmod(0o700)
        _run(
            [
                str(PG_BIN / "initdb"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
                str(datadir),
            ],
            timeout,
        )
        for _ in range(3):  # the free port can be taken between probe and bind
            port = free_port()
            # synchronous_commit stays on, as on the platform: off, a commit reaches the
            # WAL sender only at the WAL writer's next flush (up to wal_writer_delay, 200
            # ms), which the delivery bench's budget showed as ~120 ms of commit -> CDC
            # record at a trickle; with fsync off the flush costs nothing here.
            options = (
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c wal_level=logical "
                "-c max_replication_slots=20 -c max_wal_senders=20 -c fsync=off "
                "-c full_page_writes=off -c max_connections=50 "
                "-c wal_sender_timeout=10s -c shared_buffers=64MB"
            )
            try:
                _run(
                    [
                        str(PG_BIN / "pg_ctl"),
                        "start",
                        "-w",
                        "-t",
                        str(int(timeout)),
                        "-D",
                        str(datadir),
                        "-l",
                        str(base / "log"),
                        "-o",
                        options,
                    ],
                    timeout + 5,
                )
                started = True
                break
            except RuntimeError:
                if not _port_in_use_failure(base / "log"):
                    raise
        if not started:
            raise RuntimeError("PostgreSQL did not start on a free port three times")
        yield PostgresServer("127.0.0.1", port, "postgres", "postgres", datadir)
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run(
                    [str(PG_BIN / "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", str(datadir)],
                    30,
                )
        shutil.rmtree(base, ignore_errors=True)


def _port_in_use_failure(log: Path) -> bool:
    with contextlib.suppress(OSError):
        return "Address already in use" in log.read_text()
    return False


def create_platform_database(server: PostgresServer, name: str) -> str:
    """A new database `name` with `schemas/platform/platform.sql`; returns its DSN."""
    admin = psycopg2.connect(server.dsn)
    admin.autocommit = True
    with contextlib.closing(admin), admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = server.dsn.replace(f"dbname={server.dbname}", f"dbname={name}")
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute(PLATFORM_DDL.read_text())
    return dsn


def slot_streaming(cur: Any, slot: str) -> bool:
    """The replication slot exists and a client streams from it (a CDC source's snapshot is
    done)."""
    cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    row = cur.fetchone()
    return bool(row and row[0])


def wait_until(predicate: object, timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll `predicate()` until it is truthy or `timeout` passes; returns the last result."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
