"""`wedsync audit --since T [--until T] [--strict]`: prove that nothing accepted was lost.

Reads the pipeline's records back from Kafka and hands them to the pure join
(`streams.logic.audit.reconcile`), which lists every source change committed in the window
whose expected deliveries have no final outcome, stage by stage. Order matters:

1. the committed offsets of every stage's consumer group, first: a stage records its outputs
   (acknowledged by Kafka) before it commits past an input, so everything read afterwards
   holds the outputs of every input below those offsets;
2. the source topics (wedsync.ingest.cdc, .webhooks) from the window's start (Kafka's record
   timestamps, less a margin for clock skew), keeping the changes committed in the window;
3. wedsync.events, wedsync.events.dlq, the deliver and retry topics, the routing seen
   markers and wedsync.delivery.results from the same time, each to the end it has now,
   keeping only what belongs to the window's changes.

Exit status: 1 when anything is lost, 0 otherwise; pending items (not yet processed, or
waiting for a retry) are listed and, with `--strict`, fail too (exit 1).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streams import topics
from streams.errors import BrokerUnavailable, ConfigurationError, DecodeError
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config
from streams.kafka.deadletter import (
    H_ERROR_CLASS,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_STAGE,
    H_TOPIC,
    header_map,
)
from streams.kafka.recovering import asked_again, watermarks
from streams.logic.audit import (
    Audit,
    DeadLetter,
    Observed,
    Position,
    Status,
    expected_event_ids,
    reconcile,
    source_ts_ms,
)
from streams.topics import DELIVER, Destination

CLOCK_SKEW_MS = 60_000  # records are read from this long before the window's start
SHOWN = 200  # findings printed per status (the counts are always complete)


def time_ms(text: str) -> int:
    """An ISO 8601 time as epoch milliseconds (UTC when it has no offset)."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-11-30T18:00"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def lines(report: Audit, since_ms: int, until_ms: int) -> list[str]:
    """What `wedsync audit` prints: the window, counts per stage, then every finding."""
    out = [f"audit of changes committed {_iso(since_ms)} .. {_iso(until_ms)}", *report.summary()]
    for status in Status:
        found = [f for f in report.findings if f.status is status]
        out.extend(f.line() for f in found[:SHOWN])
        if len(found) > SHOWN:
            out.append(f"... and {len(found) - SHOWN} more {status.value}")
    by_stage = ", ".join(f"{stage} {n}" for stage, n in _stages(report.lost))
    pending = f"; {len(report.pending)} pending" if report.pending else ""
    out.append(f"LOST: {len(report.lost)} ({by_stage}){pending}" if report.lost
               else f"nothing lost{pending}")  # fmt: skip
    return out


def _stages(findings: Iterable[Any]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.stage] = counts.get(f.stage, 0) + 1
    return sorted(counts.items())


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


# ---- reading -------------------------------------------------------------------------------
def groups(app_id: str) -> dict[str, list[str]]:
    """Each stage's consumer group and the topics it reads (named as the processes name
    them: Faust's group is the app id, routing's `<app id>-route` in
    streams.routing.process, each sink's `wedsync-sink-<kind>` in connectors.sinks.runtime)."""
    out = {
        app_id: [topics.INGEST_CDC.name, topics.INGEST_WEBHOOKS.name],
        f"{app_id}-route": [topics.EVENTS.name],
    }
    for kind, t in DELIVER.items():
        if kind is not Destination.INAPP:
            out[f"wedsync-sink-{kind.value}"] = [t.deliver.name, t.retry.name]
    return out


def audit(bootstrap: Kafka, codecs: TopicCodecs, app_id: str, since_ms: int, until_ms: int,
          *, timeout: float = 60.0, seen_retention_s: float | None = None) -> Audit:  # fmt: skip
    """Read the window's records (see the module docstring) and reconcile them."""
    if seen_retention_s is None:
        from streams.routing.engine import RouteSettings

        seen_retention_s = RouteSettings.model_construct().dedupe_window_s * 2
    reader = _Reader(bootstrap, since_ms - CLOCK_SKEW_MS, timeout)
    try:
        observed = Observed(committed=reader.committed(groups(app_id)))
        observed.seen_since_ms = int(time.time() * 1000 - seen_retention_s * 1000)
        for source in (topics.INGEST_CDC, topics.INGEST_WEBHOOKS):
            decode = codecs[source].decode

            def keep_source(msg: Message, decode: Callable[[Any], Any] = decode) -> None:
                record = decode(msg.value())
                if since_ms <= source_ts_ms(record) <= until_ms:
                    observed.sources.append((_position(msg), record))

            reader.read([source.name], keep_source)
        wanted = expected_event_ids(observed, since_ms, until_ms)
        decode_event = codecs[topics.EVENTS].decode

        def keep_event(msg: Message) -> None:
            event = decode_event(msg.value())
            if event["event_id"] in wanted:
                observed.events.append((_position(msg), event))

        reader.read([topics.EVENTS.name], keep_event)
        reader.read([topics.EVENTS_DLQ.name], lambda m: observed.dead_letters.append(_letter(m)))
        for kind, t in DELIVER.items():
            decode_delivery = codecs[t.deliver].decode

            def keep_delivery(msg: Message, kind: Destination = kind,
                              decode: Callable[[Any], Any] = decode_delivery) -> None:  # fmt: skip
                record = decode(msg.value())
                if record["event_id"] in wanted:
                    observed.deliveries.append((_position(msg), kind.value, record))

            reader.read([t.deliver.name, t.retry.name], keep_delivery)
        seen_topic = topics.app_topics(app_id).route_seen.name
        reader.read([seen_topic], lambda m: observed.seen.update(wanted & set(_marker_ids(m))))
        delivery_ids = {record["delivery_id"] for _, _, record in observed.deliveries}
        decode_result = codecs[topics.DELIVERY_RESULTS].decode

        def keep_result(msg: Message) -> None:
            result = decode_result(msg.value())
            if result["delivery_id"] in delivery_ids:
                observed.results.append(result)

        reader.read([topics.DELIVERY_RESULTS.name], keep_result)
    finally:
        reader.close()
    return reconcile(observed, since_ms, until_ms)


