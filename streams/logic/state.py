"""Event-sourced routing state: one row per source row, and the indexes routing reads. Pure.

Two layers, so that every state key has exactly one writer:

1. **Rows.** `fold_row(previous, change)` is the reducer of ONE source row (key
   '<table>:<primary key>', the CDC key): the row's contract columns after the change, or
   None when it was deleted. A column absent from an update (PostgreSQL leaves unchanged
   TOAST values out) keeps its previous value: absent means unchanged, never empty. The
   worker keeps these rows in a Faust table fed by the one-partition `wedsync.ingest.state`,
   so one consumer writes every row, in commit order, and no update can be lost to a
   concurrent read-modify-write.
2. **Indexes.** `RoutingState.apply(key, row)` replaces one row and moves its entries in the
   indexes routing looks up (`StateTables`); it knows the row's previous value, so a vendor
   link moved to another wedding leaves the old one. The routing process rebuilds the same
   indexes from the rows' changelog.

    suppliers           supplier_id -> SupplierState
    wedding_vendors     wedding_id  -> {wedding_vendors row id -> VendorLink}
    webhook_endpoints   supplier_id -> {endpoint id -> WebhookEndpointState}
    integrations        supplier_id -> {"<table>:<row id>" -> IntegrationState}
    couple_weddings     couple_id   -> {wedding id -> wedding id}
    weddings            wedding_id  -> WeddingState (what messages name: the couple, the date)

Column names are the source contract's (`streams.logic.contract`). Secrets never enter
state: the CDC source does not carry them; sinks read them from the database.
A row without `is_active` is not active (the contract requires the column; a row that lacks
it is incomplete, and sending to an endpoint the owner may have switched off is worse than
not sending). Channel names are normalized here, once (`in-app`, `in_app`, `InApp` -> `inapp`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from streams.logic.contract import Contract
from streams.logic.urls import redacted
from streams.models import ChangeEvent, ColumnValue
from streams.topics import change_key

Row = dict[str, ColumnValue]
WATERMARK_KEY = "~watermark"


class SupplierState(TypedDict):
    supplier_id: str
    name: str | None
    email: str | None
    phone: str | None
    slack_channel: str | None
    user_id: str
    realtime_channels: list[str] | None  # None: the supplier chose nothing, use defaults
    organization_id: str | None


class WeddingState(TypedDict):
    """What a message says of a wedding: the couple ('Alex & Sam', from bride_name and
    groom_name) and the wall-clock date and times as the platform stores them."""

    couple_name: str | None
    wedding_date: str | None
    ceremony_time: str | None
    reception_time: str | None
    venue_name: str | None


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


@dataclass(frozen=True, slots=True)
class StateTables:
    """The indexes routing reads; plain dicts."""

    suppliers: MutableMapping[str, SupplierState]
    wedding_vendors: MutableMapping[str, dict[str, VendorLink]]
    webhook_endpoints: MutableMapping[str, dict[str, WebhookEndpointState]]
    integrations: MutableMapping[str, dict[str, IntegrationState]]
    couple_weddings: MutableMapping[str, dict[str, str]] = field(default_factory=dict)
    weddings: MutableMapping[str, WeddingState] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> StateTables:
        return cls({}, {}, {}, {}, {}, {})


INTEGRATION_TABLES = ("supplier_integrations", "venue_integrations", "email_integrations")
STATE_TABLES = Contract.default().state_tables()  # the contract says which tables are state

# ---- values -------------------------------------------------------------------------------
_CHANNEL_ALIASES = {"inapp": "inapp", "in_app": "inapp", "in-app": "inapp", "in app": "inapp"}


def normalize_channel(name: str) -> str:
    """One spelling per channel: 'in-app', 'In_App', 'inapp' -> 'inapp'; others lower-cased."""
    lowered = name.strip().lower()
    return _CHANNEL_ALIASES.get(lowered, lowered)


def _json(value: ColumnValue) -> Any:
    """A jsonb column's value (JSON text); None when absent or not JSON."""
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _object(value: ColumnValue) -> dict[str, Any]:
    parsed = _json(value)
    return parsed if isinstance(parsed, dict) else {}


def _text_list(value: ColumnValue) -> list[str]:
    """A text[] column: a list (CDC), or its JSON text (HTTP change sources)."""
    if isinstance(value, str):
        value = _json(value)
    return [str(v) for v in value if v is not None] if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _active(row: Row) -> bool:
    return row.get("is_active") is True


# ---- rows ---------------------------------------------------------------------------------
def fold_row(previous: Row | None, change: ChangeEvent) -> Row | None:
    """The row after `change`: None when deleted; columns absent from the change keep their
    previous values (an update never empties a column it did not send)."""
    if change["op"] == "d" or change["after"] is None:
        return None
    merged = dict(previous) if previous else {}
    merged.update(change["after"])
    return merged


# ---- rows -> index entries ----------------------------------------------------------------
Entry = tuple[str, str, str | None, Any]  # (index, key, entry id or None for whole value, value)


def supplier_state(supplier_id: str, row: Row) -> SupplierState:
    prefs = _object(row.get("notification_preferences"))
    channels = prefs.get("realtime_channels")
    return SupplierState(
        supplier_id=supplier_id,
        name=_str(row.get("business_name")),
        email=_str(row.get("email")),
        phone=_str(prefs.get("phone")),
        slack_channel=_str(prefs.get("slack_channel")) or _str(prefs.get("slack_user_id")),
        user_id=supplier_id,  # a supplier's dashboard user is the supplier
        realtime_channels=(
            list(dict.fromkeys(normalize_channel(str(c)) for c in channels if c))
            if isinstance(channels, list)
            else None
        ),
        organization_id=None,
    )


