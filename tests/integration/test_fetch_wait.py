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

PARTITIONS = 3


def _topic(bootstrap: str) -> str:
    name = f"fetch-wait-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(bootstrap))
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)
    return name


def _consumer(
    bootstrap: str, topic: str, stats: list[dict[str, Any]], wait: int | None = None
) -> Consumer:
    consumer = Consumer(consumer_config(bootstrap, {
        "group.id": f"idle-{uuid.uuid4()}", "enable.auto.commit": False,
        "statistics.interval.ms": 500, "stats_cb": lambda text: stats.append(json.loads(text)),
    }, fetch_wait_ms=wait))  # fmt: skip
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(PARTITIONS)])
    return consumer


def _poll_for(consumer: Consumer, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        consumer.poll(0.1)


def test_an_idle_consumer_asks_the_broker_a_few_times_a_second(kafka_bootstrap: str) -> None:
    stats: list[dict[str, Any]] = []
    consumer = _consumer(kafka_bootstrap, _topic(kafka_bootstrap), stats)
    try:
        _poll_for(consumer, 3.0)
    finally:
        consumer.close()
    assert stats, "librdkafka sent no statistics"
    fetches = max(sum(b["req"].get("Fetch", 0) for b in s["brokers"].values()) for s in stats)
    assert fetches <= 12  # 3 s at 500 ms, and the first; at 5 ms it was ~600


def test_a_record_reaches_a_waiting_consumer_long_before_the_wait_ends(
    kafka_bootstrap: str,
) -> None:
    topic = _topic(kafka_bootstrap)
    consumer = _consumer(kafka_bootstrap, topic, [], wait=2000)
    producer = Producer(client_config(kafka_bootstrap, {"linger.ms": 0}))
    try:
        # past the first fetch, which left out the partitions whose offsets came later
        _poll_for(consumer, 2.5)
        sent = time.monotonic()
        producer.produce(topic, b"x", partition=PARTITIONS - 1)
        producer.flush(10)
        got = None
        while got is None and time.monotonic() - sent < 10:
            got = consumer.poll(0.05)
        waited = time.monotonic() - sent
    finally:
        consumer.close()
    assert got is not None and not got.error()
    assert waited < 1.0  # inside the 2 s wait: Kafka answered when the data came