def _position(msg: Message) -> Position:
    return Position(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)


def _letter(msg: Message) -> DeadLetter:
    h = header_map(msg.headers())
    try:
        source = Position(h.get(H_TOPIC, ""), int(h.get(H_PARTITION, -1)), int(h.get(H_OFFSET, -1)))
    except ValueError:
        source = Position(h.get(H_TOPIC, ""), -1, -1)
    return DeadLetter(source, h.get(H_STAGE, ""), h.get(H_ERROR_CLASS, ""), h.get(H_REASON, ""))


def _marker_ids(msg: Message) -> list[str]:
    from streams.errors import PoisonMessage
    from streams.routing.engine import parse_marker

    try:
        return parse_marker(msg.value())[1]
    except PoisonMessage:
        return []


class _Reader:
    """One consumer that joins no group and commits nothing; `read` assigns the partitions
    of some topics from the first record at or after `start_ms` and reads each to the end
    it had when asked."""

    def __init__(self, bootstrap: Kafka, start_ms: int, timeout: float) -> None:
        self.start_ms = start_ms
        self.timeout = timeout
        self.bootstrap = bootstrap
        self.consumer = Consumer(client_config(bootstrap, {
            "group.id": f"wedsync-audit-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "fetch.wait.max.ms": 10, "log.connection.close": False,
        }))  # fmt: skip
        try:
            self.metadata = self.consumer.list_topics(timeout=10).topics
        except KafkaException as exc:
            self.consumer.close()
            raise BrokerUnavailable(f"no metadata from {bootstrap}: {exc}") from exc

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, names: Iterable[str]) -> list[TopicPartition]:
        return [
            TopicPartition(name, p)
            for name in names
            if name in self.metadata and not self.metadata[name].error
            for p in sorted(self.metadata[name].partitions)
        ]

    def committed(self, by_group: dict[str, list[str]]) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for group, names in by_group.items():
            parts = self.partitions(names)
            if not parts:
                continue
            probe = Consumer(client_config(self.bootstrap, {
                "group.id": group,
                "enable.auto.commit": False, "log.connection.close": False,
            }))  # fmt: skip
            try:
                for tp in _committed(probe, parts):
                    if tp.offset >= 0:
                        out[(tp.topic, tp.partition)] = tp.offset
            except KafkaException as exc:
                raise BrokerUnavailable(f"committed offsets of {group}: {exc}") from exc
            finally:
                probe.close()
        return out

    def read(self, names: list[str], apply: Callable[[Message], None]) -> None:
        """Every record of `names` from `start_ms` to their present end, to `apply`; a record
        that does not decode is skipped (its stage dead-lettered it). BrokerUnavailable when
        not read to the end within the timeout."""
        parts = self.partitions(names)
        if not parts:
            return
        try:
            starts = asked_again(lambda: self.consumer.offsets_for_times(
                [TopicPartition(tp.topic, tp.partition, self.start_ms) for tp in parts], timeout=10
            ), seconds=60, between=lambda: self.consumer.list_topics(timeout=5))  # fmt: skip
            ends = {(tp.topic, tp.partition): _end(self.consumer, tp) for tp in parts}
        except KafkaException as exc:
            raise BrokerUnavailable(f"offsets of {names}: {exc}; is the broker up?") from exc
        assign = [tp for tp in starts if 0 <= tp.offset < ends[(tp.topic, tp.partition)]]
        if not assign:
            return
        self.consumer.assign(assign)
        pending = {(tp.topic, tp.partition) for tp in assign}
        deadline = time.monotonic() + self.timeout
        while pending and time.monotonic() < deadline:
            for msg in self.consumer.consume(10_000, 0.2):
                if msg.error():
                    continue
                try:
                    apply(msg)
                except DecodeError:
                    continue
            positions = self.consumer.position([TopicPartition(t, p) for t, p in pending])
            pending = {(tp.topic, tp.partition) for tp in positions
                       if tp.offset < ends[(tp.topic, tp.partition)]}  # fmt: skip
        self.consumer.unassign()
        if pending:
            raise BrokerUnavailable(
                f"{sorted(pending)}: not read to the end in {self.timeout:.0f} s"
            )


def _committed(probe: Consumer, parts: list[TopicPartition]) -> list[TopicPartition]:
    """A group's committed offsets, asked again while the group coordinator moves."""
    return list(asked_again(lambda: probe.committed(parts, timeout=10)))


def _end(consumer: Consumer, tp: TopicPartition) -> int:
    """`tp`'s end offset, asked again while a leader moves."""
    return watermarks(consumer, tp, seconds=60)[1]  # a broker of several may have just died
