"""Helpers for the agent integration tests: a wedding's state as CDC rows, producing, and
reading every deliver topic."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from streams import topics
from streams.dev.cdc_like import wait_for_table
from streams.dev.samples import change_event
from streams.kafka.codec import TopicCodecs
from streams.logic.state import RoutingState, StateTables
from streams.models import ChangeEvent, ColumnValue, SourceRef

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
