"""A stand-in for the CDC source and a reader of Faust tables, for tests and benchmarks that
drive the worker without PostgreSQL: changes written as `wedsync cdc` writes them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from streams import topics
from streams.dev.samples import change_event
from streams.kafka.codec import TopicCodecs
from streams.logic.state import STATE_TABLES
from streams.models import ChangeEvent
from streams.topics import change_key


class CdcLike:
    """Writes changes as the CDC source does, each change its own transaction: to
    wedsync.ingest.cdc with `state_lsn` (the last state-changing commit so far), state-table
    changes also to wedsync.ingest.state, and `beat()` a heartbeat of the last commit LSN
    there when a state change is not yet covered by one."""

    def __init__(self, bootstrap: str, codecs: TopicCodecs, linger_ms: float = 1) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms,
                                  "queue.buffering.max.messages": 1_000_000})  # fmt: skip
        self.codec, self.state_codec = codecs[topics.INGEST_CDC], codecs[topics.INGEST_STATE]
        self.last = self.state_lsn = self.beaten = 0

    def send(self, change: ChangeEvent) -> None:
        key = change_key(change)
        commit = change["source"]["commit_lsn"] or 0
        self.last = max(self.last, commit)
        is_state = change["source"]["table"] in STATE_TABLES
        if is_state:
            self.state_lsn = max(self.state_lsn, commit)
        source = {**change["source"], "state_lsn": self.state_lsn or None}
        stamped: ChangeEvent = {**change, "source": source}  # type: ignore[typeddict-item]
        self.producer.produce(topics.INGEST_CDC.name, self.codec.encode(stamped), key)
        if is_state:
            self.producer.produce(topics.INGEST_STATE.name, self.state_codec.encode(stamped), key)

    def beat(self) -> None:
        if self.state_lsn > self.beaten:
            beat = self.state_codec.encode(change_event("", "h", lsn=self.last))
            self.producer.produce(topics.INGEST_STATE.name, beat, b"~heartbeat")
            self.beaten = self.last

    def flush(self, timeout: float = 30) -> None:
        self.beat()
        assert self.producer.flush(timeout) == 0


def produce_changes(bootstrap: str, codecs: TopicCodecs, changes: Iterable[ChangeEvent]) -> None:
    """`changes` as the CDC source writes them, then a heartbeat."""
    cdc = CdcLike(bootstrap, codecs)
    for change in changes:
        cdc.send(change)
    cdc.flush(60)  # a fresh cluster under load may take a while to elect every leader


def wait_for_table(
    bootstrap: str, changelog: str, done: Any, timeout: float = 90.0
) -> dict[Any, Any]:
    """Read a Faust table's changelog (JSON keys and values) until `done(table)` holds for
    the latest value of each key; returns that table."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "probe",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 500,
        }
    )
    consumer.assign([TopicPartition(changelog, 0, 0)])
    table: dict[Any, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while not done(table):
            assert time.monotonic() < deadline, f"{changelog}: {table}"
            for msg in consumer.consume(500, 0.2):
                if not msg.error():
                    table[json.loads(msg.key() or b"null")] = json.loads(msg.value() or b"null")
    finally:
        consumer.close()
    return table
