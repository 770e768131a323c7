"""CDC change events -> domain events. Pure: a change event and its position in, events out.

The meaning of each table's changes comes from DOMAIN.md:

    form_responses    INSERT                          form.response_received
    journey_progress  UPDATE, completion_percentage   journey.milestone_completed
    wedding_details   UPDATE, wedding_date changed    wedding.date_changed (old and new date)
    core_fields       UPDATE                          client.profile_updated (changed fields)

A change that means nothing (an update that did not touch the watched column) yields no
event. Event ids are derived from the change's id, so a replay yields the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from streams.models import ChangeEvent, DomainEvent, PayloadValue, SourceRef

Rule = Callable[[ChangeEvent], "list[tuple[str, str, str, dict[str, PayloadValue]]]"]

# Columns that are bookkeeping, not profile data: never reported as "changed".
_BOOKKEEPING = frozenset({"updated_at", "created_at", "id", "version"})


def event_id_for(source_event_id: str, event_type: str) -> str:
    """Deterministic id of the `event_type` event derived from one source record."""
    return hashlib.blake2b(f"{source_event_id}|{event_type}".encode(), digest_size=16).hexdigest()


def changed_columns(change: ChangeEvent) -> list[str]:
    """Names of the columns whose value differs between before and after, sorted."""
    before, after = change["before"] or {}, change["after"] or {}
    return sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _form_response(change: ChangeEvent) -> list[tuple[str, str, str, dict[str, PayloadValue]]]:
    if change["op"] != "c" or change["after"] is None:
        return []
    row = change["after"]
    payload: dict[str, PayloadValue] = {
        "form_response_id": _text(row.get("id")),
        "form_id": _text(row.get("form_id")),
        "supplier_id": _text(row.get("supplier_id")),
        "client_id": _text(row.get("client_id")),
    }
    return [("form.response_received", "supplier", str(row.get("supplier_id")), payload)]


def _journey(change: ChangeEvent) -> list[tuple[str, str, str, dict[str, PayloadValue]]]:
    before, after = change["before"], change["after"]
    if change["op"] != "u" or after is None or before is None:
        return []
    if before.get("completion_percentage") == after.get("completion_percentage"):
        return []
    payload: dict[str, PayloadValue] = {
        "journey_id": _text(after.get("journey_id")),
        "supplier_id": _text(after.get("supplier_id")),
        "client_id": _text(after.get("client_id")),
        "old_percentage": _text(before.get("completion_percentage")),
        "new_percentage": _text(after.get("completion_percentage")),
        "milestone": _text(after.get("current_milestone")),
    }
    return [("journey.milestone_completed", "supplier", str(after.get("supplier_id")), payload)]


def _wedding(change: ChangeEvent) -> list[tuple[str, str, str, dict[str, PayloadValue]]]:
    before, after = change["before"], change["after"]
    if change["op"] != "u" or after is None or before is None:
        return []
    if before.get("wedding_date") == after.get("wedding_date"):
        return []
    payload: dict[str, PayloadValue] = {
        "wedding_id": _text(after.get("id")),
        "old_date": _text(before.get("wedding_date")),
        "new_date": _text(after.get("wedding_date")),
    }
    return [("wedding.date_changed", "wedding", str(after.get("id")), payload)]


def _core_fields(change: ChangeEvent) -> list[tuple[str, str, str, dict[str, PayloadValue]]]:
    if change["op"] != "u" or change["after"] is None:
        return []
    fields = [c for c in changed_columns(change) if c not in _BOOKKEEPING]
    if not fields:
        return []
    row = change["after"]
    client = str(row.get("client_id") or row.get("id"))
    payload: dict[str, PayloadValue] = {"client_id": client, "changed_fields": fields}
    return [("client.profile_updated", "client", client, payload)]


RULES: dict[str, Rule] = {
    "form_responses": _form_response,
    "journey_progress": _journey,
    "wedding_details": _wedding,
    "core_fields": _core_fields,
}


def normalize_change(change: ChangeEvent, source: SourceRef) -> list[DomainEvent]:
    """The domain events one row change means; [] when it means nothing we route."""
    rule = RULES.get(change["source"]["table"])
    if rule is None:
        return []
    version = change["source"]["lsn"] or change["source_ts_ms"]
    tx = change["source"]["tx_id"]
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
            organization_id=None,
        )
        for event_type, aggregate_type, aggregate_id, payload in rule(change)
    ]
