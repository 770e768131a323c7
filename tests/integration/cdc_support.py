"""The CDC source on a thread (`streams.background`), and a database with the platform's
DDL, for the integration tests that run them in-process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer
from streams.background import Background
from streams.devdb import slot_streaming
from streams.kafka.codec import TopicCodecs

from tests.pg import PostgresServer, create_platform_database, wait_until


def running(source: PostgresCdcSource) -> Background:
    """The source on a thread; `stop()` ends it and re-raises anything it raised."""
    return Background(source.run, "cdc")


@dataclass
class PlatformDb:
    """A fresh database with `schemas/platform/platform.sql` on the session's server."""

    server: PostgresServer
    dbname: str
    running: list[Background] = field(default_factory=list)

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
    ) -> Background:
        """The source on a thread, returned once its snapshot is done and it streams."""
        config = config or self.cdc_config()
        source = running(PostgresCdcSource(config, make_producer(bootstrap), codecs))
        self.running.append(source)
        with self.connect() as conn, conn.cursor() as cur:
            assert wait_until(lambda: source.error is not None or
                              slot_streaming(cur, config.slot_name), timeout=60)  # fmt: skip
        if source.error is not None:
            source.stop()  # raises what the source raised
        return source


def create_platform_db(server: PostgresServer) -> PlatformDb:
    name = f"platform_{uuid.uuid4().hex[:8]}"
    create_platform_database(server, name)
    return PlatformDb(server, name)


def drop_platform_db(db: PlatformDb) -> None:
    """Stop its CDC sources and drop their slots (a slot pins WAL on the shared server)."""
    for source in db.running:
        source.stop_event.set()
        source.thread.join(30)
    admin = psycopg2.connect(db.server.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = %s AND NOT active", (db.dbname,))  # fmt: skip
    admin.close()
