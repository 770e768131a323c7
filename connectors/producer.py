"""An acknowledged async Kafka producer: `await send(...)` returns only once the broker has
the record (idempotent producer, acks=all), or raises `BrokerUnavailable`.

librdkafka does the batching and retrying in its own threads; a poll thread of ours serves its
delivery reports, and each report resolves the asyncio future of its record through
`loop.call_soon_threadsafe`. `send` waits at most `ack_timeout` seconds. A timeout does not
withdraw the record: librdkafka keeps trying until `message.timeout.ms`, so a record reported
as unavailable may still land later (at-least-once; the sender retries, dedupe absorbs it).
`on_late_ack` hears of such records.

Failure means `BrokerUnavailable`: the caller answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from streams.errors import BrokerUnavailable
from streams.topics import Topic

DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 2,
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


class AckedProducer:
    """Async front of a `confluent_kafka.Producer`. Call `start()` inside a running event loop,
    then `send()` from that loop; `close()` flushes and stops the poll thread."""

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
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.fatal: str | None = None

    def start(self) -> None:
        """Create the client and the poll thread; the running loop receives the acks."""
        self._loop = asyncio.get_running_loop()
        try:
            self._producer = Producer({**self._config, "error_cb": self._on_error})
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot create the Kafka producer: {exc}") from exc
        self._running.set()
        self._thread = threading.Thread(target=self._poll, name="acked-producer-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        producer = self._producer
        assert producer is not None
        while self._running.is_set():
            producer.poll(0.05)

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
        if producer is None or loop is None or not self._running.is_set():
            raise BrokerUnavailable("the producer is not running")
        if self.fatal:
            raise BrokerUnavailable(f"the producer hit a fatal error: {self.fatal}")
        future: asyncio.Future[Ack] = loop.create_future()

        def settle(err: KafkaError | None, msg: Message) -> None:
            if future.done():  # we already answered 503; the record made it after all
                if err is None and on_late_ack is not None:
                    on_late_ack()
                return
            if err is not None:
                future.set_exception(BrokerUnavailable(f"Kafka refused the record: {err.str()}"))
            else:
                future.set_result(Ack(msg.topic() or "", msg.partition() or 0, msg.offset() or 0))

        def on_delivery(err: KafkaError | None, msg: Message) -> None:  # poll thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, err, msg)

        try:
            producer.produce(topic.name, value, key, headers=headers, on_delivery=on_delivery)
        except BufferError as exc:
            raise BrokerUnavailable("the producer queue is full (Kafka is not keeping up)") from exc
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot produce: {exc}") from exc
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.ack_timeout)
        except TimeoutError:
            future.cancel()  # settle() then sees done() and reports a late ack instead
            raise BrokerUnavailable(f"no ack from Kafka within {self.ack_timeout}s") from None

    def close(self, timeout: float = 5.0) -> int:
        """Flush what is queued (up to `timeout` s), stop polling; returns records unflushed."""
        producer = self._producer
        if producer is None:
            return 0
        deadline = time.monotonic() + timeout
        remaining = producer.flush(timeout)
        self._running.clear()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        self._producer = None
        return int(remaining)
