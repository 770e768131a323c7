"""`wedsync dlq list|replay <kind>`: read a destination's dead letters, filter them, and put
chosen ones back on its deliver topic.

A dead letter holds the delivery record's original bytes, so a replay re-sends exactly what
routing wrote (with the attempt count reset). The replayed copy carries
`wedsync.sink.replay_of` so the sink delivers it even to a target it disabled; the ledger
still refuses one already delivered or stale, so replaying twice never sends twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer
from streams.errors import BrokerUnavailable, DecodeError
from streams.kafka.codec import AvroCodec
from streams.kafka.connection import Kafka, client_config
from streams.kafka.deadletter import H_ERROR_CLASS, H_FAILED_AT, H_REASON, header_map
from streams.kafka.replay import read_topic
from streams.topics import DELIVER, Destination

from connectors.sinks import envelope


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    record: dict[str, Any] | None  # None when the bytes are not a delivery record

    @property
    def failed_at_ms(self) -> int:
        try:
            return int(self.headers.get(H_FAILED_AT, "0"))
        except ValueError:
            return 0

    @property
    def error_class(self) -> str:
        return self.headers.get(H_ERROR_CLASS, "")

    @property
    def event_id(self) -> str:
        return self.headers.get(envelope.H_EVENT_ID) or str((self.record or {}).get("event_id", ""))

    @property
    def target(self) -> str:
        return self.headers.get(envelope.H_TARGET, "")

    def line(self) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.failed_at_ms / 1000))
        attempts = self.headers.get(envelope.H_ATTEMPTS, "?")
        reason = self.headers.get(H_REASON, "")
        return (
            f"{self.partition}:{self.offset}  {when}  {self.error_class:<24} "
            f"attempts={attempts:<3} event={self.event_id} target={self.target}  {reason}"
        )


@dataclass(frozen=True)
class DlqFilter:
    """Every given criterion must match (times in ms since the epoch, inclusive)."""

    since_ms: int | None = None
    until_ms: int | None = None
    event_id: str | None = None
    target: str | None = None
    error_class: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        failed = letter.failed_at_ms
        return (
            (self.since_ms is None or failed >= self.since_ms)
            and (self.until_ms is None or failed <= self.until_ms)
            and (self.event_id is None or letter.event_id == self.event_id)
            and (self.target is None or letter.target == self.target)
            and (self.error_class is None or letter.error_class == self.error_class)
        )


def read_dead_letters(
    bootstrap: Kafka, destination: Destination, codec: AvroCodec, *, timeout: float = 30.0
) -> list[DeadLetter]:
    """Every dead letter of `destination` there is now, oldest first per partition."""
    out: list[DeadLetter] = []

    def keep(msg: Any) -> None:
        value = msg.value() or b""
        try:
            record: dict[str, Any] | None = codec.decode(value)
        except DecodeError:
            record = None
        headers = header_map(msg.headers())
        out.append(DeadLetter(msg.partition(), msg.offset(), msg.key(), value, headers, record))

    read_topic(bootstrap, DELIVER[destination].dlq, keep, timeout=timeout)
    return sorted(out, key=lambda d: (d.failed_at_ms, d.partition, d.offset))


def replay(
    bootstrap: Kafka, destination: Destination, letters: list[DeadLetter], *, dry_run: bool
) -> list[DeadLetter]:
    """Put `letters` back on the deliver topic (unless `dry_run`); returns what was (or
    would be) re-sent. Letters whose bytes are not a delivery record are never replayed."""
    chosen = [d for d in letters if d.record is not None]
    if dry_run or not chosen:
        return chosen
    producer = Producer(client_config(bootstrap, {"enable.idempotence": True}))
    topic = DELIVER[destination]
    for letter in chosen:
        position = f"{topic.dlq.name}:{letter.partition}:{letter.offset}"
        headers: list[tuple[str, str | bytes | None]] = [(envelope.H_REPLAY_OF, position)]
        producer.produce(topic.deliver.name, letter.value, letter.key, headers=headers)
    if producer.flush(30):
        raise BrokerUnavailable("replayed records not acknowledged in 30 s; run it again")
    return chosen
