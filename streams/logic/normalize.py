"""CDC change events and verified webhooks -> domain events. Pure: a record and its position
in, events out.

The meaning of each table's changes comes from DOMAIN.md:

    form_responses    INSERT                          form.response_received
    journey_progress  UPDATE, completion_percentage   journey.milestone_completed
    wedding_details   UPDATE, wedding_date changed    wedding.date_changed (old and new date)
    core_fields       UPDATE                          client.profile_updated (changed fields)
    suppliers         UPDATE, status changed          vendor.status_changed
    WEBHOOK_TABLES    INSERT / UPDATE / DELETE        record.changed ('<table>.<op>' for
                                                      customer webhooks, allow-listed columns)

Webhooks (calendar providers, vendor CRMs) are normalized by `normalize_webhook`, implemented
in `streams.logic.inbound` and re-exported here.

A change that means nothing (an update that did not touch the watched column, a snapshot
read) yields no event. Event ids are derived from the source record's id, so a replay yields
the same ids. `aggregate_version` is the source LSN (commit time when the LSN is unknown).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from streams.logic.inbound import normalize_webhook
from streams.models import ChangeEvent, ColumnValue, DomainEvent, PayloadValue, SourceRef

__all__ = [
    "WEBHOOK_TABLES",
    "changed_columns",
    "event_id_for",
    "normalize_change",
    "normalize_webhook",
]

Emitted = list[tuple[str, str, str, dict[str, PayloadValue]]]
Rule = Callable[[ChangeEvent], Emitted]

# Columns that are bookkeeping, not profile data: never reported as "changed".
_BOOKKEEPING = frozenset({"updated_at", "created_at", "id", "version"})

OP_NAMES = {"c": "insert", "u": "update", "d": "delete"}

# Tables whose changes customers may subscribe to ('<table>.<op>'), and the only columns of
# each that an outbound webhook body may carry (PII minimization: no emails, phone numbers,
# free-text answers, secrets). Names are the source contract's (streams.logic.contract).
WEBHOOK_TABLES: dict[str, tuple[str, ...]] = {
    "form_responses": (
        "id",
        "supplier_id",
        "couple_id",
        "form_name",
        "question_count",
        "submitted_at",
    ),
    "journey_progress": (
        "id",
        "supplier_id",
        "couple_id",
        "milestone_name",
        "completion_percentage",
        "completed_at",
    ),
    "wedding_details": (
        "id",
        "couple_id",
        "wedding_date",
        "ceremony_time",
        "venue_name",
        "guest_count",
        "time_zone",
        "updated_at",
    ),
    "core_fields": ("id", "couple_id", "updated_at"),
}

# wedding.date_changed payload field <- wedding_details column: what CRMs, venues and
# calendars need (DOMAIN.md's photography-CRM and venue-booking payloads).
_WEDDING_FIELDS = {
    "couple_id": "couple_id",
    "client_id": "couple_id",
    "ceremony_time": "ceremony_time",
    "reception_time": "reception_time",
    "setup_time": "setup_time",
    "venue_id": "venue_id",
    "venue_name": "venue_name",
    "guest_count": "guest_count",
    "time_zone": "time_zone",
    "photographer_notes": "special_requests",
    "special_requirements": "special_requests",
    "coordinator_notes": "venue_notes",
    "updated_at": "updated_at",
}


def event_id_for(source_event_id: str, event_type: str) -> str:
    """Deterministic id of the `event_type` event derived from one source record."""
    return hashlib.blake2b(f"{source_event_id}|{event_type}".encode(), digest_size=16).hexdigest()


def changed_columns(change: ChangeEvent) -> list[str]:
    """Names of the columns whose value differs between before and after, sorted. A column
    absent from `after` was not sent (unchanged TOAST): it did not change."""
    before, after = change["before"] or {}, change["after"] or {}
    if not after:
        return []
    return sorted(k for k in after if k not in before or before[k] != after[k])


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _scalar(value: ColumnValue) -> PayloadValue:
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return value


def _couple_name(row: dict[str, ColumnValue]) -> str | None:
    """'A & B' from a wedding's bride_name and groom_name."""
    names = [str(row[c]) for c in ("bride_name", "groom_name") if row.get(c)]
    return " & ".join(names) if names else None


def _form_response(change: ChangeEvent) -> Emitted:
    if change["op"] != "c" or change["after"] is None:
        return []
    row = change["after"]
    payload: dict[str, PayloadValue] = {
        "form_response_id": _text(row.get("id")),
        "form_name": _text(row.get("form_name")),
        "supplier_id": _text(row.get("supplier_id")),
        "client_id": _text(row.get("couple_id")),
        "client_name": _text(row.get("client_name")),
        "question_count": _scalar(row.get("question_count")),
    }
    return [("form.response_received", "supplier", str(row.get("supplier_id")), payload)]


