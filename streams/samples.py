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
    wedding = "w-2027-0612"
    return [
        change_event(
            "form_responses",
            "c",
            lsn=base_lsn + 1,
            after={
                "id": "fr-1",
                "form_id": "f-7",
                "supplier_id": "s-photo",
                "client_id": "c-1",
            },
        ),
        change_event(
            "journey_progress",
            "u",
            lsn=base_lsn + 2,
            before={
                "id": "jp-1",
                "supplier_id": "s-photo",
                "client_id": "c-1",
                "completion_percentage": 40,
            },
            after={
                "id": "jp-1",
                "supplier_id": "s-photo",
                "client_id": "c-1",
                "completion_percentage": 60,
                "current_milestone": "contract signed",
            },
        ),
        change_event(
            "wedding_details",
            "u",
            lsn=base_lsn + 3,
            before={"id": wedding, "wedding_date": "2027-06-12", "venue_name": "Oak Barn"},
            after={"id": wedding, "wedding_date": "2027-06-19", "venue_name": "Oak Barn"},
        ),
        change_event(
            "core_fields",
            "u",
            lsn=base_lsn + 4,
            before={"id": "cf-1", "client_id": "c-1", "partner_name": "Sam", "phone": "1"},
            after={"id": "cf-1", "client_id": "c-1", "partner_name": "Samira", "phone": "1"},
        ),
        change_event(
            "wedding_details",
            "u",
            lsn=base_lsn + 5,
            before={"id": wedding, "wedding_date": "2027-06-19", "venue_name": "Oak Barn"},
            after={"id": wedding, "wedding_date": "2027-06-19", "venue_name": "Elm Hall"},
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
