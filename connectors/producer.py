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

A fatal error of the idempotent producer (librdkafka gives up its producer id, e.g. after the
broker lost its state) is not the end: the records in flight fail (their callers answered 503
and retry), a fresh client takes over, and `fatal` is None again. At most `MAX_RENEWALS`
renewals within `RENEWAL_WINDOW_S`: beyond that `fatal` stays set (health answers 503, every
send raises) and a log line says to check the brokers and restart.

`OutcomeProducer` is the same recovery for the sinks, whose records gate offset commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from streams.errors import BrokerUnavailable
from streams.kafka.connection import Kafka, client_config
from streams.kafka.recovering import wait_for_leaders
from streams.topics import Topic

log = logging.getLogger(__name__)

MAX_RENEWALS = 3  # fresh clients after fatal errors ...
RENEWAL_WINDOW_S = 600.0  # ... within this window; one more means a fresh client does not help

DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 1,  # each HTTP request waits for its ack; 1 ms lets concurrent ones share a batch
    # small produce requests go out at once: with Nagle on, one waits for the previous one's
    # TCP ack (bench ingest on Apache Kafka: p50 ack 2.6 vs 3.0 ms, p99 7.9 vs 18 ms)
    "socket.nagle.disable": True,
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


def fatal_reason(error: KafkaError) -> str | None:
    """The text of `error` when it means the client is unusable: a fatal error of the
    idempotent producer, or an operation refused because one happened. Else None."""
    if error.fatal() or error.code() == KafkaError._FATAL:
        return str(error.str())
    return None


