"""Sample CDC change events and inbound webhooks, used by `make run` and by tests that need
realistic input."""

from __future__ import annotations

import json
import time

from streams.models import ChangeEvent, ColumnValue, InboundWebhook
from streams.topics import primary_key_text


def change_event(
    table: str,
    op: str,
    *,
    before: dict[str, ColumnValue] | None = None,
    after: dict[str, ColumnValue] | None = None,
    lsn: int,
    tx_id: int = 1,
    commit_ms: int | None = None,
    primary_key: tuple[str, ...] = ("id",),
    state_lsn: int | None = None,
) -> ChangeEvent:
    commit = int(time.time() * 1000) if commit_ms is None else commit_ms
    row = after or before or {}
    pk = primary_key_text(primary_key, row)
    return ChangeEvent(
        event_id=f"wedsync:{lsn}:{table}:{pk}",
        op=op,  # type: ignore[typeddict-item]
        before=before,
        after=after,
        primary_key=list(primary_key),
        source={
            "connector": "postgres",
            "db": "wedsync",
            "schema": "public",
            "table": table,
            "lsn": lsn,
            "commit_lsn": lsn,
            "state_lsn": state_lsn,
            "tx_id": tx_id,
            "ts_ms": commit,
            "snapshot": op == "r",
        },
        ts_ms=commit,
        source_ts_ms=commit,
    )


def demo_changes(base_lsn: int = 1000) -> list[ChangeEvent]:
    """A couple answers a form, a journey advances, a wedding moves, a profile changes, and
    one update that means nothing (no event expected)."""
    wedding = "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01"
    couple = "0f6c1d6e-8b7a-4f35-b0a4-5d1e2c3b4a50"
    photo = "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e11"
    wedding_row: dict[str, ColumnValue] = {
        "id": wedding, "couple_id": couple, "wedding_date": "2027-06-12",
        "bride_name": "Alex", "groom_name": "Sam", "ceremony_time": "14:00:00",
        "venue_name": "Oak Barn", "guest_count": 120,
    }  # fmt: skip
    journey: dict[str, ColumnValue] = {
        "id": "5d2b8f4a-6c1e-4a9b-9e7d-3f1a2b4c6d8e", "supplier_id": photo, "couple_id": couple,
        "client_name": "Alex & Sam", "milestone_name": "contract signed",
        "completion_percentage": "40.00",
    }  # fmt: skip
    profile: dict[str, ColumnValue] = {
        "id": "7e9a1c3b-5d7f-4b2a-8c6e-0a2b4c6d8e0f", "couple_id": couple,
        "partner1_name": "Alex", "partner2_name": "Sam", "phone": "+447700900123",
    }  # fmt: skip
    return [
        change_event(
            "form_responses",
            "c",
            lsn=base_lsn + 1,
            after={
                "id": "c2d4e6f8-0a1b-4c3d-9e5f-7a9b1c3d5e7f",
                "supplier_id": photo,
                "couple_id": couple,
                "client_name": "Alex & Sam",
                "form_name": "Wedding day",
                "question_count": 12,
                "submitted_at": "2026-11-30T10:00:00+00:00",
            },
        ),
        change_event(
            "journey_progress",
            "u",
            lsn=base_lsn + 2,
            before=journey,
            after={**journey, "completion_percentage": "60.00"},
        ),
        change_event(
            "wedding_details",
            "u",
            lsn=base_lsn + 3,
            before=wedding_row,
            after={**wedding_row, "wedding_date": "2027-06-19"},
        ),
        change_event(
            "core_fields",
            "u",
            lsn=base_lsn + 4,
            before=profile,
            after={**profile, "partner2_name": "Samira"},
        ),
        change_event(
            "wedding_details",
            "u",
            lsn=base_lsn + 5,
            before={**wedding_row, "wedding_date": "2027-06-19"},
            after={**wedding_row, "wedding_date": "2027-06-19", "venue_name": "Elm Hall"},
        ),
    ]


def inbound_webhook(
    body: object = b"", *, headers: dict[str, str] | None = None, source: str = "honeybook"
) -> InboundWebhook:
    """A verified webhook as the gateway stores it; `body` is bytes, or JSON-encoded."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundWebhook(
        event_id="wh-1",
        source=source,
        verification="hmac_sha256",
        delivery_id="d-1",
        headers=headers or {},
        content_type="application/json",
        body=raw,
        received_at_ms=1_800_000_000_500,
        source_ts_ms=1_800_000_000_000,
    )
