"""The routing engine: wedsync.events -> per-destination deliver topics, in batches.

    wedsync.events --(confluent-kafka batch loop in the `wedsync route` process)-->
        wedsync.deliver.<kind>            one record per delivery (streams.logic.routing.route)
        <app id>-bookings-by-supplier     booking.changed, re-keyed by supplier (conflicts agent)
        <app id>-route-seen               routed event ids (dedupe across restarts)
        wedsync.events.dlq                events that do not decode or cannot be routed/encoded

Why not a Faust agent: Faust's per-event path (stream iteration, event/ack bookkeeping, one
`send` coroutine and future per output record) costs more than decoding, routing and encoding
the event together; a stock agent did 4-6k events/s where a plain confluent-kafka loop did
~180k/s (FACTS.md). Routing is the stage with the highest fan-out, so it runs as a
confluent-kafka batch loop in a process of its own (`streams.routing.process`, started and
supervised by the Faust worker, see `streams.routing.service`). Faust keeps the agents whose
state needs tables and changelog recovery (state, conflicts) and the app's lifecycle; the
engine reads the routing state from the state rows' changelog
(`streams.routing.state_reader`).

One batch: `poll` for the first record (blocks at most `idle_wait_s` when idle), then drain up
to `batch_size` already-fetched records without waiting; decode, dedupe, route and encode
every delivery of an event before producing any of it (a failure dead-letters the whole
event); hand the records to the producer WITHOUT waiting for acks. Each batch counts its
outstanding acks (delivery callbacks); `_complete` retires batches in order once all their
records are acked, and every `commit_interval_s` commits the retired offsets and writes the
seen markers. Offsets are committed only after the batch's deliveries are acked:
at-least-once. At most `max_inflight_batches` batches are unacknowledged (backpressure). On
revoke and stop: wait for every in-flight batch, then commit the acked offsets synchronously.
Only offsets of acked batches are ever committed (explicit offsets, never the consumer's
positions): after a failed produce the engine stops, and neither the revoke that closing
the consumer triggers nor anything else commits past the failed records.

State before event: an event from a database change carries `state_lsn`, the commit LSN of
the last transaction at or before its own that changed a state table (the CDC source stamps
it, so the same transaction counts); it is routed only once the routing state's watermark
has reached that LSN (every such change is folded in). Events after no recent state change
do not wait at all. A wait is bounded by `state_wait_s`; one that times out is counted and
logged, and the event is HELD, never routed against a state known to be behind it (that
routed a wedding's change to nobody when the worker's state agent started slower than the
routing process: the state had none of its vendors yet). Held means: the event's partition
goes back to the event (`seek`, nothing after it on that partition is routed, its offset is
not committed past it) and the next poll asks again; other partitions go on unless they are
behind too. So the consumer keeps polling (no `max.poll.interval.ms` expiry) and a state
that is late stalls, visibly, instead of misrouting silently.

Dedupe: an event id already routed within `dedupe_window_s` is skipped. The seen ids live in
one `SeenWindow` per assigned partition; routed ids are written (after their deliveries are
acked) to the seen topic, one marker record per partition per commit interval, on the same
partition number as the events, and read back when a partition is assigned, so a restart or
a rebalance does not forget what was routed. Residual duplicates: deliveries acked but the
process killed before the next marker was written (at most `commit_interval_s` of events).

Measured (`make bench`, bench/routing.py, embedded broker, 2 shared cores): the first design
(flush after every batch) spent half of each batch waiting for acks; pipelining the acks
raised the standalone engine from ~3.2k to ~4.5-5.6k events/s (3.5 deliveries/event).
Per event, in process: decode ~26 us, route ~55 us, encode ~52 us (fastavro unions dominate).
See the README for the latest figures and what limits latency on the embedded broker.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams import metrics, topics
from streams.errors import BrokerUnavailable, PoisonMessage
from streams.kafka.codec import AvroCodec, TopicCodecs
from streams.kafka.connection import Kafka, client_config, consumer_config
from streams.kafka.deadletter import dead_letter_headers, dead_letter_message
from streams.kafka.replay import read_to_end
from streams.logic.conflicts import booking_keys
from streams.logic.dedupe import SeenWindow
from streams.logic.routing import RoutingRules, route
from streams.logic.state import StateTables
from streams.topics import Destination

log = logging.getLogger(__name__)
STAGE = "route"


class RouteSettings(BaseSettings):
    """Tuning of the routing engine, from `WEDSYNC_ROUTE_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_ROUTE_", frozen=True, extra="ignore")

    batch_size: int = 5000
    dedupe_window_s: float = 15 * 60.0
    dedupe_max_entries: int = 1_000_000  # per partition
    idle_wait_s: float = 0.05
    # 10 ms: fewer, larger produce requests cost the broker less CPU, and on two shared cores
    # that shortens the tail more than the linger adds. Measured (bench/routing.py latency
    # phase, 1,000 events/s, one partition, interleaved runs), p99 to the output record /
    # to a consumer's read: 5 ms 40-49 / 55-67 ms; 10 ms 20-25 / 37-46 ms; 20 ms 21-25 /
    # 45-50 ms; 40 ms 17-23 / 62-64 ms.
    linger_ms: float = 10.0
    fetch_wait_max_ms: int | None = None  # unset: the connection's (KAFKA_FETCH_WAIT_MAX_MS)
    max_inflight_batches: int = 64
    commit_interval_s: float = 0.2
    state_wait_s: float = 2.0  # one wait for the state to reach an event's commit; then held
    # a calendar event's zone when neither the wedding, the calendar nor the integration
    # names one (IANA, e.g. Europe/London); unset: such an event is dead-lettered by the sink
    default_time_zone: str | None = None

    @field_validator("default_time_zone")
    @classmethod
    def _a_zone(cls, value: str | None) -> str | None:
        from streams.logic.times import known_zone

        if value is not None and known_zone(value) is None:
            raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/London")
        return value


class Unroutable(PoisonMessage):
    """Part of an event could not be routed (a recipient unknown to the state, content that
    cannot be built); the rest was. Replay the dead letter once the cause is fixed."""


class _Batch:
    """Records produced for one consumed batch; done when all are acknowledged."""

    __slots__ = ("errors", "offsets", "pending", "produced", "routed", "routed_at_ms", "sealed")

    def __init__(self, routed_at_ms: int) -> None:
        self.routed_at_ms = routed_at_ms
        self.offsets: dict[int, int] = {}
        self.routed: list[tuple[int, str]] = []
        self.pending = 0
        self.produced = 0
        self.sealed = False
        self.errors: list[KafkaError] = []

    def ack(self, err: KafkaError | None, _msg: Message) -> None:
        """librdkafka's delivery callback (runs inside producer.poll/flush)."""
        self.pending -= 1
        if err is not None:
            self.errors.append(err)

    @property
    def done(self) -> bool:
        return self.sealed and self.pending == 0


def parse_marker(value: bytes | None) -> tuple[int, list[str]]:
    """(routed_at_ms, event ids) of a seen-marker record; PoisonMessage when it is not one."""
    try:
        marker = json.loads(value or b"")
        seen_at, ids = int(marker["t"]), marker["ids"]
    except (ValueError, TypeError, KeyError) as exc:
        raise PoisonMessage(f"not a seen marker: {exc}") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise PoisonMessage("not a seen marker: ids is not a list of event ids")
    return seen_at, ids


class RouteEngine:
    """The consume -> route -> produce -> commit loop. `run(stop)` blocks until `stop` is set
    (call it in a thread); a produce that fails after librdkafka's own retries raises
    `BrokerUnavailable` without committing (the records are routed again after restart)."""

    def __init__(
        self,
        *,
        bootstrap: Kafka,
        group_id: str,
        app_id: str,
        codecs: TopicCodecs,
        rules: RoutingRules,
        state: StateTables,
        bookings_topic: str | None,
        config: RouteSettings | None = None,
        clock: Callable[[], float] = time.time,
        state_ready: Callable[[int, float], bool] | None = None,
        make_producer: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        metrics.export("route")  # this process's /metrics serves them
        self.config = config or RouteSettings.model_construct()  # its defaults, not the env
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.seen_topic = topics.app_topics(app_id).route_seen.name
        self.rules = rules
        self.state = state
        self.bookings_topic = bookings_topic
        self.clock = clock
        self.source = topics.EVENTS.name
        self.codec: AvroCodec = codecs[topics.EVENTS]
        self.encoders: dict[Destination, tuple[str, Callable[[Any], bytes]]] = {
            dest: (t.deliver.name, codecs[t.deliver].encode) for dest, t in topics.DELIVER.items()
        }
        self.windows: dict[int, SeenWindow] = {}
        self._inflight: deque[_Batch] = deque()
        self._acked_offsets: dict[int, int] = {}
        self._acked_ids: dict[int, list[str]] = {}
        self._committed: dict[int, int] = {}  # partition -> last offset handed to commit
        self._last_commit = 0.0
        self.routed = 0
        self.duplicates = 0
        self._e2e = metrics.END_TO_END_SECONDS.labels(STAGE)
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.state_ready = state_ready
        self.make_producer = make_producer
        self.failed = False  # a produce failed: commit nothing more, stop
        self.state_timeouts = 0
        self._held: dict[int, int] = {}  # partition -> the state LSN its next event awaits
        self._holding_since = 0.0  # monotonic time the current hold began; 0 when none
        self.unroutable = 0

    # ---- lifecycle ------------------------------------------------------------------------
    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        cfg = self.config
        self.producer = self.make_producer(client_config(self.bootstrap, {
            "acks": "all", "enable.idempotence": True,
            "allow.auto.create.topics": False,  # topics come from the catalog only
            "linger.ms": cfg.linger_ms, "queue.buffering.max.messages": 2_000_000,
            "batch.num.messages": 10_000,
            "log.connection.close": False,
        }))  # fmt: skip
        self.consumer = Consumer(consumer_config(self.bootstrap, {
            "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1000,
            "log.connection.close": False,
        }, fetch_wait_ms=cfg.fetch_wait_max_ms))  # fmt: skip
        self.consumer.subscribe([self.source], on_assign=self._on_assign, on_revoke=self._on_revoke)
        if ready is not None:
            ready.set()
        try:
            while not stop.is_set():
                while len(self._inflight) > cfg.max_inflight_batches:
                    self._complete(0.01)  # backpressure: the broker is behind
                first = self.consumer.poll(cfg.idle_wait_s)
                if first is None:
                    self._complete()
                    continue
                batch = [first, *self.consumer.consume(cfg.batch_size - 1, 0)]
                self.process(batch)
            self._finish_sync()
        except BaseException:
            self.failed = True  # the revoke that close() triggers must not commit
            raise
        finally:
            self.consumer.close()
            self.producer.flush(10)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        loaded = self._load_seen(numbers)
        for number in numbers:
            self.windows[number] = SeenWindow.from_snapshot(
                loaded.get(number, {}), int(self.config.dedupe_window_s * 1000),
                self.config.dedupe_max_entries,
            )  # fmt: skip
        log.info("route: assigned %s (%d seen ids loaded)", numbers, sum(map(len, loaded.values())))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self.failed:
            self._finish_sync()
        for tp in partitions:
            self.windows.pop(tp.partition, None)
            self._held.pop(tp.partition, None)

    def _finish_sync(self) -> None:
        """Wait for every in-flight batch and commit what they acked, synchronously (stop,
        revoke). Commits explicit offsets of acked batches only, never the consumer's
        positions (which run ahead of what was acked)."""
        assert self.producer is not None and self.consumer is not None
        self._drain()
        self.producer.flush(30)
        if self._committed:
            commit = [TopicPartition(self.source, p, o) for p, o in self._committed.items()]
            try:
                self.consumer.commit(offsets=commit, asynchronous=False)
            except Exception as exc:  # nothing new to commit is not an error
                log.debug("route: commit on revoke/stop: %s", exc)

    def _load_seen(self, partitions: list[int]) -> dict[int, dict[str, int]]:
        """Markers of the last window on `partitions` of the seen topic, read to the end.

        A marker record is one routed batch of one partition: value = JSON
        {"t": routed_at_ms, "ids": [event ids]}."""
        reader = Consumer(client_config(self.bootstrap, {
            "group.id": f"{self.group_id}-seen-reader",
            "enable.auto.commit": False, "log.connection.close": False,
        }))  # fmt: skip
        horizon = int(self.clock() * 1000 - self.config.dedupe_window_s * 1000)
        out: dict[int, dict[str, int]] = {p: {} for p in partitions}

        def apply(msg: Message) -> None:
            try:
                seen_at, ids = parse_marker(msg.value())
            except PoisonMessage as exc:  # dead-letter it; the other markers still count
                dead_letter_message(self.producer, topics.EVENTS_DLQ.name, "route-seen", msg, exc)
                return
            if seen_at > horizon and msg.partition() in out:
                out[msg.partition() or 0].update(dict.fromkeys(ids, seen_at))

        try:
            pending = read_to_end(
                reader, [(self.seen_topic, p) for p in partitions], apply, timeout=60
            )
            if pending:
                log.warning("route: seen markers not read to their end: %s", pending)
        finally:
            reader.close()
        return out

    # ---- one batch --------------------------------------------------------------------------
    def process(self, batch: list[Message]) -> None:
        """Route one batch and hand its records to the producer without waiting for acks.

        The batch's offsets are committed (and its seen markers written) by `_complete`,
        once every record it produced is acknowledged and every earlier batch is done."""
        assert self.producer is not None
        now = self.clock()
        now_ms = int(now * 1000)
        decode, state, rules = self.codec.decode, self.state, self.rules
        pending = _Batch(now_ms)
        produce = functools.partial(self._produce, pending)
        held: dict[int, int] = {}  # partition -> the state LSN its first held event awaits
        for msg in batch:
            if msg.error():
                continue
            partition = msg.partition() or 0
            if partition in held:
                continue
            pending.offsets[partition] = (msg.offset() or 0) + 1
            try:
                event: Any = decode(msg.value())
                event_id = event["event_id"]
                if not self._wait_for_state(event, 0.0 if held else None):
                    held[partition] = int(event["source"]["state_lsn"])
                    pending.offsets[partition] = msg.offset() or 0  # committed up to it only
                    continue
                self._held.pop(partition, None)
                window = self.windows.get(partition)  # after the hold: `seen` records the id
                if window is not None and window.seen(event_id, now_ms):
                    self.duplicates += 1
                    continue
                problems: list[str] = []
                out = [
                    (self.encoders[d.destination], d.key.encode(), d.record)
                    for d in route(event, state, rules, now_ms, problems)
                ]
                encoded = [(name, key, enc(record)) for (name, enc), key, record in out]
            except Exception as exc:  # a bad record is data: dead-letter it, keep going
                self._dead_letter(pending, msg, exc)
                continue
            for name, key, value in encoded:
                produce(name, value, key)
            if problems:  # what could not be routed: dead-letter the event for replay
                self.unroutable += 1
                self._dead_letter(pending, msg, Unroutable("; ".join(problems)))
            if self.bookings_topic and event["event_type"] == "booking.changed":
                for supplier in booking_keys(event):
                    produce(self.bookings_topic, msg.value(), supplier.encode())
            pending.routed.append((partition, event_id))
            self._e2e.observe(max(0.0, now - event["source_ts_ms"] / 1000))
        self._hold(pending, held)
        pending.sealed = True
        self._inflight.append(pending)
        metrics.RECORDS_IN.labels(STAGE).inc(len(batch))
        metrics.RECORDS_OUT.labels(STAGE).inc(pending.produced)
        self._complete()

    def _wait_for_state(self, event: Any, timeout: float | None = None) -> bool:
        """Whether the routing state holds every state change committed up to the event's
        transaction (`source.state_lsn`), waiting at most `timeout` (`state_wait_s`); a miss
        is counted."""
        lsn = event["source"].get("state_lsn")
        wait = self.config.state_wait_s if timeout is None else timeout
        if not lsn or self.state_ready is None or self.state_ready(int(lsn), wait):
            return True
        self.state_timeouts += 1
        metrics.STATE_WAIT_TIMEOUTS.inc()
        return False

    def _hold(self, batch: _Batch, held: dict[int, int]) -> None:
        """Read each `held` partition again from its held event (the batch's commit point for
        it), so that it and everything after it are routed later; log when holding starts
        and when it ends (the counter counts every miss). A seek that fails raises: the
        engine stops and commits nothing past the held events."""
        assert self.consumer is not None
        for partition in held:
            offset = batch.offsets[partition]
            self.consumer.seek(TopicPartition(self.source, partition, offset))
        self._held.update(held)
        if self._held and not self._holding_since:
            self._holding_since = time.monotonic()
            log.warning("route: the routing state has not reached commit %d within %.1f s; "
                        "holding partitions %s until it does (is the worker's state agent "
                        "running and caught up?)", min(self._held.values()),
                        self.config.state_wait_s, sorted(self._held))  # fmt: skip
        elif not self._held and self._holding_since:
            log.warning(
                "route: the routing state caught up after %.1f s; routing resumed",
                time.monotonic() - self._holding_since,
            )
            self._holding_since = 0.0

    def _produce(
        self, batch: _Batch, topic: str, value: bytes | None, key: bytes | None, **kw: Any
    ) -> None:
        """Produce one record counted against `batch`; waits (serving acks) while
        librdkafka's queue is full."""
        assert self.producer is not None
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=batch.ack, **kw)
                break
            except BufferError:
                self.producer.poll(0.05)
        batch.pending += 1
        batch.produced += 1

    def _complete(self, timeout: float = 0.0, *, force: bool = False) -> None:
        """Serve delivery callbacks; collect every leading batch whose records are all acked,
        and at most every `commit_interval_s` (or when `force`d) write the collected seen
        markers and commit the collected offsets (asynchronously). Coalescing keeps the
        broker's request rate flat when batches are small (low load, low latency)."""
        assert self.producer is not None and self.consumer is not None
        self.producer.poll(timeout)
        while self._inflight and self._inflight[0].done:
            batch = self._inflight.popleft()
            if batch.errors:
                self.failed = True
                raise BrokerUnavailable(
                    f"route: {len(batch.errors)} deliveries failed, e.g. {batch.errors[:3]}; "
                    "offsets not committed (the batch is routed again after restart)"
                )
            self._acked_offsets.update(batch.offsets)
            for partition, event_id in batch.routed:
                self._acked_ids.setdefault(partition, []).append(event_id)
            self.routed += len(batch.routed)
        now = time.monotonic()
        if not force and now - self._last_commit < self.config.commit_interval_s:
            return
        self._last_commit = now
        now_ms = int(self.clock() * 1000)
        for partition, ids in self._acked_ids.items():
            marker = json.dumps({"t": now_ms, "ids": ids}).encode()
            self.producer.produce(
                self.seen_topic, marker, str(partition).encode(), partition=partition
            )
        if self._acked_offsets:
            commit = [TopicPartition(self.source, p, o) for p, o in self._acked_offsets.items()]
            self.consumer.commit(offsets=commit, asynchronous=True)
            self._committed.update(self._acked_offsets)
        self._acked_ids, self._acked_offsets = {}, {}

    def _drain(self, timeout: float = 60.0) -> None:
        """Wait until every in-flight batch is acked and committed (stop, revoke)."""
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            self._complete(0.05)
        self._complete(force=True)
        if self._inflight:
            raise BrokerUnavailable(
                f"route: {len(self._inflight)} batches unacknowledged after {timeout:.0f} s; "
                "offsets not committed"
            )

    def _dead_letter(self, batch: _Batch, msg: Message, exc: Exception) -> None:
        metrics.DEAD_LETTERS.labels(STAGE, type(exc).__name__).inc()
        headers = dead_letter_headers(
            stage=STAGE, error=exc, topic=msg.topic() or self.source,
            partition=msg.partition() or 0, offset=msg.offset() or 0,
        )  # fmt: skip
        self._produce(batch, topics.EVENTS_DLQ.name, msg.value(), msg.key(), headers=headers)
