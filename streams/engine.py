"""The routing engine: wedsync.events -> per-destination deliver topics, in batches.

    wedsync.events --(confluent-kafka batch loop, a thread inside the Faust worker)-->
        wedsync.deliver.<kind>            one record per delivery (streams.logic.routing.route)
        <app id>-bookings-by-supplier     booking.changed, re-keyed by supplier (conflicts agent)
        <app id>-route-seen               one marker per routed event id (dedupe across restarts)
        wedsync.events.dlq                events that do not decode or cannot be routed/encoded

Why not a Faust agent: Faust's per-event path (stream iteration, event/ack bookkeeping, one
`send` coroutine and future per output record) costs more than decoding, routing and encoding
the event together; a stock agent did 4-6k events/s where a plain confluent-kafka loop did
~180k/s (FACTS.md). Routing is the stage with the highest fan-out, so it runs as a
confluent-kafka batch loop hosted by a mode Service inside the Faust worker
(`streams.agents.route`); Faust keeps the agents whose state needs tables and changelog
recovery (state, conflicts) and the app's lifecycle. The loop reads routing state straight
from the Faust GlobalTables (streams.agents.state) and starts only after Faust's table
recovery has completed (app services start after recovery).

One batch: `poll` for the first record (blocks at most `idle_wait_s` when idle, so latency at
low load is one broker round trip), then drain up to `batch_size` already-fetched records
without waiting; decode, dedupe, route, encode every delivery of an event before producing
any of it (a failure dead-letters the whole event); produce; `flush()` (waits for the acks);
then the dedupe markers and an async offset commit. Offsets are committed only after the
batch's deliveries are acked: at-least-once. On revoke: flush and commit synchronously.

Dedupe: an event id already routed within `dedupe_window_s` is skipped. The seen ids live in
one `SeenWindow` per assigned partition; each routed id is also written (after its
deliveries are acked) to the seen topic, on the same partition number as its event, which is
read back when a partition is assigned, so a restart or a rebalance does not forget what was
routed. Residual duplicates: deliveries acked but the worker killed before the markers were.

Measured (bench/routing.py on the embedded broker, 2 shared cores, 12,000 events of a
production-like mix at 3.5 deliveries/event; `.venv/bin/python -c "import bench.routing as r;
print(*r.run(), sep=chr(10))"`): shipped 1,501 events/s, plain confluent-kafka loop 2,718
events/s, ratio 0.55. Both are bound by the pure routing logic itself (decode ~60 us, route
~200 us and encode ~33 us per delivery for a wedding.date_changed with 10 deliveries), not by
Kafka or Faust. Latency at 1,000 events/s was p50 866 ms / p99 3.7 s: too close to capacity
on a shared machine (the bench process itself decodes every delivery); not yet meeting the
50 ms target.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams import metrics, topics
from streams.codec import AvroCodec, TopicCodecs
from streams.deadletter import dead_letter_headers
from streams.errors import BrokerUnavailable
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
    linger_ms: float = 1.0
    fetch_wait_max_ms: int = 10


def seen_topic_name(app_id: str) -> str:
    """The dedupe-marker topic (named after the app, like Faust's internal topics)."""
    return f"{app_id}-route-seen"


class RouteEngine:
    """The consume -> route -> produce -> commit loop. `run(stop)` blocks until `stop` is set
    (call it in a thread); a produce that fails after librdkafka's own retries raises
    `BrokerUnavailable` without committing (the records are routed again after restart)."""

    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        app_id: str,
        codecs: TopicCodecs,
        rules: RoutingRules,
        state: StateTables,
        bookings_topic: str | None,
        config: RouteSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or RouteSettings()
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.seen_topic = seen_topic_name(app_id)
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
        self.failed: list[KafkaError] = []
        self.routed = 0
        self.duplicates = 0
        self._e2e = metrics.END_TO_END_SECONDS.labels(STAGE)
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        cfg = self.config
        self.producer = Producer({
            "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": cfg.linger_ms, "queue.buffering.max.messages": 2_000_000,
            "batch.num.messages": 10_000, "on_delivery": self._on_delivery,
            "log.connection.close": False,
        })  # fmt: skip
        self.consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": cfg.fetch_wait_max_ms, "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1000, "log.connection.close": False,
        })  # fmt: skip
        self.consumer.subscribe([self.source], on_assign=self._on_assign, on_revoke=self._on_revoke)
        if ready is not None:
            ready.set()
        try:
            while not stop.is_set():
                first = self.consumer.poll(cfg.idle_wait_s)
                if first is None:
                    continue
                batch = [first, *self.consumer.consume(cfg.batch_size - 1, 0)]
                self.process(batch)
            self._finish_batch_sync()
        finally:
            self.consumer.close()
            self.producer.flush(10)

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failed.append(err)

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
        self._finish_batch_sync()
        for tp in partitions:
            self.windows.pop(tp.partition, None)

    def _finish_batch_sync(self) -> None:
        """Flush everything produced and commit the consumer's positions (synchronously)."""
        assert self.producer is not None and self.consumer is not None
        self.producer.flush(30)
        if not self.failed:
            try:
                self.consumer.commit(asynchronous=False)
            except Exception as exc:  # nothing to commit yet is not an error
                log.debug("route: commit on revoke/stop: %s", exc)

    def _load_seen(self, partitions: list[int]) -> dict[int, dict[str, int]]:
        """Markers of the last window on `partitions` of the seen topic, read to the end.

        A marker record is one routed batch of one partition: value = JSON
        {"t": routed_at_ms, "ids": [event ids]}."""
        reader = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"{self.group_id}-seen-reader",
            "enable.auto.commit": False, "log.connection.close": False,
        })  # fmt: skip
        horizon = int(self.clock() * 1000 - self.config.dedupe_window_s * 1000)
        out: dict[int, dict[str, int]] = {p: {} for p in partitions}
        try:
            ends = {}
            for p in partitions:
                low, high = reader.get_watermark_offsets(TopicPartition(self.seen_topic, p), 10)
                if high > low:
                    ends[p] = high
            reader.assign([TopicPartition(self.seen_topic, p, OFFSET_BEGINNING) for p in ends])
            deadline = time.monotonic() + 60
            while ends and time.monotonic() < deadline:
                for msg in reader.consume(10_000, 0.5):
                    if msg.error():
                        continue
                    partition, offset = msg.partition() or 0, msg.offset() or 0
                    marker = json.loads(msg.value() or b"{}")
                    seen_at = int(marker.get("t", 0))
                    if seen_at > horizon and partition in out:
                        out[partition].update(dict.fromkeys(marker.get("ids", []), seen_at))
                    if offset + 1 >= ends.get(partition, 0):
                        ends.pop(partition, None)
        finally:
            reader.close()
        return out

    # ---- one batch --------------------------------------------------------------------------
    def process(self, batch: list[Message]) -> None:
        """Route one batch; returns after its deliveries are acked and its offsets committed
        (asynchronously)."""
        assert self.producer is not None and self.consumer is not None
        produce = self.producer.produce
        now = self.clock()
        now_ms = int(now * 1000)
        decode, state, rules = self.codec.decode, self.state, self.rules
        routed: list[tuple[int, str]] = []
        offsets: dict[int, int] = {}
        produced = 0
        for msg in batch:
            if msg.error():
                continue
            partition = msg.partition() or 0
            offsets[partition] = (msg.offset() or 0) + 1
            try:
                event: Any = decode(msg.value())
                event_id = event["event_id"]
                window = self.windows.get(partition)
                if window is not None and window.seen(event_id, now_ms):
                    self.duplicates += 1
                    continue
                out = [
                    (self.encoders[d.destination], d.key.encode(), d.record)
                    for d in route(event, state, rules, now_ms)
                ]
                encoded = [(name, key, enc(record)) for (name, enc), key, record in out]
            except Exception as exc:  # a bad record is data: dead-letter it, keep going
                self._dead_letter(msg, exc)
                continue
            for name, key, value in encoded:
                produce(name, value, key)
            produced += len(encoded)
            if self.bookings_topic and event["event_type"] == "booking.changed":
                supplier = str(event["payload"].get("supplier_id"))
                produce(self.bookings_topic, msg.value(), supplier.encode())
            routed.append((partition, event_id))
            self._e2e.observe(max(0.0, now - event["source_ts_ms"] / 1000))
        self._flush_or_raise()
        by_partition: dict[int, list[str]] = {}
        for partition, event_id in routed:
            by_partition.setdefault(partition, []).append(event_id)
        for partition, ids in by_partition.items():
            marker = json.dumps({"t": now_ms, "ids": ids}).encode()
            produce(self.seen_topic, marker, str(partition).encode(), partition=partition)
        if offsets:
            commit = [TopicPartition(self.source, p, o) for p, o in offsets.items()]
            self.consumer.commit(offsets=commit, asynchronous=True)
        self.routed += len(routed)
        metrics.RECORDS_IN.labels(STAGE).inc(len(batch))
        metrics.RECORDS_OUT.labels(STAGE).inc(produced)

    def _flush_or_raise(self) -> None:
        assert self.producer is not None
        remaining = self.producer.flush(60)
        if self.failed or remaining:
            errors, self.failed = self.failed[:3], []
            raise BrokerUnavailable(
                f"route: {remaining} deliveries unacknowledged, errors {errors}; "
                "offsets not committed"
            )

    def _dead_letter(self, msg: Message, exc: Exception) -> None:
        assert self.producer is not None
        metrics.DEAD_LETTERS.labels(STAGE, type(exc).__name__).inc()
        headers = dead_letter_headers(
            stage=STAGE, error=exc, topic=msg.topic() or self.source,
            partition=msg.partition() or 0, offset=msg.offset() or 0,
        )  # fmt: skip
        self.producer.produce(
            topics.EVENTS_DLQ.name, msg.value(), msg.key(), headers=list[Any](headers)
        )