class Renewals:
    """How many fresh clients were made lately: `allow()` is False once `limit` were made
    within the last `window_s` seconds (a broker that keeps failing every new client)."""

    def __init__(
        self, limit: int = MAX_RENEWALS, window_s: float = RENEWAL_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        now = self._clock()
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def exhausted(self, reason: str) -> str:
        """What to tell the operator when `allow()` said no."""
        return (
            f"the Kafka producer hit a fatal error again after {self.limit} fresh clients "
            f"within {self.window_s:.0f} s (last: {reason}); a new client does not help: check "
            "the brokers (their logs; whether they kept their data) and restart this process"
        )


def _retire(producer: Producer) -> None:
    """Drop what an unusable client still holds and close it, off the caller's thread (the
    reports of what it purged are served here and ignored; close never waits on a broker)."""

    def close() -> None:
        with contextlib.suppress(Exception):
            producer.purge()
            producer.poll(0)
            producer.close()

    threading.Thread(target=close, name="producer-retire", daemon=True).start()


class AckedProducer:
    """Async front of a `confluent_kafka.Producer`. Call `start()` inside a running event loop,
    then `send()` from that loop; `await close()` drains and flushes."""

    def __init__(
        self,
        bootstrap_servers: Kafka,
        *,
        ack_timeout: float = 5.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.ack_timeout = ack_timeout
        self._config = client_config(bootstrap_servers, {**DEFAULTS, **(config or {})})
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._renewals = Renewals()
        self.fatal: str | None = None

    @property
    def _running(self) -> bool:
        return self._pump_task is not None and not self._pump_task.done()

    def start(self) -> None:
        """Create the client and its pump task on the running loop (which receives the acks)."""
        self._loop = asyncio.get_running_loop()
        self._producer = self._client()
        self._pump_task = self._loop.create_task(self._pump(), name="acked-producer-pump")

    async def warm_up(self, topics: list[str], timeout: float = 30.0) -> None:
        """Before serving: connect and learn a leader for every partition of `topics`, so
        the first request is not the one that waits for it (a fresh cluster under load took
        over the 5 s ack timeout). Bounded; a warning, not an error, after `timeout`."""
        producer = self._producer
        assert producer is not None, "start() first"
        if electing := await asyncio.to_thread(wait_for_leaders, producer, topics, timeout):
            log.warning("producer: no leader known yet for %s after %.0f s",
                        ", ".join(electing), timeout)  # fmt: skip

    def _client(self) -> Producer:
        try:
            return Producer({**self._config, "error_cb": self._on_error})
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot create the Kafka producer: {exc}") from exc

    async def _pump(self) -> None:
        """Serve delivery reports: eagerly while records are in flight, lazily when idle;
        replace the client after a fatal error."""
        while True:
            producer = self._producer
            if producer is None:  # failed for good (see _renew): sends raise
                return
            try:
                served = producer.poll(0)
            except KafkaException as exc:  # a fatal error surfaces here once
                self._on_error(exc.args[0])
                served = 0
            if self.fatal is not None and producer is self._producer:
                self._renew()
            if served:
                await asyncio.sleep(0)
            elif self._in_flight:
                await asyncio.sleep(0.0005)
            else:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)

    def _on_error(self, error: KafkaError) -> None:
        reason = fatal_reason(error)  # e.g. the idempotent producer lost its sequence
        if reason is not None and self.fatal is None:
            self.fatal = reason
            self._wake.set()

    def _renew(self) -> None:
        """After a fatal error: fail what is in flight (its callers answered 503 and retry)
        and go on with a fresh client; or, past the renewal limit, stay failed."""
        old, reason = self._producer, self.fatal or ""
        if old is None or not self._renewals.allow():
            if old is not None:
                log.error("%s", self._renewals.exhausted(reason))
                self._producer = None  # sends raise from now on; close() has nothing to do
                _retire(old)
            return
        with contextlib.suppress(KafkaException):
            old.purge()
            old.poll(0)  # the purged records' futures fail now: 503, their senders retry
        try:
            self._producer = self._client()
        except BrokerUnavailable:
            log.exception("no fresh Kafka producer after a fatal error")
            self._producer = None
            return
        finally:
            _retire(old)
        self.fatal = None
        log.warning("the Kafka producer hit a fatal error (%s); a fresh one took over", reason)

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
        if self.fatal:
            raise BrokerUnavailable(f"the producer hit a fatal error: {self.fatal}")
        if producer is None or loop is None or not self._running:
            raise BrokerUnavailable("the producer is not running")
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
            self._on_error(exc.args[0])
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


@dataclass(slots=True)
class _Held:
    topic: str
    value: bytes
    key: bytes | None
    headers: Any
    on_acked: Callable[[], None] | None


class OutcomeProducer:
    """The sinks' producer, for records whose acknowledgement gates an offset commit (ledger
    results, retries, dead letters): idempotent, acks=all, used from one thread (delivery
    reports run inside its `poll` there).

    Every record is held until Kafka acknowledges it, then its `on_acked` runs; `len()` is
    how many are held. A delivery error goes to `on_failure` (the caller stops without
    committing what it concerns), except a fatal one: librdkafka gave up the idempotent
    producer id (the broker lost the producer's state, as when it lost data) and the client
    is unusable. Then `fatal` says why; records produced meanwhile are held, nothing is
    dropped; `renew()` puts a fresh client in and produces every held record again, in order
    (at-least-once: one the old client did store may be stored twice; the ledger folds
    repeats). `renew()` raises BrokerUnavailable, with what to do, once renewals keep failing
    (`Renewals`)."""

    def __init__(
        self, config: dict[str, Any], on_failure: Callable[[str], None], *,
        renewals: Renewals | None = None,
    ) -> None:  # fmt: skip
        self._config = config
        self._on_failure = on_failure
        self._renewals = renewals or Renewals()
        self._held: dict[int, _Held] = {}
        self._seq = 0
        self._generation = 0
        self.renewed = 0
        self.fatal: str | None = None
        self.client = self._client()

    def __len__(self) -> int:
        return len(self._held)

    def _client(self) -> Producer:
        generation = self._generation

        def on_error(error: KafkaError) -> None:  # inside poll; never raises
            if generation == self._generation:
                self._client_error(error)

        return Producer({**self._config, "error_cb": on_error})

    def produce(
        self, topic: str, value: bytes, key: bytes | None, headers: Any = None,
        on_acked: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """Hold the record until Kafka acknowledges it (then `on_acked()`). Raises
        KafkaException only for a record Kafka can never take (e.g. too large)."""
        self._seq += 1
        self._held[self._seq] = _Held(topic, value, key, headers, on_acked)
        self._send(self._seq)

    def _send(self, seq: int) -> None:
        held, generation = self._held[seq], self._generation

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self._delivered(seq, generation, err)

        while self.fatal is None:
            try:
                self.client.produce(held.topic, held.value, held.key, headers=held.headers,
                                    on_delivery=delivered)  # fmt: skip
                return  # its report is served by the owner's next `poll`, not per record
            except BufferError:
                self.poll(0.05)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if fatal_reason(error) is None:
                    del self._held[seq]
                    raise
                self._client_error(error)

    def _delivered(self, seq: int, generation: int, err: KafkaError | None) -> None:
        """A delivery report (inside poll); never raises."""
        held = self._held.get(seq) if generation == self._generation else None
        if held is None:  # an earlier client's report: renew() produced it again
            return
        if err is None:
            del self._held[seq]
            if held.on_acked is not None:
                try:
                    held.on_acked()
                except Exception:
                    log.exception("acknowledgement callback failed")
        elif fatal_reason(err) is not None:
            self._client_error(err)
        elif err.code() not in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            del self._held[seq]  # refused for good: its consumed record stays uncommitted
            self._on_failure(
                f"{held.topic}: a ledger, retry or dead-letter record was not stored: {err.str()}"
            )

    def _client_error(self, error: KafkaError) -> None:
        reason = fatal_reason(error)
        if reason is not None and self.fatal is None:
            self.fatal = reason
            log.warning("the Kafka producer hit a fatal error: %s", reason)

    def poll(self, timeout: float = 0) -> None:
        """Serve delivery reports (a fatal error surfaces here too: `fatal`)."""
        try:
            self.client.poll(timeout)
        except KafkaException as exc:
            self._client_error(exc.args[0])

    def renew(self) -> int:
        """After a fatal error: a fresh client, and every held record produced again;
        returns how many. BrokerUnavailable when renewals keep failing (`Renewals`)."""
        reason = self.fatal or "no fatal error"
        if not self._renewals.allow():
            raise BrokerUnavailable(self._renewals.exhausted(reason))
        old = self.client
        with contextlib.suppress(KafkaException):
            old.purge()
            old.poll(0)  # reports of what it stored (done) and purged (held, sent again)
        self._generation += 1
        _retire(old)
        self.fatal = None
        self.client = self._client()
        self.renewed += 1
        again = sorted(self._held)
        for seq in again:
            self._send(seq)
        log.warning("a fresh Kafka producer took over after a fatal error (%s) and produced "
                    "%d unacknowledged records again", reason, len(again))  # fmt: skip
        return len(again)

    def close(self) -> int:
        """Drop what is still held (never acknowledged: its consumed records stay
        uncommitted) and close; returns how many were dropped."""
        dropped = len(self._held)
        self._held.clear()
        self._generation += 1
        client = self.client
        with contextlib.suppress(KafkaException):
            client.purge()
            client.poll(0)
        with contextlib.suppress(Exception):
            client.close()
        return dropped
