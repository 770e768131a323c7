"""The sink runtime at its edges with librdkafka, without a broker: its rebalance callbacks
never let an exception out (one raised inside a librdkafka callback breaks the consume()
that ran it), and Kafka losing data is recognised (connectors.sinks.tracker.behind, and
offsets going back within an assignment)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.runtime import SinkRuntime
from connectors.sinks.settings import SinkSettings
from connectors.sinks.tracker import behind
from streams.errors import BrokerUnavailable
from streams.kafka.codec import TopicCodecs
from streams.topics import DELIVER, Destination

TOPIC = DELIVER[Destination.SLACK].deliver.name


class _Connector:
    destination = Destination.SLACK


class _Unreadable:
    """A ledger reader whose broker does not answer."""

    def catch_up(self) -> None:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "watermarks: timed out"))


@dataclass
class _Msg:
    offset_: int

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.offset_


@pytest.fixture
def runtime(codecs: TopicCodecs) -> SinkRuntime:
    return SinkRuntime(
        _Connector(),  # type: ignore[arg-type]
        bootstrap="127.0.0.1:1", codecs=codecs, credentials=MemoryCredentialStore(),
        settings=SinkSettings(call_timeout_s=1.0),
    )  # fmt: skip


def test_a_revoke_once_the_event_loop_is_closed_raises_nothing(runtime: SinkRuntime) -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    runtime._loop = loop
    runtime._on_revoke(None, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]


def test_a_revoke_forgets_the_partitions_even_when_handing_over_fails(
    runtime: SinkRuntime,
) -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    runtime._loop = loop
    runtime.tracker.add((TOPIC, 0), 7)
    runtime._on_revoke(None, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]
    assert runtime.tracker.read_to((TOPIC, 0)) == 0


def test_an_assignment_while_the_ledger_cannot_be_read_raises_nothing(
    runtime: SinkRuntime,
) -> None:
    runtime._reader = _Unreadable()  # type: ignore[assignment]
    runtime._on_assign(None, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]


@dataclass
class _Answer:
    """One partition of a commit answer (TopicPartition's `error` cannot be set)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


def test_a_commit_answer_confirms_only_the_partitions_kafka_stored(runtime: SinkRuntime) -> None:
    refused = _Answer(TOPIC, 1, 9, KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    runtime._on_commit(None, [_Answer(TOPIC, 0, 5), refused])  # type: ignore[list-item]
    assert runtime.tracker.confirmed == {(TOPIC, 0): 5}


class _Group:
    """A consumer whose group has `committed` on every partition (-1001: nothing) and whose
    partitions' logs end at `end` (0: a broker that restarted empty)."""

    def __init__(self, committed: int, end: int = 0) -> None:
        self.offset, self.end = committed, end

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[_Answer]:
        return [_Answer(tp.topic, tp.partition, self.offset) for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, self.end


async def test_an_offset_going_back_where_the_group_lost_its_commit_stops_the_sink(
    runtime: SinkRuntime,
) -> None:
    runtime.consumer = _Group(committed=-1001)  # type: ignore[assignment]
    runtime.tracker.confirm((TOPIC, 0), 41)
    runtime.tracker.add((TOPIC, 0), 40)
    await runtime._accept(_Msg(3))  # type: ignore[arg-type]
    with pytest.raises(BrokerUnavailable, match="Kafka lost data"):
        runtime._raise_failure()
    assert runtime.tracker.read_to((TOPIC, 0)) == 41  # the record was not taken


def test_a_group_commit_gone_after_kafka_confirmed_one_is_a_loss() -> None:
    assert behind({(TOPIC, 2): 57}, {(TOPIC, 2): -1001}) == [
        f"{TOPIC}[2] has nothing committed after Kafka confirmed 57"
    ]


def test_a_group_commit_below_the_confirmed_one_is_a_loss() -> None:
    assert behind({(TOPIC, 2): 57}, {(TOPIC, 2): 12}) == [
        f"{TOPIC}[2] has 12 committed after Kafka confirmed 57"
    ]


def test_a_commit_below_ours_over_a_log_that_still_holds_the_records_is_no_loss() -> None:
    # an asynchronous commit retried to a new coordinator landed after a later one
    assert behind({(TOPIC, 1): 7}, {(TOPIC, 1): 6}, ends={(TOPIC, 1): 9}) == []


def test_a_commit_below_ours_over_a_log_that_ends_before_it_is_a_loss() -> None:
    assert behind({(TOPIC, 1): 7}, {(TOPIC, 1): -1001}, ends={(TOPIC, 1): 0}) == [
        f"{TOPIC}[1] has nothing committed after Kafka confirmed 7, the log ends at 0"
    ]


async def test_a_rewound_commit_during_a_coordinator_move_does_not_stop_the_sink(
    runtime: SinkRuntime,
) -> None:
    runtime.consumer = _Group(committed=6, end=9)  # type: ignore[assignment]
    runtime.tracker.confirm((TOPIC, 0), 7)
    assert runtime._lost_commits() == []


def test_a_group_commit_at_or_past_the_confirmed_one_is_no_loss() -> None:
    confirmed: dict[Any, int] = {(TOPIC, 0): 57, (TOPIC, 1): 3}
    assert behind(confirmed, {(TOPIC, 0): 57, (TOPIC, 1): 90}) == []
