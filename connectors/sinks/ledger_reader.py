"""The delivery ledger as a sink process sees it: `streams.logic.ledger.LedgerState` loaded at
start from what is bounded, whatever the history, and kept current by tailing
`wedsync.delivery.results`.

At start (`load`):

1. the compacted `wedsync.delivery.ledger.<kind>` is read whole: for every (target, entity) the
   delivered result of its newest version, and the replayed dead letters that were
   delivered. Its keys grow with distinct (target, entity) pairs and replays, not results;
2. `wedsync.delivery.results` is read from a time, not from its beginning
   (`streams.logic.ledger.window_start_ms`): the timestamp of the oldest record of this
   kind's deliver and retry partitions the sink group has not committed (minus `skew_s`),
   or `copy_window_s` before now when that is earlier. The group never reads a record
   before its committed offsets again, and each result of a record at or after them was
   written after that record was produced: the window holds every `processed` result the
   group can still meet, and every delivered copy routing may still send again.

When anything on the way cannot be told (the group's offsets, a record's timestamp, an
offset for a time), the results are read from their beginning, as before: slower, never
wrong.

Upgrade: a compacted ledger without the `~backfilled` marker (just created for a deployment
whose results an earlier version wrote) is read the old way once: every result; the
newest versions found are written to the compacted ledger, then the marker, and every later
start is the bounded one. Without the ledger topic (`wedsync topics create` not run since
the upgrade) every start is the old full read, with a warning.

Results this process writes are folded at once (`LedgerState.apply`, by the runtime), and
`kept(result)` names the compacted-ledger keys the runtime writes the same result under, in
the same batch (its commit waits for them as for the result); tailing adds what other
processes of the same destination wrote (after a rebalance, the partitions they had).
`catch_up()` runs when partitions are assigned, before their records are read: it folds the
results up to now, and reads further back when an assigned partition's oldest uncommitted
record is older than the window read at start (a retry held for hours by a process that
died).

Kafka not answering yet (a broker starting, leaders being elected after a restart or after
the topics were created) is waited out: `load` tries again until its timeout, `catch_up`
gives up quietly after its own (it runs inside a rebalance callback, which must not raise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from streams.errors import BrokerUnavailable, DecodeError
from streams.kafka.codec import AvroCodec
from streams.kafka.connection import Kafka, client_config
from streams.kafka.recovering import watermarks
from streams.kafka.replay import Partition, read_to_end
from streams.logic.ledger import BACKFILLED, LedgerState, window_start_ms
from streams.topics import DELIVER, DELIVERY_RESULTS, LEDGER, Destination

TAIL_FETCH_BYTES = 1 << 20
TAIL_FETCH_WAIT_MS = 250

log = logging.getLogger(__name__)

WRITER = "wedsync.sink.writer"  # header: which sink process wrote a result
T = TypeVar("T")


class _Unknown(Exception):
    """Something the bounded start needs cannot be told now: read every result instead."""


class LedgerReader:
    def __init__(
        self, bootstrap: Kafka, group_id: str, codec: AvroCodec, state: LedgerState,
        writer: bytes = b"", *, copy_window_s: float = 1800.0, skew_s: float = 300.0,
    ) -> None:  # fmt: skip
        """`writer`: the id this process stamps on its own results (already folded).
        `group_id`: the sink's consumer group (its committed offsets bound the window).
        `copy_window_s`: results at least this recent are always read (copies of a delivery
        routing may still send). `skew_s`: how far another host's clock may be behind."""
        self.state = state
        self._writer = writer
        self._codec = codec
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._copy_window_ms = int(copy_window_s * 1000)
        self._skew_ms = int(skew_s * 1000)
        self._kind = Destination(state.destination)
        self._ledger = LEDGER[self._kind]
        self._consumer = self._new_consumer(f"{group_id}-ledger")
        self._parts = [(DELIVERY_RESULTS.name, p) for p in range(DELIVERY_RESULTS.partitions)]
        self._from: dict[Partition, int] | None = None  # None: results read from the beginning
        self._from_ms = 0
        self._backfill: dict[str, bytes] | None = None  # while backfilling: key -> result
        self.read_at_start = 0  # records `load` read (kept entries and results)

    def _new_consumer(self, group: str) -> Consumer:
        return Consumer(client_config(self._bootstrap, {
            "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "log.connection.close": False,
            # the tail is folded a few times a second, not per result: the broker answers
            # once TAIL_FETCH_BYTES arrived or after TAIL_FETCH_WAIT_MS (at 250 changes/s
            # the three sinks' tails were 30 % of the broker's requests, one per results
            # batch); a read of history is not slowed, only its last fetch waits
            "fetch.min.bytes": TAIL_FETCH_BYTES, "fetch.wait.max.ms": TAIL_FETCH_WAIT_MS,
            # prefetch at most 16 MB: librdkafka's default (64 MB) would be most of a start's
            # memory, and a fold is slower than a fetch anyway
            "queued.max.messages.kbytes": 16 * 1024,
        }))  # fmt: skip

    def _apply(self, msg: Message) -> None:
        try:
            result = self._codec.decode(msg.value())
        except DecodeError as exc:  # not ours to dead-letter: the results' writer is a sink
            log.warning(
                "unreadable delivery result at %s:%s: %s", msg.partition(), msg.offset(), exc
            )
            return
        self.state.apply(result)
        if self._backfill is not None:
            for key in self.state.kept_keys(result):
                self._backfill[key] = msg.value() or b""

    def kept(self, result: dict[str, Any], *, replayed: bool = False) -> list[tuple[str, bytes]]:
        """(topic, key) pairs the runtime writes `result` (already folded) under in the
        compacted ledger, next to its write on the results topic."""
        return [
            (self._ledger.name, key.encode())
            for key in self.state.kept_keys(result, replayed=replayed)
        ]

    # ---- start ---------------------------------------------------------------------------
    def load(self, timeout: float = 60.0) -> None:
        """Read the compacted ledger, then the results of the window; the consumer then
        stays positioned to tail the results. BrokerUnavailable when Kafka cannot say where
        they end within `timeout`."""
        started = time.monotonic()
        deadline = started + timeout
        backfilled = _retrying(lambda left: self._read_kept(left), deadline)
        starts = self._window_starts() if backfilled else None
        if backfilled is False:
            self._backfill = {}
        count = self.state.results

        def read(left: float) -> set[Partition]:
            return read_to_end(self._consumer, self._parts, self._apply, timeout=left,
                               starts=starts)  # fmt: skip

        missing = _retrying(read, deadline)
        self.read_at_start += self.state.results - count
        if missing:
            log.warning("ledger not read to its end in %.0f s: %s", timeout, sorted(missing))
        elif self._backfill is not None:
            self._write_backfill()
        self._backfill = None
        log.info(
            "ledger loaded in %.1f s: %d records read (%s)", time.monotonic() - started,
            self.read_at_start,
            "every result" if starts is None else f"results since {self._from_ms} ms",
        )  # fmt: skip

    def _read_kept(self, timeout: float) -> bool | None:
        """Fold the compacted ledger; True when it holds the backfill marker, False when it
        does not, None when the topic does not exist."""
        consumer = self._new_consumer(f"{self._group_id}-ledger")
        try:
            meta = consumer.list_topics(self._ledger.name, timeout=10).topics.get(self._ledger.name)
            if meta is None or meta.error is not None:
                if meta is not None and meta.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise BrokerUnavailable(f"{self._ledger.name}: {meta.error.str()}")
                log.warning("%s does not exist (run `wedsync topics create`): every start "
                            "reads every delivery result", self._ledger.name)  # fmt: skip
                return None
            marker = [False]

            def fold(msg: Message) -> None:
                self.read_at_start += 1
                if msg.key() == BACKFILLED.encode():
                    marker[0] = msg.value() is not None  # a tombstone asks for a backfill
                    return
                if msg.value() is None:
                    return
                try:
                    self.state.apply_kept(self._codec.decode(msg.value()))
                except DecodeError as exc:
                    log.warning("unreadable ledger entry at %s:%s: %s", msg.partition(),
                                msg.offset(), exc)  # fmt: skip

            parts = [(self._ledger.name, p) for p in range(len(meta.partitions))]
            missing = read_to_end(consumer, parts, fold, timeout=timeout)
            if missing:
                raise BrokerUnavailable(f"{self._ledger.name} not read to its end: {missing}")
            return marker[0]
        finally:
            consumer.close()

    def _window_starts(self) -> dict[Partition, int] | None:
        """The results' offsets at the window's start; None (read them all) when unknown."""
        try:
            oldest = self._oldest_uncommitted_ms()
            start_ms = window_start_ms(int(time.time() * 1000), oldest,
                                       copy_window_ms=self._copy_window_ms,
                                       skew_ms=self._skew_ms)  # fmt: skip
            starts = self._offsets_at(start_ms)
        except (_Unknown, KafkaException) as exc:
            log.warning("ledger: %s; reading every delivery result", exc)
            return None
        self._from, self._from_ms = starts, start_ms
        return starts

    def _oldest_uncommitted_ms(self) -> int | None:
        """The timestamp of the oldest record of this kind's deliver and retry partitions
        that the sink group has not committed; None when every one is committed."""
        group = self._new_consumer(self._group_id)  # asks the group; never joins it
        try:
            topics = DELIVER[self._kind]
            tps = [TopicPartition(t.name, p) for t in (topics.deliver, topics.retry)
                   for p in range(t.partitions)]  # fmt: skip
            at: dict[Partition, int] = {}
            for tp in group.committed(tps, timeout=10):
                if tp.error is not None:
                    raise _Unknown(f"committed offsets unknown: {tp.error.str()}")
                low, high = watermarks(group, TopicPartition(tp.topic, tp.partition), 10)
                first = max(tp.offset if tp.offset >= 0 else low, low)  # none: the earliest
                if first < high:
                    at[(tp.topic, tp.partition)] = first
            return min(_timestamps(group, at).values()) if at else None
        finally:
            group.close()

    def _offsets_at(self, start_ms: int) -> dict[Partition, int]:
        asked = [TopicPartition(t, p, start_ms) for t, p in self._parts]
        out: dict[Partition, int] = {}
        for tp in self._consumer.offsets_for_times(asked, timeout=10):
            if tp.error is not None:
                raise _Unknown(f"results offsets for a time unknown: {tp.error.str()}")
            # no record at or after the time: from the end
            out[(tp.topic, tp.partition)] = (
                tp.offset if tp.offset >= 0 else watermarks(self._consumer, tp, 10)[1]
            )
        return out

    def _write_backfill(self) -> None:
        """Write what the full read found to the compacted ledger, then the marker."""
        rows = self._backfill or {}
        producer = Producer(client_config(self._bootstrap, {
            "enable.idempotence": True, "acks": "all", "linger.ms": 20,
            "log.connection.close": False,
        }))  # fmt: skip
        for key, value in rows.items():
            producer.produce(self._ledger.name, value, key.encode())
            producer.poll(0)
        if producer.flush(60) == 0:
            producer.produce(self._ledger.name, self._marker(), BACKFILLED.encode())
        if producer.flush(30):
            log.warning("%s: backfill not acknowledged; the next start reads every result "
                        "again", self._ledger.name)  # fmt: skip
            return
        log.info("%s backfilled from the delivery results: %d entries", self._ledger.name,
                 len(rows))  # fmt: skip

    def _marker(self) -> bytes:
        return marker(self._codec, self._kind)

    # ---- running -------------------------------------------------------------------------
    def poll(self, max_records: int = 10_000) -> int:
        """Fold results that arrived since; never waits."""
        msgs = self._consumer.consume(max_records, 0)
        for msg in msgs:
            if not msg.error() and (WRITER, self._writer) not in (msg.headers() or ()):
                self._apply(msg)
        return len(msgs)

    def catch_up(self, timeout: float = 10.0) -> None:
        """Fold results up to the current end of every partition (before reading newly
        assigned delivery partitions, so another process's outcomes are known), and further
        back than the start's window when an uncommitted record is older. Never raises:
        when Kafka cannot say, it logs that and reads on while tailing."""
        try:
            self._reach_back(timeout)
        except (_Unknown, KafkaException, BrokerUnavailable) as exc:
            log.warning("ledger: older results not read (%s)", exc)
        try:
            ends = {
                p: watermarks(self._consumer, TopicPartition(t, p), seconds=10)[1]
                for t, p in self._parts
            }
        except KafkaException as exc:
            log.warning("ledger not caught up (end offsets unknown: %s)", exc.args[0].str())
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in self._parts])
            if all(tp.offset >= ends[tp.partition] or (tp.offset < 0 and ends[tp.partition] == 0)
                   for tp in positions):  # fmt: skip
                return
            self.poll()
            time.sleep(0.01)

    def _reach_back(self, timeout: float) -> None:
        """Fold the results between the oldest uncommitted record's time and the start's
        window, when that record is older than the window."""
        if self._from is None:
            return  # every result was read
        oldest = self._oldest_uncommitted_ms()
        if oldest is None or oldest - self._skew_ms >= self._from_ms:
            return
        need_ms = max(0, oldest - self._skew_ms)
        starts = self._offsets_at(need_ms)
        consumer = self._new_consumer(f"{self._group_id}-ledger")
        try:
            ranges = {tp: (o, self._from[tp]) for tp, o in starts.items() if o < self._from[tp]}
            _read_ranges(consumer, ranges, self._apply, timeout)
        finally:
            consumer.close()
        log.info("ledger: read back to %d ms for an older uncommitted record", need_ms)
        self._from = {tp: min(o, self._from[tp]) for tp, o in starts.items()}
        self._from_ms = need_ms

    def close(self) -> None:
        self._consumer.close()


