"""The CDC source on a thread, and a database with the platform's DDL, for the integration
tests that run them in-process."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer
from streams.kafka.codec import TopicCodecs
from streams.settings import REPO_ROOT

from tests.pg import PostgresServer, wait_until

DDL = REPO_ROOT / "schemas" / "platform" / "platform.sql"


class Running:
    """The source on a thread; `stop()` ends it and re-raises anything it raised."""

    def __init__(self, source: PostgresCdcSource) -> None:
        self.source = source
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.source.run(self.stop_event)
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the CDC source did not stop"
        if self.error is not None:
            raise self.error


@dataclass
class PlatformDb:
    """A fresh database with `schemas/platform/platform.sql` on the session's server."""

    server: PostgresServer
    dbname: str
    running: list[Running] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.server.dsn.replace("dbname=postgres", f"dbname={self.dbname}")

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        """An autocommit connection, closed on exit."""
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        with contextlib.closing(conn):
            yield conn

    def cdc_config(self, **fields: Any) -> PostgresCdcConfig:
        suffix = uuid.uuid4().hex[:8]
        return PostgresCdcConfig(
            host=self.server.host, port=self.server.port, user=self.server.user,
            dbname=self.dbname, slot_name=f"slot_{suffix}", publication=f"pub_{suffix}",
            heartbeat_interval_s=0.5, **fields,
        )  # fmt: skip

    def start_cdc(
        self, bootstrap: str, codecs: TopicCodecs, config: PostgresCdcConfig | None = None
    ) -> Running:
        """The source on a thread, returned once its snapshot is done and it streams."""
        config = config or self.cdc_config()
        running = Running(PostgresCdcSource(config, make_producer(bootstrap), codecs))
        self.running.append(running)
        with self.connect() as conn, conn.cursor() as cur:
            assert wait_until(lambda: running.error is not None or
                              slot_streaming(cur, config.slot_name), timeout=60)  # fmt: skip
        if running.error is not None:
            running.stop()  # raises what the source raised
        return running


def slot_streaming(cur: Any, slot: str) -> bool:
    """The snapshot is done and the permanent slot is being streamed from."""
    cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    row = cur.fetchone()
    return bool(row and row[0])


def create_platform_db(server: PostgresServer) -> PlatformDb:
    name = f"platform_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server.dsn)
    admin.autocommit = True
    with contextlib.closing(admin), admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    db = PlatformDb(server, name)
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(DDL.read_text())
    return db


def drop_platform_db(db: PlatformDb) -> None:
    """Stop its CDC sources and drop their slots (a slot pins WAL on the shared server)."""
    for running in db.running:
        if running.thread.is_alive():
            running.stop_event.set()
            running.thread.join(30)
    admin = psycopg2.connect(db.server.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = %s AND NOT active", (db.dbname,))  # fmt: skip
    admin.close()
