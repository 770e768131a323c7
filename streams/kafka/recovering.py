"""Ask Kafka again while it recovers: a leader being elected for a partition just created or
whose broker died, a group coordinator moving. Anything else is raised at once."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

T = TypeVar("T")

# Errors that say "not yet", beside those librdkafka itself marks retriable.
RECOVERING = frozenset({
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
    KafkaError._UNKNOWN_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError._DESTROY_BROKER,  # the handle of a broker that died, dropped meanwhile
})  # fmt: skip


def recovering(error: KafkaError) -> bool:
    return bool(error.retriable()) or error.code() in RECOVERING


def asked_again(
    ask: Callable[[], T],
    seconds: float = 30.0,
    pause: float = 0.25,
    between: Callable[[], object] | None = None,
) -> T:
    """`ask()`, asked again for up to `seconds` while the error it raises is one of Kafka
    recovering, calling `between()` (say, a metadata refresh) before each new ask; the last
    error is raised after that."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return ask()
        except KafkaException as exc:
            if not recovering(exc.args[0]) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            if between is not None:
                with contextlib.suppress(KafkaException):
                    between()


def watermarks(consumer: Consumer, tp: TopicPartition, seconds: float = 30.0) -> tuple[int, int]:
    """`tp`'s low and high offsets, asked again while its leader is elected (a topic just
    created, a broker that died)."""
    low, high = asked_again(
        lambda: consumer.get_watermark_offsets(tp, 10),
        seconds,
        # a client whose metadata lost the partition (its leader died) asks for it afresh
        between=lambda: consumer.list_topics(tp.topic, timeout=5),
    )
    return int(low), int(high)


def electing(client: Any, names: Iterable[str], timeout: float) -> list[str]:
    """Of `names`, the topics whose metadata does not show a leader for every partition yet
    (absent, erroring, unanswered or electing). Each is asked for by name, which also puts it
    in the client's metadata cache (a producer's first send then waits for nothing)."""
    pending = []
    for name in names:
        try:
            topic = client.list_topics(name, timeout=timeout).topics.get(name)
        except KafkaException:
            topic = None
        if (
            topic is None
            or topic.error is not None
            or any(p.leader < 0 for p in topic.partitions.values())
        ):
            pending.append(name)
    return pending


def wait_for_leaders(client: Any, names: list[str], timeout: float) -> list[str]:
    """Until every partition of `names` has a leader, for at most `timeout` seconds (a
    producer or admin client); the topics still electing then (empty: every one is led)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = electing(client, names, max(0.5, deadline - time.monotonic()))
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.1)