def _url(url: str | None) -> str | None:
    """An endpoint URL as routing may copy it: without its credential, if it carries one
    (the sink reads the whole URL from the database: `streams.logic.urls`)."""
    return redacted(url) if url else url


def couple_name(row: Row) -> str | None:
    """'Alex & Sam' from a wedding's bride_name and groom_name; None when neither is set."""
    names = [str(row[c]).strip() for c in ("bride_name", "groom_name") if _str(row.get(c))]
    return " & ".join(n for n in names if n) or None


def wedding_state(row: Row) -> WeddingState:
    return WeddingState(
        couple_name=couple_name(row),
        wedding_date=_str(row.get("wedding_date")),
        ceremony_time=_str(row.get("ceremony_time")),
        reception_time=_str(row.get("reception_time")),
        venue_name=_str(row.get("venue_name")),
    )


def _integration(table: str, row_id: str, row: Row) -> tuple[str | None, IntegrationState]:
    """(owner supplier id, integration) of one integration row."""
    if table == "venue_integrations":
        owner, kind, settings = row.get("venue_id"), "venue_booking", {}
    elif table == "email_integrations":
        owner, kind = row.get("supplier_id"), _str(row.get("platform_type")) or "email_marketing"
        settings = _object(row.get("trigger_settings"))
    else:
        owner, kind = row.get("supplier_id"), _str(row.get("integration_type")) or ""
        settings = _object(row.get("settings"))
    return _str(owner), IntegrationState(
        integration_id=row_id,
        source_table=table,
        supplier_id=str(owner),
        integration_type=kind,
        endpoint_url=_url(_str(row.get("webhook_url")) or _str(settings.get("endpoint_url"))),
        calendar_id=_str(settings.get("calendar_id")),
        auth_scheme=_str(settings.get("auth_scheme")),
        time_zone=_str(settings.get("time_zone")),
        is_active=_active(row),
    )


def entries(key: str, row: Row) -> list[Entry]:
    """The index entries one state row stands for ([] for rows of other tables)."""
    table, _, row_id = key.partition(":")
    if table == "suppliers":
        return [("suppliers", row_id, None, supplier_state(row_id, row))]
    if table == "wedding_details":
        couple = _str(row.get("couple_id"))
        named: list[Entry] = [("weddings", row_id, None, wedding_state(row))]
        if couple is None:
            return named
        return [("couple_weddings", couple, row_id, row_id), *named]
    if table == "wedding_vendors":
        wedding, vendor = _str(row.get("wedding_id")), _str(row.get("vendor_id"))
        if wedding is None or vendor is None:
            return []
        link = VendorLink(supplier_id=vendor, vendor_type=_str(row.get("vendor_type")))
        return [("wedding_vendors", wedding, row_id, link)]
    if table == "webhook_endpoints":
        owner = _str(row.get("supplier_id"))
        if owner is None:
            return []
        endpoint = WebhookEndpointState(
            endpoint_id=row_id,
            supplier_id=owner,
            endpoint_url=_url(_str(row.get("endpoint_url"))) or "",
            subscribed_events=_text_list(row.get("subscribed_events")),
            is_active=_active(row),
        )
        return [("webhook_endpoints", owner, row_id, endpoint)]
    if table in INTEGRATION_TABLES:
        owner, integration = _integration(table, row_id, row)
        return [] if owner is None else [("integrations", owner, key, integration)]
    return []


@dataclass
class RoutingState:
    """Rows by state key, the indexes built from them, and the state watermark: every change
    committed at or before `watermark` (a source commit LSN) is folded in."""

    tables: StateTables = field(default_factory=StateTables.empty)
    rows: dict[str, Row] = field(default_factory=dict)
    watermark: int = 0

    def apply(self, key: str, row: Row | None) -> None:
        """Replace the row under `key` (None removes it) and move its index entries."""
        previous = self.rows.pop(key, None)
        if previous is not None:
            for index, index_key, entry_id, _ in entries(key, previous):
                self._set(index, index_key, entry_id, None)
        if row is not None:
            self.rows[key] = row
            for index, index_key, entry_id, value in entries(key, row):
                self._set(index, index_key, entry_id, value)

    def _set(self, index: str, key: str, entry_id: str | None, value: Any) -> None:
        table: MutableMapping[str, Any] = getattr(self.tables, index)
        if entry_id is None:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
            return
        current = dict(table.get(key) or {})  # replaced whole: readers see complete values
        if value is None:
            current.pop(entry_id, None)
        else:
            current[entry_id] = value
        if current:
            table[key] = current
        else:
            table.pop(key, None)

    def apply_change(self, change: ChangeEvent) -> None:
        """Fold one change as the worker would (tests and benchmarks); heartbeats move the
        watermark."""
        if change["op"] == "h":
            self.watermark = max(self.watermark, change["source"]["commit_lsn"] or 0)
            return
        if change["source"]["table"] not in STATE_TABLES:
            return
        key = change_key(change).decode()  # the row's state key is its CDC key
        self.apply(key, fold_row(self.rows.get(key), change))


def active_integrations(
    integrations: Mapping[str, Mapping[str, IntegrationState]], supplier_id: str
) -> list[IntegrationState]:
    """The supplier's active integrations, in entry-id order (deterministic fan-out)."""
    found = integrations.get(supplier_id)
    if not found:
        return []
    return [found[k] for k in sorted(found) if found[k]["is_active"]]
