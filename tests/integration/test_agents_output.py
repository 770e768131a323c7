"""The agents' output (`streams.kafka.faust_output.DirectOutput`) on Apache Kafka: keys land on
the partitions Faust's producer put them on before (aiokafka, Java's murmur2), so an
aggregate's events stay on one partition across the upgrade; and a flush waits for every
record queued."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from streams.kafka.faust_output import DirectOutput
from streams.kafka.faust_sends import SendFailures
from streams.kafka.recovering import watermarks

pytestmark = pytest.mark.integration

PARTITIONS = 6


def _topic(bootstrap: str) -> str:
    name = f"output-check-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        future.result(timeout=30)
    return name


def _partitions_of(bootstrap: str, topic: str) -> dict[bytes, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{topic}"})
    try:
        tps = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
        ends = {tp.partition: watermarks(consumer, tp)[1] for tp in tps}
        consumer.assign(tps)
        found: dict[bytes, int] = {}
        while sum(ends.values()) > len(found):
            for msg in consumer.consume(500, 1.0):
                if msg.error() is None:
                    found[msg.key()] = msg.partition()
        return found
    finally:
        consumer.close()


async def test_keys_land_where_fausts_producer_put_them(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    output = DirectOutput(kafka_bootstrap, SendFailures(), client_id="output-check")
    keys = [f"wedding-{i}".encode() for i in range(60)] + [str(uuid.uuid4()).encode()]
    for key in keys:
        output.send(topic, key, b"v")
    assert await output.flush(30)
    faust_partition = DefaultPartitioner()
    everything = list(range(PARTITIONS))
    expected = {key: faust_partition(key, everything, everything) for key in keys}
    assert _partitions_of(kafka_bootstrap, topic) == expected
