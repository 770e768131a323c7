"""Event-sourced routing state: pure reducers folding CDC changes of the state tables.

Four state tables, each a mapping the lead keeps as a Faust (global) table:

    suppliers          supplier_id -> SupplierState
    wedding_vendors    wedding_id  -> {wedding_vendors row id -> VendorLink}
    webhook_endpoints  supplier_id -> {endpoint id -> WebhookEndpointState}
    integrations       supplier_id -> {"<table>:<row id>" -> IntegrationState}
                       (supplier_integrations, venue_integrations, email_integrations)

`state_updates(change)` says what one change does as a list of `StateUpdate`s (table, key,
entry id, new entry or None to remove it); `apply_update(current, update)` is the reducer for
one key: it returns the new value, or None when the key should be deleted. Values are never
mutated in place (a Faust table only persists what is assigned), so `apply_change(tables,
change)` works on plain dicts and on Faust tables alike.

Secrets never enter state: `secret_key` and integration credentials stay in the database;
sinks look them up by endpoint or integration id. A delete removes the entry; a row whose
key column changed (a vendor moved to another wedding) is removed from its old key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypedDict

from streams.models import ChangeEvent, ColumnValue

Row = dict[str, ColumnValue]


class SupplierState(TypedDict):
    supplier_id: str
    name: str | None
    email: str | None
    phone: str | None
    slack_channel: str | None
    user_id: str
    realtime_channels: list[str] | None  # None: the supplier chose nothing, use defaults
    organization_id: str | None


class VendorLink(TypedDict):
    supplier_id: str
    vendor_type: str | None


class WebhookEndpointState(TypedDict):
    endpoint_id: str
    supplier_id: str
    endpoint_url: str
    subscribed_events: list[str]
    is_active: bool


class IntegrationState(TypedDict):
    integration_id: str
    source_table: str  # supplier_integrations | venue_integrations | email_integrations
    supplier_id: str
    integration_type: str  # e.g. photography_crm, google_calendar, venue_booking, mailchimp
    endpoint_url: str | None
    calendar_id: str | None
    auth_scheme: str | None
    time_zone: str | None
    is_active: bool


StateValue = SupplierState | dict[str, Any]


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """Set (`entry` not None) or remove (`entry` None) one entry under one key of a table.

    `entry_id` None means the entry is the whole value of the key (the suppliers table).
    """

    table: str
    key: str
    entry_id: str | None
    entry: Any


@dataclass(frozen=True, slots=True)
class StateTables:
    """The routing state; plain dicts in tests, Faust tables in the worker."""

    suppliers: MutableMapping[str, SupplierState]
    wedding_vendors: MutableMapping[str, dict[str, VendorLink]]
    webhook_endpoints: MutableMapping[str, dict[str, WebhookEndpointState]]
    integrations: MutableMapping[str, dict[str, IntegrationState]]

    @classmethod
    def empty(cls) -> StateTables:
        return cls({}, {}, {}, {})


STATE_TABLES = frozenset(
    {
        "suppliers",
        "wedding_vendors",
        "webhook_endpoints",
        "supplier_integrations",
        "venue_integrations",
        "email_integrations",
    }
)


def _json_text(value: ColumnValue) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _str(value: ColumnValue) -> str | None:
    return None if value is None or value == "" else str(value)


def _bool(value: ColumnValue, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() in ("t", "true", "1", "yes")
    return bool(value)


def supplier_state(row: Row) -> SupplierState:
    """A suppliers row as SupplierState; `notification_preferences` is JSON text holding
    `realtime_channels` (and optionally `slack_channel`, `phone`)."""
    prefs = _json_text(row.get("notification_preferences"))
    prefs = prefs if isinstance(prefs, dict) else {}
    channels = prefs.get("realtime_channels")
    supplier = str(row["id"])
    return SupplierState(
        supplier_id=supplier,
        name=_str(row.get("business_name")) or _str(row.get("name")),
        email=_str(row.get("email")),
        phone=_str(row.get("phone")) or _str(prefs.get("phone")),
        slack_channel=_str(row.get("slack_channel_id")) or _str(prefs.get("slack_channel")),
        user_id=_str(row.get("user_id")) or supplier,
        realtime_channels=[str(c) for c in channels] if isinstance(channels, list) else None,
        organization_id=_str(row.get("organization_id")),
    )


def _webhook_endpoint(row: Row) -> WebhookEndpointState:
    events = _json_text(row.get("subscribed_events"))
    return WebhookEndpointState(
        endpoint_id=str(row["id"]),
        supplier_id=str(row.get("supplier_id")),
        endpoint_url=str(row.get("endpoint_url") or ""),
        subscribed_events=[str(e) for e in events] if isinstance(events, list) else [],
        is_active=_bool(row.get("is_active")),
    )


_TYPE_COLUMNS = ("integration_type", "system_type", "provider", "type")
_URL_COLUMNS = ("endpoint_url", "webhook_url", "api_url", "api_endpoint", "url")
_DEFAULT_TYPE = {"venue_integrations": "venue_booking", "email_integrations": "email_marketing"}


def _integration(table: str, row: Row) -> IntegrationState:
    settings = _json_text(row.get("settings"))
    settings = settings if isinstance(settings, dict) else {}
    kind = next((str(row[c]) for c in _TYPE_COLUMNS if row.get(c)), _DEFAULT_TYPE.get(table, ""))
    url = next((str(row[c]) for c in _URL_COLUMNS if row.get(c)), None)
    return IntegrationState(
        integration_id=str(row["id"]),
        source_table=table,
        supplier_id=str(row.get("supplier_id") or row.get("venue_id")),
        integration_type=kind,
        endpoint_url=url or _str(settings.get("endpoint_url")),
        calendar_id=_str(row.get("calendar_id")) or _str(settings.get("calendar_id")),
        auth_scheme=_str(row.get("auth_scheme")) or _str(settings.get("auth_scheme")),
        time_zone=_str(row.get("time_zone")) or _str(settings.get("time_zone")),
        is_active=_bool(row.get("is_active")),
    )


def _keyed(table: str, key_column: str, change: ChangeEvent, entry: Any) -> list[StateUpdate]:
    """Remove the entry from the old key when the key moved or the row is gone; set it at
    the new key when the row exists."""
    before, after = change["before"], change["after"]
    row = after if after is not None else before
    if row is None or row.get("id") is None:
        return []
    entry_id = str(row["id"]) if table != "integrations" else entry_key(change)
    out: list[StateUpdate] = []
    old_key = None if before is None else before.get(key_column)
    new_key = None if after is None else after.get(key_column)
    if old_key is not None and (after is None or old_key != new_key):
        out.append(StateUpdate(table, str(old_key), entry_id, None))
    if after is not None and new_key is not None:
        out.append(StateUpdate(table, str(new_key), entry_id, entry))
    return out


def entry_key(change: ChangeEvent) -> str:
    """Entry id of an integration row: '<table>:<id>' (three tables share one state)."""
    row = change["after"] if change["after"] is not None else change["before"] or {}
    return f"{change['source']['table']}:{row.get('id')}"


def state_updates(change: ChangeEvent) -> list[StateUpdate]:
    """What one CDC change does to the routing state; [] for tables that are not state."""
    table = change["source"]["table"]
    after = change["after"]
    if table == "suppliers":
        row = after if after is not None else change["before"]
        if row is None or row.get("id") is None:
            return []
        value = None if after is None else supplier_state(after)
        return [StateUpdate("suppliers", str(row["id"]), None, value)]
    if table == "wedding_vendors":
        link = (
            None
            if after is None
            else VendorLink(
                supplier_id=str(after.get("supplier_id")),
                vendor_type=_str(after.get("vendor_type")),
            )
        )
        return _keyed("wedding_vendors", "wedding_id", change, link)
    if table == "webhook_endpoints":
        endpoint = None if after is None else _webhook_endpoint(after)
        return _keyed("webhook_endpoints", "supplier_id", change, endpoint)
    if table in ("supplier_integrations", "venue_integrations", "email_integrations"):
        integration = None if after is None else _integration(table, after)
        key = (
            "venue_id"
            if table == "venue_integrations" and _no_supplier(change)
            else ("supplier_id")
        )
        return _keyed("integrations", key, change, integration)
    return []


def _no_supplier(change: ChangeEvent) -> bool:
    row = change["after"] if change["after"] is not None else change["before"] or {}
    return "supplier_id" not in row


def apply_update(current: Any, update: StateUpdate) -> Any:
    """The new value of `update.key` given its `current` value; None means delete the key."""
    if update.entry_id is None:
        return update.entry
    entries = dict(current) if current else {}
    if update.entry is None:
        entries.pop(update.entry_id, None)
    else:
        entries[update.entry_id] = update.entry
    return entries or None


def apply_change(tables: StateTables, change: ChangeEvent) -> list[StateUpdate]:
    """Fold one change into `tables` (assigning new values, never mutating); returns the
    updates applied, [] when the change is not about state."""
    updates = state_updates(change)
    for update in updates:
        table: MutableMapping[str, Any] = getattr(tables, update.table)
        value = apply_update(table.get(update.key), update)
        if value is None:
            if update.key in table:
                del table[update.key]
        else:
            table[update.key] = value
    return updates


def active_integrations(
    integrations: Mapping[str, Mapping[str, IntegrationState]], supplier_id: str
) -> list[IntegrationState]:
    """The supplier's active integrations, in entry-id order (deterministic fan-out)."""
    entries = integrations.get(supplier_id)
    if not entries:
        return []
    return [entries[k] for k in sorted(entries) if entries[k]["is_active"]]
