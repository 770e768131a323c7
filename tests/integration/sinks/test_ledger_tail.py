"""A running sink's ledger tail is fetched lazily on Apache Kafka: while results keep
arriving it asks a few times a second (the broker answers once 1 MiB arrived or after
250 ms), not once per results batch as a latency-bound consumer does, and it still gets
every record. Its freshness does not matter between assignments: `catch_up` reads to the
end when partitions are assigned."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import OFFSET_END, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from connectors.sinks import ledger_reader
from connectors.sinks.ledger_reader import LedgerReader
from streams.kafka.connection import client_config

pytestmark = pytest.mark.integration

RECORDS = 300  # one every 10 ms for 3 s


def _fetches(stats: list[dict[str, Any]]) -> int:
    return sum(b["req"].get("Fetch", 0) for b in stats[-1]["brokers"].values()) if stats else 0


def test_the_tail_asks_a_few_times_a_second_and_gets_every_record(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"ledger-tail-{uuid.uuid4().hex[:8]}"  # its own topic: the results stay clean
    admin = AdminClient(client_config(kafka_bootstrap))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    stats: list[dict[str, Any]] = []

    def with_statistics(kafka: Any, options: dict[str, Any]) -> dict[str, Any]:
        return {**client_config(kafka, options), "statistics.interval.ms": 100,
                "stats_cb": lambda text: stats.append(json.loads(text))}  # fmt: skip

    monkeypatch.setattr(ledger_reader, "client_config", with_statistics)
    reader = LedgerReader.__new__(LedgerReader)  # only the tail's consumer, as the reader makes it
    reader._bootstrap = kafka_bootstrap
    consumer = reader._new_consumer(f"tail-{uuid.uuid4()}")
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    try:
        deadline = time.monotonic() + 30
        while _fetches(stats) == 0 and time.monotonic() < deadline:  # its first fetch is out
            consumer.consume(100, 0.05)
        before, got = _fetches(stats), 0
        started = time.monotonic()
        for n in range(RECORDS):
            producer.produce(topic, b"r%d" % n)
            producer.poll(0)
            got += len(consumer.consume(1000, 0))
            time.sleep(max(0.0, started + (n + 1) * 0.01 - time.monotonic()))
        producer.flush(10)
        asked = _fetches(stats) - before
        deadline = time.monotonic() + 5
        while got < RECORDS and time.monotonic() < deadline:
            got += len(consumer.consume(1000, 0.1))
    finally:
        consumer.close()
    assert got == RECORDS
    # 3 s at one answer per 250 ms is 12 fetches; at one per record it would be ~300
    assert asked <= 20, f"{asked} fetches for {RECORDS} records in 3 s"
