"""Builders of realistic inputs for the pure-logic tests."""

from __future__ import annotations

import json

from streams import topics
from streams.dev.samples import change_event
from streams.logic.state import RoutingState, StateTables
from streams.models import ColumnValue, DomainEvent, PayloadValue, SourceRef

CDC_REF = SourceRef(
    kind="cdc",
    topic=topics.INGEST_CDC.name,
    partition=0,
    offset=7,
    lsn=1,
    commit_lsn=1,
    state_lsn=None,
    delivery_id=None,
    table="t",
)
WEDDING = "w-2027-0612"


def event(
    event_type: str,
    payload: dict[str, PayloadValue],
    *,
    aggregate_id: str = "agg",
    event_id: str = "ev-1",
) -> DomainEvent:
    return DomainEvent(
        event_id=event_id,
        event_type=event_type,
        aggregate_type="wedding",
        aggregate_id=aggregate_id,
        aggregate_version=42,
        occurred_at_ms=1_800_000_000_000,
        correlation_id=None,
        source_ts_ms=1_800_000_000_000,
        source=CDC_REF,
        payload=payload,
        organization_id=None,
    )


def supplier_row(
    supplier_id: str, *, channels: list[str] | None = None, **extra: ColumnValue
) -> dict[str, ColumnValue]:
    """A suppliers row as the CDC source carries it (contract columns; jsonb as JSON text)."""
    prefs: dict[str, object] = {"phone": "+447700900001", "slack_channel": f"C-{supplier_id}"}
    if channels is not None:
        prefs["realtime_channels"] = channels
    row: dict[str, ColumnValue] = {
        "id": supplier_id,
        "business_name": f"{supplier_id} Ltd",
        "email": f"{supplier_id}@x.io",
        "notification_preferences": json.dumps(prefs),
    }
    row.update(extra)
    return row


def routing_state_with(*rows: tuple[str, dict[str, ColumnValue]]) -> RoutingState:
    """Rows and indexes folded from inserts of (table, row) pairs."""
    state = RoutingState()
    for lsn, (table, row) in enumerate(rows, start=1):
        state.apply_change(change_event(table, "c", after=row, lsn=lsn, commit_ms=1))
    return state


def state_with(*rows: tuple[str, dict[str, ColumnValue]]) -> StateTables:
    """The routing indexes folded from inserts of (table, row) pairs."""
    return routing_state_with(*rows).tables


def wedding_state() -> StateTables:
    """A photographer and a venue serve WEDDING; each has integrations and a calendar."""
    return state_with(
        ("suppliers", supplier_row("s-photo")),
        ("suppliers", supplier_row("s-venue")),
        (
            "wedding_vendors",
            {
                "id": "wv-1",
                "wedding_id": WEDDING,
                "vendor_id": "s-photo",
                "vendor_type": "photographer",
            },
        ),
        (
            "wedding_vendors",
            {"id": "wv-2", "wedding_id": WEDDING, "vendor_id": "s-venue", "vendor_type": "venue"},
        ),
        (
            "supplier_integrations",
            {
                "id": "si-crm",
                "supplier_id": "s-photo",
                "integration_type": "photography_crm",
                "webhook_url": "https://crm.example/hook",
                "is_active": True,
            },
        ),
        (
            "supplier_integrations",
            {
                "id": "si-cal",
                "supplier_id": "s-photo",
                "integration_type": "google_calendar",
                "settings": json.dumps({"calendar_id": "photo@group.calendar.google.com"}),
                "is_active": True,
            },
        ),
        (
            "supplier_integrations",
            {
                "id": "si-cal2",
                "supplier_id": "s-venue",
                "integration_type": "outlook_calendar",
                "is_active": True,
            },
        ),
        (
            "venue_integrations",
            {
                "id": "vi-1",
                "venue_id": "s-venue",
                "webhook_url": "https://venue.example/api",
                "is_active": True,
            },
        ),
    )


def date_changed(**extra: PayloadValue) -> DomainEvent:
    payload: dict[str, PayloadValue] = {
        "wedding_id": WEDDING,
        "old_date": "2027-06-12",
        "new_date": "2027-06-19",
        "client_name": "Alex & Sam",
        "venue_name": "Oak Barn",
        "ceremony_time": "14:00",
        "guest_count": 120,
        "time_zone": "Europe/London",
        "photographer_notes": "golden hour",
        "setup_time": "10:00",
        "reception_start": "17:00",
        "special_requirements": "step-free",
        "coordinator_notes": "call Jo",
        "client_id": "c-1",
        "booking_id": None,
        "updated_at": "2026-11-22T10:00:00+00:00",
    }
    payload.update(extra)
    return event("wedding.date_changed", payload, aggregate_id=WEDDING)
