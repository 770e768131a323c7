"""Read Kafka partitions from their beginning (or given offsets) to the end they have now.

How a process rebuilds state that lives in a topic before it starts work: the routing state
from the state rows' changelog (`streams.routing.state_reader`) and the routed event ids from
the dedupe markers (`streams.routing.engine`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from streams.errors import BrokerUnavailable
from streams.kafka.connection import Kafka, client_config
from streams.kafka.recovering import asked_again, watermarks
from streams.topics import Topic

Partition = tuple[str, int]  # (topic, partition)


def read_to_end(
    consumer: Consumer,
    partitions: Iterable[Partition],
    apply: Callable[[Message], None],
    *,
    timeout: float,
    starts: Mapping[Partition, int] | None = None,
) -> set[Partition]:
    """Assign `partitions` to `consumer` from their beginning and pass every record to
    `apply` until each has been read up to the end offset it had when this was called, or
    until `timeout` seconds. Returns the partitions not read to their end (empty: done).

    The consumer stays assigned, positioned after what was read, so the caller can go on
    tailing. `starts`: offsets to read some partitions from instead of their beginning.
    Raises BrokerUnavailable when Kafka cannot say where the partitions end."""
    try:
        ends = {
            (topic, p): watermarks(consumer, TopicPartition(topic, p)) for topic, p in partitions
        }
    except KafkaException as exc:
        raise BrokerUnavailable(f"end offsets unknown: {exc}; is the broker up?") from exc
    starts = starts or {}
    consumer.assign(
        [TopicPartition(topic, p, starts.get((topic, p), OFFSET_BEGINNING)) for topic, p in ends]
    )
    pending = {tp for tp, (low, high) in ends.items() if high > max(low, starts.get(tp, low))}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 0.2):
            if not msg.error():
                apply(msg)
        positions = consumer.position([TopicPartition(topic, p) for topic, p in pending])
        pending = {
            (tp.topic, tp.partition)
            for tp in positions
            if tp.offset < ends[(tp.topic, tp.partition)][1]
        }
    return pending


def read_topic(
    bootstrap: Kafka, topic: Topic, apply: Callable[[Message], None], *, timeout: float = 30.0
) -> None:
    """Pass every record `topic` holds now to `apply`, with a throwaway consumer that joins
    no group and commits nothing (dead-letter listings, `deliveries show`, tests, benches).
    BrokerUnavailable when the topic is not read to its end within `timeout`."""
    consumer = Consumer(client_config(bootstrap, {
        "group.id": f"wedsync-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "fetch.wait.max.ms": 10, "log.connection.close": False,
    }))  # fmt: skip
    try:
        parts = [(topic.name, p) for p in range(topic.partitions)]
        missing = read_to_end(consumer, parts, apply, timeout=timeout)
    finally:
        consumer.close()
    if missing:
        raise BrokerUnavailable(f"{topic.name}: not read to its end in {timeout:.0f} s")


def wait_for_group(consumer: Consumer, topic: str, partitions: int, *, timeout: float) -> set[int]:
    """Wait until the consumer group of `consumer` (its `group.id`; the consumer itself
    only reads the group's commits, it does not join) has committed, on every partition of
    `topic`, at least the end offset that partition had when this was called: everything
    already in the topic has been processed by the group. Gives up after `timeout` seconds.
    Returns the partitions still behind (empty: caught up)."""
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        ends = {tp.partition: watermarks(consumer, tp) for tp in parts}
    except KafkaException as exc:
        raise BrokerUnavailable(f"{topic}: end offsets unknown ({exc}); broker up?") from exc
    behind = {p for p, (low, high) in ends.items() if high > low}
    deadline = time.monotonic() + timeout
    while behind:
        committed = _committed(consumer, [TopicPartition(topic, p) for p in behind])
        behind = {tp.partition for tp in committed if tp.offset < ends[tp.partition][1]}
        if not behind or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return behind


def _committed(consumer: Consumer, parts: list[TopicPartition]) -> list[TopicPartition]:
    return list(asked_again(lambda: consumer.committed(parts, timeout=10)))
