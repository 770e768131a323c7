"""The CDC source on a thread (`streams.background`), and a database with the platform's
DDL, for the integration tests that run them in-process."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer
from streams import topics
from streams.background import Background
from streams.dev.db import slot_streaming
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
        self, bootstrap: str, codecs: TopicCodecs, config: PostgresCdcConfig | None = None,
        producer: Producer | None = None,
    ) -> Background:  # fmt: skip
        """The source on a thread, returned once its snapshot is done and it streams."""
        config = config or self.cdc_config()
        if producer is None:
            producer = make_producer(bootstrap, max_record_bytes=config.max_record_bytes)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        keys = Consumer({"bootstrap.servers": bootstrap, "group.id": "wedsync-cdc-state-keys",
                         "enable.auto.commit": False})  # fmt: skip
        source = running(PostgresCdcSource(config, producer, codecs, admin=admin,
                                           state_consumer=keys))  # fmt: skip
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


def read_topic(
    bootstrap: str, topic: topics.Topic, want: Callable[[Message], bool], count: int = 1,
    timeout: float = 30.0,
) -> list[Message]:  # fmt: skip
    """The first `count` records of `topic` (from the start) that `want` accepts."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "contract-probe",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic.name, p, 0) for p in range(topic.partitions)])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count:
            assert time.monotonic() < deadline, f"{topic.name}: {len(found)} of {count} found"
            found += [m for m in consumer.consume(500, 0.2) if not m.error() and want(m)]
    finally:
        consumer.close()
    return found[:count]
