"""Rebuilding state from a topic: read partitions to their end; wait for a group to catch up."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from streams import topics
from streams.kafka.admin import create_topics
from streams.kafka.replay import read_to_end, wait_for_group

pytestmark = pytest.mark.integration


def _topic_with(bootstrap: str, records: dict[int, int]) -> str:
    """A fresh 2-partition topic with `records[p]` records on partition p."""
    name = f"test.replay-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topics.Topic(name, None, key="k", fixed_partitions=2)])
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in records.items():
        for i in range(count):
            producer.produce(name, f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(10) == 0
    return name


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False})  # fmt: skip


def test_read_to_end_passes_every_record_and_reports_nothing_pending(kafka_bootstrap: str) -> None:
    name = _topic_with(kafka_bootstrap, {0: 3, 1: 0})
    seen: list[bytes] = []
    consumer = _consumer(kafka_bootstrap, "replay-reader")

    def apply(msg: Message) -> None:
        seen.append(msg.value() or b"")

    try:
        pending = read_to_end(consumer, [(name, 0), (name, 1)], apply, timeout=30)
    finally:
        consumer.close()
    assert pending == set()
    assert seen == [b"0-0", b"0-1", b"0-2"]


def test_wait_for_group_returns_the_partitions_the_group_has_not_committed(
    kafka_bootstrap: str,
) -> None:
    name = _topic_with(kafka_bootstrap, {0: 2, 1: 2})
    group = f"replay-group-{uuid.uuid4().hex[:8]}"
    member = _consumer(kafka_bootstrap, group)
    member.commit(offsets=[TopicPartition(name, 0, 2)], asynchronous=False)
    try:
        assert wait_for_group(member, name, 2, timeout=1) == {1}
        member.commit(offsets=[TopicPartition(name, 1, 2)], asynchronous=False)
        assert wait_for_group(member, name, 2, timeout=30) == set()
    finally:
        member.close()
