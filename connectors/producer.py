"""An acknowledged async Kafka producer: `await send(...)` returns only once the broker has
the record (idempotent producer, acks=all), or raises `BrokerUnavailable`.

librdkafka does the batching and retrying in its own threads. Its delivery reports are served
by a pump task on the event loop (`poll(0)` while records are in flight, an idle poll every
second otherwise), so each report resolves its record's future on the loop thread itself: no
GIL ping-pong with a poll thread, which measured slower. `send` waits at most `ack_timeout`
seconds. A timeout does not
withdraw the record: librdkafka keeps trying until `message.timeout.ms`, so a record reported
as unavailable may still land later (at-least-once; the sender retries, dedupe absorbs it).
`on_late_ack` hears of such records.

Failure means `BrokerUnavailable`: the caller answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from streams.errors import BrokerUnavailable
from streams.topics import Topic

DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 0,  # each HTTP request waits for its ack: latency first; batches still form
    "message.timeout.ms": 60_000,  # librdkafka's own deadline, after which it gives up
    "socket.keepalive.enable": True,
}


class Ack:
    """Where the broker stored a record."""

    __slots__ = ("offset", "partition", "topic")

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset

    def __repr__(self) -> str:
        return f"Ack({self.topic}[{self.partition}]@{self.offset})"


def _expire(future: asyncio.Future[Ack], timeout: float) -> None:
    if not future.done():
        future.set_exception(BrokerUnavailable(f"no ack from Kafka within {timeout}s"))


class AckedProducer:
    """Async front of a `confluent_kafka.Producer`. Call `start()` inside a running event loop,
    then `send()` from that loop; `await close()` drains and flushes."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        ack_timeout: float = 5.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.ack_timeout = ack_timeout
        self._config = {**DEFAULTS, **(config or {}), "bootstrap.servers": bootstrap_servers}
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._in_flight = 0
        self.fatal: str | None = None

    @property
    def _running(self) -> bool:
        return self._pump_task is not None and not self._pump_task.done()

    def start(self) -> None:
        """Create the client and its pump task on the running loop (which receives the acks)."""
        self._loop = asyncio.get_running_loop()
        try:
            self._producer = Producer({**self._config, "error_cb": self._on_error})
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot create the Kafka producer: {exc}") from exc
        self._pump_task = self._loop.create_task(self._pump(), name="acked-producer-pump")

    async def _pump(self) -> None:
        """Serve delivery reports: eagerly while records are in flight, lazily when idle."""
        producer = self._producer
        assert producer is not None
        while True:
            served = producer.poll(0)
            if served:
                await asyncio.sleep(0)
            elif self._in_flight:
                await asyncio.sleep(0.0005)
            else:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():  # e.g. the idempotent producer lost its sequence: stop accepting
            self.fatal = error.str()

    async def send(
        self,
        topic: Topic,
        *,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        on_late_ack: Callable[[], None] | None = None,
    ) -> Ack:
        """Produce one record and wait for the broker's acknowledgement.

        BrokerUnavailable when the client is closed or broken, its queue is full, the broker
        reports an error, or no ack arrives within `ack_timeout` seconds."""
        producer, loop = self._producer, self._loop
        if producer is None or loop is None or not self._running:
            raise BrokerUnavailable("the producer is not running")
        if self.fatal:
            raise BrokerUnavailable(f"the producer hit a fatal error: {self.fatal}")
        future: asyncio.Future[Ack] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:  # inside poll()
            self._in_flight -= 1
            if future.done():  # we already answered 503; the record made it after all
                if err is None and on_late_ack is not None:
                    on_late_ack()
                return
            if err is not None:
                future.set_exception(BrokerUnavailable(f"Kafka refused the record: {err.str()}"))
            else:
                future.set_result(Ack(msg.topic() or "", msg.partition() or 0, msg.offset() or 0))

        try:
            producer.produce(topic.name, value, key, headers=headers, on_delivery=on_delivery)
        except BufferError as exc:
            raise BrokerUnavailable("the producer queue is full (Kafka is not keeping up)") from exc
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot produce: {exc}") from exc
        self._in_flight += 1
        self._wake.set()
        # on expiry on_delivery finds the future done and reports a late ack instead
        timer = loop.call_later(self.ack_timeout, _expire, future, self.ack_timeout)
        try:
            return await future
        finally:
            timer.cancel()

    async def close(self, timeout: float = 5.0) -> int:
        """Wait up to `timeout` s for records in flight, stop the pump, flush what is left;
        returns how many records were still unacknowledged."""
        producer = self._producer
        if producer is None:
            return 0
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        remaining = int(producer.flush(max(0.0, deadline - time.monotonic())))
        if remaining:  # never acknowledged to anyone (they got 503): drop, do not hang
            producer.purge()
            producer.poll(0)
        producer.close()  # stops librdkafka's threads now, not whenever GC gets to it
        self._producer = None
        return remaining
