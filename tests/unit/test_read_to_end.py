"""Replaying a topic right after it was created: the leader is still being elected and Kafka
answers NOT_LEADER_FOR_PARTITION for its end offsets (the routing engine died on it at start,
loading its seen markers from a seen topic created a moment before)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from streams.errors import BrokerUnavailable
from streams.kafka.replay import read_to_end


class NewTopic:
    """A consumer of an empty topic whose leader is known after `electing` asks."""

    def __init__(self, electing: int, code: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
        self.electing, self.code = electing, code
        self.assigned: list[TopicPartition] = []

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        if self.electing:
            self.electing -= 1
            raise KafkaException(KafkaError(self.code))
        return 0, 0

    def list_topics(self, topic: str, timeout: float) -> None:
        return None

    def assign(self, parts: list[TopicPartition]) -> None:
        self.assigned = parts

    def consume(self, n: int, timeout: float) -> list[Any]:
        return []


def test_end_offsets_are_asked_again_while_a_new_topics_leader_is_elected() -> None:
    consumer = NewTopic(electing=3)
    pending = read_to_end(consumer, [("t", 0)], lambda m: None, timeout=5)  # type: ignore[arg-type]
    assert pending == set()
    assert [(tp.topic, tp.partition) for tp in consumer.assigned] == [("t", 0)]


def test_an_error_that_is_not_recovery_says_the_broker_is_unavailable() -> None:
    consumer = NewTopic(electing=1, code=KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(BrokerUnavailable, match="end offsets unknown"):
        read_to_end(consumer, [("t", 0)], lambda m: None, timeout=5)  # type: ignore[arg-type]