def _journey(change: ChangeEvent) -> Emitted:
    before, after = change["before"], change["after"]
    if change["op"] != "u" or after is None or before is None:
        return []
    if before.get("completion_percentage") == after.get("completion_percentage"):
        return []
    payload: dict[str, PayloadValue] = {
        "journey_id": _text(after.get("id")),
        "supplier_id": _text(after.get("supplier_id")),
        "client_id": _text(after.get("couple_id")),
        "client_name": _text(after.get("client_name")),
        "old_percentage": _text(before.get("completion_percentage")),
        "new_percentage": _text(after.get("completion_percentage")),
        "milestone": _text(after.get("milestone_name")),
    }
    return [("journey.milestone_completed", "supplier", str(after.get("supplier_id")), payload)]


def _wedding(change: ChangeEvent) -> Emitted:
    before, after = change["before"], change["after"]
    if change["op"] != "u" or after is None or before is None:
        return []
    if before.get("wedding_date") == after.get("wedding_date"):
        return []
    payload: dict[str, PayloadValue] = {
        "wedding_id": _text(after.get("id")),
        "old_date": _text(before.get("wedding_date")),
        "new_date": _text(after.get("wedding_date")),
        "client_name": _couple_name(after),
    }
    for name, column in _WEDDING_FIELDS.items():
        payload[name] = _scalar(after.get(column))
    return [("wedding.date_changed", "wedding", str(after.get("id")), payload)]


def _core_fields(change: ChangeEvent) -> Emitted:
    if change["op"] != "u" or change["after"] is None:
        return []
    fields = [c for c in changed_columns(change) if c not in _BOOKKEEPING]
    if not fields:
        return []
    couple = _text(change["after"].get("couple_id"))
    if couple is None:
        return []
    payload: dict[str, PayloadValue] = {"client_id": couple, "couple_id": couple,
                                        "changed_fields": fields}  # fmt: skip
    client = couple
    return [("client.profile_updated", "client", client, payload)]


def _supplier_status(change: ChangeEvent) -> Emitted:
    before, after = change["before"], change["after"]
    if change["op"] != "u" or after is None or before is None:
        return []
    if "status" not in after or before.get("status") == after.get("status"):
        return []
    supplier = str(after.get("id"))
    payload: dict[str, PayloadValue] = {
        "supplier_id": supplier,
        "old_status": _text(before.get("status")),
        "new_status": _text(after.get("status")),
    }
    return [("vendor.status_changed", "vendor", supplier, payload)]


def _record_changed(change: ChangeEvent) -> Emitted:
    """'<table>.<op>' for customer webhooks: allow-listed columns only, as 'row.<column>'."""
    columns = WEBHOOK_TABLES.get(change["source"]["table"])
    op = OP_NAMES.get(change["op"])
    if columns is None or op is None:
        return []
    row = change["after"] if change["after"] is not None else (change["before"] or {})
    table = change["source"]["table"]
    wedding = _text(
        row.get("wedding_id") or (row.get("id") if table == "wedding_details" else None)
    )
    supplier = _text(row.get("supplier_id"))
    payload: dict[str, PayloadValue] = {
        "table": table,
        "op": op,
        "record_id": _text(row.get("id")),
        "supplier_id": supplier,
        "wedding_id": wedding,
        "client_id": _text(row.get("couple_id")),
        "couple_id": _text(row.get("couple_id")),
        "changed_fields": changed_columns(change) if op == "update" else [],
    }
    for column in columns:
        if column in row:
            payload[f"row.{column}"] = _scalar(row[column])
    if wedding is not None:
        return [("record.changed", "wedding", wedding, payload)]
    if supplier is not None:
        return [("record.changed", "supplier", supplier, payload)]
    return [("record.changed", "record", f"{table}:{payload['record_id']}", payload)]


RULES: dict[str, tuple[Rule, ...]] = {
    "form_responses": (_form_response, _record_changed),
    "journey_progress": (_journey, _record_changed),
    "wedding_details": (_wedding, _record_changed),
    "core_fields": (_core_fields, _record_changed),
    "suppliers": (_supplier_status,),
}


def normalize_change(change: ChangeEvent, source: SourceRef) -> list[DomainEvent]:
    """The domain events one row change means; [] when it means nothing we route.

    Snapshot reads (op 'r') never mean anything here: they only feed the state tables.
    """
    rules = RULES.get(change["source"]["table"])
    if rules is None or change["op"] == "r":
        return []
    version = change["source"]["lsn"] or change["source_ts_ms"]
    tx = change["source"]["tx_id"]
    row = change["after"] or change["before"] or {}
    org = _text(row.get("organization_id"))
    return [
        DomainEvent(
            event_id=event_id_for(change["event_id"], event_type),
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at_ms=change["source"]["ts_ms"],
            correlation_id=None if tx is None else f"tx:{tx}",
            source_ts_ms=change["source_ts_ms"],
            source=source,
            payload=payload,
            organization_id=org,
        )
        for rule in rules
        for event_type, aggregate_type, aggregate_id, payload in rule(change)
    ]
