"""On Apache Kafka an idle consumer's fetch waits at the broker until data arrives or the
connection's wait (500 ms) ends: a few requests a second, not one every few milliseconds
(at 5-20 ms a process's idle consumers were a quarter of the broker's CPU), and a record
produced meanwhile still reaches it at once."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from streams.kafka.connection import client_config, consumer_config


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"fetch-wait-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(bootstrap))
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def _consumer(
    bootstrap: str, topic: str, partitions: int, stats: list[dict[str, Any]],
    wait: int | None = None,
) -> Consumer:  # fmt: skip
    consumer = Consumer(consumer_config(bootstrap, {
        "group.id": f"idle-{uuid.uuid4()}", "enable.auto.commit": False,
        "statistics.interval.ms": 100, "stats_cb": lambda text: stats.append(json.loads(text)),
    }, fetch_wait_ms=wait))  # fmt: skip
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])
    return consumer


def _fetches(stats: list[dict[str, Any]]) -> int:
    """Fetch requests the consumer has sent, by its latest statistics."""
    return sum(b["req"].get("Fetch", 0) for b in stats[-1]["brokers"].values()) if stats else 0


def test_an_idle_consumer_asks_the_broker_a_few_times_a_second(kafka_bootstrap: str) -> None:
    stats: list[dict[str, Any]] = []
    consumer = _consumer(kafka_bootstrap, _topic(kafka_bootstrap, 3), 3, stats)
    try:
        deadline = time.monotonic() + 3.0  # a window of idle time: what is counted
        while time.monotonic() < deadline:
            consumer.poll(0.1)
    finally:
        consumer.close()
    assert stats, "librdkafka sent no statistics"
    assert _fetches(stats) <= 12  # 3 s at 500 ms, and the first; at 5 ms it was ~600


def test_a_record_reaches_a_waiting_consumer_long_before_the_wait_ends(
    kafka_bootstrap: str,
) -> None:
    # one partition: a fetch goes out only once its offset is known, so the first one holds
    # it (with more, a partition whose offset came later waits for the next fetch)
    topic = _topic(kafka_bootstrap, 1)
    stats: list[dict[str, Any]] = []
    consumer = _consumer(kafka_bootstrap, topic, 1, stats, wait=20_000)
    producer = Producer(client_config(kafka_bootstrap, {"linger.ms": 0}))
    try:
        deadline = time.monotonic() + 30
        while _fetches(stats) < 1 and time.monotonic() < deadline:
            consumer.poll(0.05)
        assert _fetches(stats) >= 1, "no fetch was sent in 30 s"
        sent = time.monotonic()
        producer.produce(topic, b"x", partition=0)
        producer.flush(10)
        got = None
        while got is None and time.monotonic() - sent < 30:
            got = consumer.poll(0.05)
        waited = time.monotonic() - sent
    finally:
        consumer.close()
    assert got is not None and not got.error()
    assert waited < 5.0  # not the 20 s wait's end: Kafka answered when the data came
