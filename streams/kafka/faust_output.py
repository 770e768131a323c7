"""Where the worker's agents write: records produced with librdkafka, beside Faust.

The agents stay Faust agents (Faust reads, acks, commits, keeps the tables and their
changelogs); what they emit (domain events, conflicts, dead letters) goes through a
confluent-kafka producer instead of Faust's `Topic.send`. Profiled at 1,000 changes/s
(py-spy on the worker, Apache Kafka, six partitions), Faust's send path and aiokafka's
sender, which builds and writes produce requests on the worker's event loop, were about a
quarter of the worker's main thread, the thread that fell behind; librdkafka batches and
writes on its own threads, and a produce is a few microseconds of the loop.

The guarantees stay the worker's (`streams.kafka.faust_transport._Consumer._commit_tps`):
before each commit every output is flushed, so no input is committed before what it
produced was written; a record the broker refuses is remembered (`SendFailures`) and the
worker stops without committing again. The producer is idempotent with acks=all, so a
retried batch is neither duplicated nor reordered within a partition.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.kafka.connection import Kafka, client_config
from streams.kafka.faust_sends import SendFailures

Headers = list[tuple[str, bytes]]

# librdkafka's linger: it batches on its own thread, so a short one costs the loop nothing
LINGER_MS = 2
# a full local queue (the broker is slower than the agents): wait for room this long per try
QUEUE_FULL_WAIT_S = 0.05


class Output(Protocol):
    """What an agent hands a record to."""

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None: ...


class DirectOutput:
    """An idempotent confluent-kafka producer whose failures stop the worker."""

    def __init__(self, kafka: Kafka, failures: SendFailures, client_id: str) -> None:
        self._failures = failures
        self._producer = Producer(client_config(kafka, {
            "client.id": client_id,
            "enable.idempotence": True, "acks": "all", "linger.ms": LINGER_MS,
            "batch.size": 256 * 1024, "log.connection.close": False,
            # keys land where Faust's producer (aiokafka, Java's murmur2) put them: an
            # aggregate's events stay on one partition across the upgrade
            "partitioner": "murmur2_random",
        }))  # fmt: skip

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """Queue one record (a KafkaException at once when librdkafka refuses it outright:
        the agent then stops without acking its input)."""
        while True:
            try:
                self._producer.produce(
                    topic, value, key, headers=cast(Any, headers), on_delivery=self._delivered
                )
                break
            except BufferError:  # the local queue is full: the broker sets the pace
                self._producer.poll(QUEUE_FULL_WAIT_S)
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.refused(KafkaException(error))

    async def flush(self, timeout: float) -> bool:
        """True once every record queued so far is written or refused (refusals are in
        `SendFailures`); False when `timeout` passed first. Waits on the event loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._producer.flush(0) > 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.001)
        return True

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
