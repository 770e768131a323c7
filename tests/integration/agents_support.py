"""Helpers for the agent integration tests: a wedding's state as CDC rows, producing, and
reading every deliver topic."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from streams import topics
from streams.kafka.codec import TopicCodecs
from streams.logic.state import STATE_TABLES, RoutingState, StateTables
from streams.models import ChangeEvent, ColumnValue, SourceRef
from streams.samples import change_event
from streams.topics import change_key

WEDDING = "w-2027-0612"


# A source position for calling the normalizer directly (the tests predict its output).
SOURCE = SourceRef(kind="cdc", topic="", partition=0, offset=0, lsn=None, commit_lsn=None,
                   state_lsn=None,
                   delivery_id=None, table=None)  # fmt: skip


def supplier(supplier_id: str, channels: list[str] | None = None) -> dict[str, ColumnValue]:
    prefs: dict[str, Any] = {"phone": "+447700900001", "slack_channel": f"C-{supplier_id}"}
    if channels is not None:
        prefs["realtime_channels"] = channels
    return {
        "id": supplier_id, "business_name": f"{supplier_id} Ltd", "email": f"{supplier_id}@x.io",
        "notification_preferences": json.dumps(prefs),
    }  # fmt: skip


def wedding_rows(wedding: str = WEDDING, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """A photographer (CRM + Google calendar) and a venue (booking system + Outlook)."""
    photo, venue = f"{prefix}s-photo", f"{prefix}s-venue"
    return [
        ("suppliers", supplier(photo)),
        ("suppliers", supplier(venue, ["email", "sms", "inapp"])),
        ("wedding_vendors", {"id": f"{prefix}wv-1", "wedding_id": wedding, "vendor_id": photo,
                             "vendor_type": "photographer"}),
        ("wedding_vendors", {"id": f"{prefix}wv-2", "wedding_id": wedding, "vendor_id": venue,
                             "vendor_type": "venue"}),
        ("supplier_integrations", {"id": f"{prefix}si-crm", "supplier_id": photo,
                                   "integration_type": "photography_crm",
                                   "webhook_url": "https://crm.example/hook", "is_active": True}),
        ("supplier_integrations", {"id": f"{prefix}si-cal", "supplier_id": photo,
                                   "integration_type": "google_calendar",
                                   "settings": json.dumps(
                                       {"calendar_id": "photo@group.calendar.google.com"}),
                                   "is_active": True}),
        ("supplier_integrations", {"id": f"{prefix}si-cal2", "supplier_id": venue,
                                   "integration_type": "outlook_calendar", "is_active": True}),
        ("venue_integrations", {"id": f"{prefix}vi-1", "venue_id": venue,
                                "webhook_url": "https://venue.example/api", "is_active": True}),
    ]  # fmt: skip


def state_changes(rows: Iterable[tuple[str, dict[str, Any]]], lsn: int = 1) -> list[ChangeEvent]:
    return [change_event(t, "c", after=row, lsn=lsn + i) for i, (t, row) in enumerate(rows)]


def state_of(changes: Iterable[ChangeEvent]) -> StateTables:
    state = RoutingState()
    for change in changes:
        state.apply_change(change)
    return state.tables


def date_change(wedding: str, lsn: int, old: str, new: str) -> ChangeEvent:
    before = {"id": wedding, "wedding_date": old, "venue_name": "Oak Barn", "guest_count": 120,
              "ceremony_time": "14:00:00", "time_zone": "Europe/London", "couple_id": "c-1",
              "bride_name": "Alex", "groom_name": "Sam"}  # fmt: skip
    return change_event("wedding_details", "u", lsn=lsn, before=before,
                        after={**before, "wedding_date": new})  # fmt: skip


class CdcLike:
    """Writes changes as the CDC source does, each change its own transaction: to
    wedsync.ingest.cdc with `state_lsn` (the last state-changing commit so far), state-table
    changes also to wedsync.ingest.state, and `beat()` a heartbeat of the last commit LSN
    there when a state change is not yet covered by one."""

    def __init__(self, bootstrap: str, codecs: TopicCodecs, linger_ms: float = 1) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms,
                                  "queue.buffering.max.messages": 1_000_000})  # fmt: skip
        self.codec, self.state_codec = codecs[topics.INGEST_CDC], codecs[topics.INGEST_STATE]
        self.last = self.state_lsn = self.beaten = 0

    def send(self, change: ChangeEvent) -> None:
        key = change_key(change)
        commit = change["source"]["commit_lsn"] or 0
        self.last = max(self.last, commit)
        is_state = change["source"]["table"] in STATE_TABLES
        if is_state:
            self.state_lsn = max(self.state_lsn, commit)
        source = {**change["source"], "state_lsn": self.state_lsn or None}
        stamped: ChangeEvent = {**change, "source": source}  # type: ignore[typeddict-item]
        self.producer.produce(topics.INGEST_CDC.name, self.codec.encode(stamped), key)
        if is_state:
            self.producer.produce(topics.INGEST_STATE.name, self.state_codec.encode(stamped), key)

    def beat(self) -> None:
        if self.state_lsn > self.beaten:
            beat = self.state_codec.encode(change_event("", "h", lsn=self.last))
            self.producer.produce(topics.INGEST_STATE.name, beat, b"~heartbeat")
            self.beaten = self.last

    def flush(self, timeout: float = 30) -> None:
        self.beat()
        assert self.producer.flush(timeout) == 0


def produce_changes(bootstrap: str, codecs: TopicCodecs, changes: Iterable[ChangeEvent]) -> None:
    """`changes` as the CDC source writes them, then a heartbeat."""
    cdc = CdcLike(bootstrap, codecs)
    for change in changes:
        cdc.send(change)
    cdc.flush(10)


def wait_for_table(
    bootstrap: str, changelog: str, done: Any, timeout: float = 90.0
) -> dict[Any, Any]:
    """Read a Faust table's changelog (JSON keys and values) until `done(table)` holds for
    the latest value of each key; returns that table."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "probe",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 500,
        }
    )
    consumer.assign([TopicPartition(changelog, 0, 0)])
    table: dict[Any, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while not done(table):
            assert time.monotonic() < deadline, f"{changelog}: {table}"
            for msg in consumer.consume(500, 0.2):
                if not msg.error():
                    table[json.loads(msg.key() or b"null")] = json.loads(msg.value() or b"null")
    finally:
        consumer.close()
    return table


class DeliveryReader:
    """Reads every deliver topic from the start; decoded records by destination."""

    def __init__(self, bootstrap: str, codecs: TopicCodecs) -> None:
        self.codecs = codecs
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                                  "enable.auto.commit": False})  # fmt: skip
        self.consumer.assign([
            TopicPartition(t.deliver.name, p, 0)
            for t in topics.DELIVER.values() for p in range(t.deliver.partitions)
        ])  # fmt: skip
        self.by_topic = {t.deliver.name: d for d, t in topics.DELIVER.items()}
        self.records: list[tuple[topics.Destination, dict[str, Any]]] = []

    def read_until(self, predicate: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.records):
            assert time.monotonic() < deadline, f"timed out with {len(self.records)} deliveries"
            for msg in self.consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                dest = self.by_topic[msg.topic()]
                record = self.codecs[topics.DELIVER[dest].deliver].decode(msg.value())
                self.records.append((dest, record))

    def close(self) -> None:
        self.consumer.close()


def wait_for_wedding_state(bootstrap: str, app_id: str, prefix: str) -> None:
    """Until the worker has folded the 8 rows of `wedding_rows(..., prefix)` into its state."""
    wait_for_table(
        bootstrap,
        topics.app_topics(app_id).state_rows_changelog.name,
        lambda table: sum(1 for k, v in table.items() if f":{prefix}" in k and v) == 8,
    )
