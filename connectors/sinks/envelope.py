"""What travels around a delivery record between the sink's topics (pure).

A record keeps its original bytes from `wedsync.deliver.<kind>` to `.retry` to `.dlq`:
the attempt count and everything learned on the way ride in headers, so a dead letter holds
exactly what routing wrote and a replay re-sends exactly that.

    wedsync.sink.attempt           attempt number this copy is for (0: the first try)
    wedsync.sink.not_before_ms     not to be tried before this time (retry topic)
    wedsync.sink.first_attempt_ms  when the first attempt was made
    wedsync.sink.origin            topic:partition:offset the record was first read from
    wedsync.sink.last_error_class  the last failed attempt's error class
    wedsync.sink.paused            the paused integration this record waits for
    wedsync.sink.replay_of         set by `wedsync dlq replay`: the dead letter's position
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.kafka.deadletter import (
    H_ERROR_CLASS,
    H_FAILED_AT,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_STAGE,
    H_TOPIC,
    header_map,
)
from streams.topics import Destination

H_ATTEMPT = "wedsync.sink.attempt"
H_NOT_BEFORE = "wedsync.sink.not_before_ms"
H_FIRST_ATTEMPT = "wedsync.sink.first_attempt_ms"
H_ORIGIN = "wedsync.sink.origin"
H_LAST_ERROR_CLASS = "wedsync.sink.last_error_class"
H_PAUSED = "wedsync.sink.paused"
H_REPLAY_OF = "wedsync.sink.replay_of"
# dead-letter headers a sink adds to the common ones (streams.kafka.deadletter)
H_ATTEMPTS = "wedsync.dlq.attempts"
H_LAST_ATTEMPT = "wedsync.dlq.last_attempt_ms"
H_EVENT_ID = "wedsync.dlq.event_id"
H_DELIVERY_ID = "wedsync.dlq.delivery_id"
H_TARGET = "wedsync.dlq.target"
H_CONSUMED_AT = "wedsync.dlq.consumed_from"

Headers = list[tuple[str, bytes]]


@dataclass
class Item:
    """One consumed delivery record and what its headers say."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    record: dict[str, Any]
    attempt: int
    first_attempt_ms: int
    origin: str
    not_before_ms: int
    paused: str | None
    replay_of: str | None
    last_error_class: str | None
    stored: Any = None  # the runtime's count of this record's outcome records not yet acked
    picked_up_ms: int | None = None  # when this process read it (the results' picked_up_at_ms)

    @property
    def source(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @classmethod
    def read(
        cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
        headers: Any, record: dict[str, Any], picked_up_ms: int | None = None,
    ) -> Item:  # fmt: skip
        h = header_map(headers)
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            record=record,
            attempt=_int(h.get(H_ATTEMPT), 0),
            first_attempt_ms=_int(h.get(H_FIRST_ATTEMPT), 0),
            origin=h.get(H_ORIGIN) or f"{topic}:{partition}:{offset}",
            not_before_ms=_int(h.get(H_NOT_BEFORE), 0),
            paused=h.get(H_PAUSED) or None,
            replay_of=h.get(H_REPLAY_OF) or None,
            last_error_class=h.get(H_LAST_ERROR_CLASS) or None,
            picked_up_ms=picked_up_ms,
        )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def retry_headers(
    item: Item, *, attempt: int, not_before_ms: int, first_attempt_ms: int,
    error_class: str | None, paused: str | None = None,
) -> Headers:  # fmt: skip
    out: Headers = [
        (H_ATTEMPT, str(attempt).encode()),
        (H_NOT_BEFORE, str(not_before_ms).encode()),
        (H_FIRST_ATTEMPT, str(first_attempt_ms).encode()),
        (H_ORIGIN, item.origin.encode()),
    ]
    if error_class:
        out.append((H_LAST_ERROR_CLASS, error_class.encode()))
    if paused:
        out.append((H_PAUSED, paused.encode()))
    if item.replay_of:
        out.append((H_REPLAY_OF, item.replay_of.encode()))
    return out


def dead_letter_headers(
    item: Item, *, destination: Destination, target: str, error_class: str, reason: str,
    first_attempt_ms: int, now_ms: int,
) -> Headers:  # fmt: skip
    """The common dead-letter headers (reason, class, stage, ORIGINAL topic/partition/offset,
    failed at) plus attempts, first and last attempt time, and the ids replay filters on."""
    topic, partition, offset = [*item.origin.rsplit(":", 2), "", "0", "0"][:3]
    return [
        (H_REASON, reason[:1000].encode()),
        (H_ERROR_CLASS, error_class.encode()),
        (H_STAGE, f"sink.{destination.value}".encode()),
        (H_TOPIC, topic.encode()),
        (H_PARTITION, partition.encode()),
        (H_OFFSET, offset.encode()),
        (H_FAILED_AT, str(now_ms).encode()),
        (H_ATTEMPTS, str(item.attempt + 1).encode()),
        (H_FIRST_ATTEMPT, str(first_attempt_ms).encode()),
        (H_LAST_ATTEMPT, str(now_ms).encode()),
        (H_EVENT_ID, str(item.record.get("event_id", "")).encode()),
        (H_DELIVERY_ID, str(item.record.get("delivery_id", "")).encode()),
        (H_TARGET, target.encode()),
        (H_CONSUMED_AT, f"{item.topic}:{item.partition}:{item.offset}".encode()),
    ]


def result(
    item: Item, *, destination: Destination, target: str, outcome: str, now_ms: int,
    attempt: int | None = None, status: int | None = None, latency_ms: float = 0.0,
    provider_id: str | None = None, error_class: str | None = None,
    error_message: str | None = None, superseded_by: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A delivery-result record (schemas/deliveries/delivery_result) for this attempt.
    `superseded_by`: for a `skipped_stale`, the newer delivery of the same entity that the
    ledger found delivered to `target` (`streams.logic.ledger.LedgerState.superseded_by`)."""
    rec = item.record
    return {
        "delivery_id": rec["delivery_id"],
        "event_id": rec["event_id"],
        "event_type": rec["event_type"],
        "destination": destination.value,
        "target": target,
        "integration_id": rec.get("integration_id"),
        "attempt": item.attempt if attempt is None else attempt,
        "outcome": outcome,
        "status_code": status,
        "latency_ms": float(latency_ms),
        "provider_id": provider_id,
        "error_class": error_class,
        "error_message": (error_message or None) and error_message[:500],
        "source_ts_ms": int(rec.get("source_ts_ms") or 0),
        "completed_at_ms": now_ms,
        "aggregate_id": rec.get("aggregate_id") or "",
        "aggregate_version": int(rec.get("aggregate_version") or -1),
        "routed_at_ms": int(rec.get("routed_at_ms") or 0),
        "source_topic": item.topic,
        "source_partition": item.partition,
        "source_offset": item.offset,
        "superseded_by": superseded_by,
        "picked_up_at_ms": item.picked_up_ms,
    }