def marker(codec: AvroCodec, kind: Destination) -> bytes:
    """The value of the compacted ledger's `~backfilled` marker (a result naming itself)."""
    return codec.encode({
        "delivery_id": BACKFILLED, "event_id": BACKFILLED, "event_type": BACKFILLED,
        "destination": kind.value, "target": BACKFILLED, "integration_id": None,
        "attempt": 0, "outcome": "skipped_duplicate", "status_code": None,
        "latency_ms": 0.0, "provider_id": None, "error_class": None,
        "error_message": "the compacted ledger was backfilled from the delivery results",
        "source_ts_ms": 0, "completed_at_ms": int(time.time() * 1000),
        "aggregate_id": "", "aggregate_version": -1, "routed_at_ms": 0,
        "source_topic": "", "source_partition": 0, "source_offset": -1,
        "superseded_by": None,
    })  # fmt: skip


def _retrying(read: Callable[[float], T], deadline: float) -> T:
    """`read(seconds left)`, again while Kafka cannot answer (e.g. no partition leader yet)."""
    while True:
        try:
            return read(max(1.0, deadline - time.monotonic()))
        except BrokerUnavailable as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("ledger: %s; trying again", exc)
            time.sleep(0.5)


def _timestamps(consumer: Consumer, at: dict[Partition, int]) -> dict[Partition, int]:
    """The timestamp of the record at each position (the first one still there)."""
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in at.items()])
    found: dict[Partition, int] = {}
    deadline = time.monotonic() + 10
    while len(found) < len(at) and time.monotonic() < deadline:
        for msg in consumer.consume(len(at), 0.2):
            tp = (msg.topic() or "", msg.partition() or 0)
            if msg.error() or tp in found:
                continue
            kind, ts = msg.timestamp()
            if kind == TIMESTAMP_NOT_AVAILABLE:
                raise _Unknown(f"no timestamp on {tp[0]}[{tp[1]}]")
            found[tp] = ts
    if len(found) < len(at):
        raise _Unknown(f"oldest uncommitted records not read: {sorted(set(at) - set(found))}")
    return found


def _read_ranges(consumer: Consumer, ranges: dict[Partition, tuple[int, int]],
                 apply: Callable[[Message], None], timeout: float) -> None:  # fmt: skip
    """Pass every record in [start, stop) of each partition to `apply`."""
    if not ranges:
        return
    consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _) in ranges.items()])
    pending = set(ranges)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 0.2):
            tp = (msg.topic() or "", msg.partition() or 0)
            if msg.error() or tp not in pending:
                continue
            if (msg.offset() or 0) < ranges[tp][1]:
                apply(msg)
            if (msg.offset() or 0) >= ranges[tp][1] - 1:
                pending.discard(tp)
    if pending:
        raise _Unknown(f"older results not read to the window: {sorted(pending)}")
