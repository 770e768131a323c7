"""The audit asks a group's committed offsets again while its coordinator moves (a broker
of three was killed in the fault suite: NOT_COORDINATOR ended the audit)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from streams.audit import _committed, _end
from streams.topics import EVENTS


class MovingCoordinator:
    def __init__(self, failures: int, code: int = KafkaError.NOT_COORDINATOR) -> None:
        self.failures, self.code = failures, code

    def committed(self, parts: list[TopicPartition], timeout: float) -> Any:
        if self.failures:
            self.failures -= 1
            raise KafkaException(KafkaError(self.code))
        return [TopicPartition(p.topic, p.partition, 42) for p in parts]


def test_committed_offsets_are_asked_again_while_the_coordinator_moves() -> None:
    parts = [TopicPartition(EVENTS.name, 0)]
    assert [tp.offset for tp in _committed(MovingCoordinator(2), parts)] == [42]  # type: ignore[arg-type]


def test_another_error_is_not_retried() -> None:
    probe = MovingCoordinator(1, KafkaError.GROUP_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        _committed(probe, [TopicPartition(EVENTS.name, 0)])  # type: ignore[arg-type]


class MovingLeader:
    """A consumer whose metadata does not yet know a partition whose leader just died."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        if self.failures:
            self.failures -= 1
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        return 0, 17

    def list_topics(self, topic: str, timeout: float) -> None:
        return None


def test_end_offsets_are_asked_again_while_a_partition_leader_is_unknown() -> None:
    assert _end(MovingLeader(2), TopicPartition(EVENTS.name, 0)) == 17  # type: ignore[arg-type]


class LostMetadata(MovingLeader):
    """A consumer that knows the partition again only once it asked for metadata afresh."""

    def __init__(self) -> None:
        super().__init__(failures=10**9)

    def list_topics(self, topic: str, timeout: float) -> None:
        self.failures = 0


def test_a_partition_the_client_forgot_is_found_by_asking_for_metadata_again() -> None:
    assert _end(LostMetadata(), TopicPartition(EVENTS.name, 0)) == 17  # type: ignore[arg-type]
