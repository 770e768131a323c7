"""Microsoft Graph calendar events on the wire, as pure functions (no I/O).

Finding our event: Graph assigns event ids, so every event we create carries a single-value
extended property (`PROPERTY_ID`, a fixed GUID of ours) holding `external_event_id`, and
`find_request` filters on it:
``$filter=singleValueExtendedProperties/Any(ep: ep/id eq '<PROPERTY_ID>' and ep/value eq '<id>')``.

Order: every write also sets a second property (`VERSION_PROPERTY_ID`) to the record's
`aggregate_version`; finds and reads expand it, and `stored_version` reads it back (the write
algorithm, `connectors.calendar.upsert`, never overwrites a newer version with an older one).

Requests: `find_request`, `create_request` (with ``transactionId``, Graph's idempotency hook on
create, derived from the delivery id), `patch_request`, `get_request`, `delete_request`.
Times: timed events are sent in UTC (``timeZone: UTC``, which every mailbox accepts; Graph
takes only a subset of IANA names); all-day events as local midnights of the wedding's zone.

Answers: `classify` uses the status and `CODES` (Graph's ``error.code``; the Answer made by
`connectors.sinks.answer.from_verdict`):
401 reauth; 429 backpressure; 503/504 with Retry-After backpressure, without it retry; other
5xx retry; 412 retry (when the write algorithm's re-reads and re-applies ran out); 404
ErrorItemNotFound fatal (the sink's port first answers it as gone: re-created once on an
upsert, done on a delete); other 4xx fatal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.calendar import local
from connectors.calendar.rest_wire import BadRecord, Request, refusal
from connectors.sinks.answer import Answer, Verdict, from_verdict, ok, parse_retry_after

PROPERTY_GUID = "8d3c6a52-4f1e-4b7a-9c2d-5e6f7a8b9c0d"
PROPERTY_ID = f"String {{{PROPERTY_GUID}}} Name wedsyncExternalId"
VERSION_PROPERTY_ID = f"String {{{PROPERTY_GUID}}} Name wedsyncVersion"
EXPAND_VERSION = f"singleValueExtendedProperties($filter=id eq '{VERSION_PROPERTY_ID}')"
TRANSACTION_NAMESPACE = uuid.UUID("5b0c2f0e-7a4d-4e59-8f3b-1d2e3f4a5b6c")


# Graph error codes -> verdict (error_class ``graph.<code>``).
CODES: dict[str, Verdict] = {
    "InvalidAuthenticationToken": Verdict.REAUTH,
    "MailboxConcurrency": Verdict.BACKPRESSURE,
    "ApplicationThrottled": Verdict.BACKPRESSURE,
    "TooManyRequests": Verdict.BACKPRESSURE,
    "ErrorItemNotFound": Verdict.FATAL,
    "ErrorAccessDenied": Verdict.FATAL,
    "ErrorInvalidRequest": Verdict.FATAL,
    "ErrorIrresolvableConflict": Verdict.RETRY,
    "PreconditionFailed": Verdict.RETRY,
}

# Status -> verdict whatever the code says (the status is the authority for these).
STATUSES: dict[int, Verdict] = {
    401: Verdict.REAUTH,
    412: Verdict.RETRY,
    429: Verdict.BACKPRESSURE,
}
BACKPRESSURE_WITH_RETRY_AFTER = frozenset({503, 504})


def transaction_id(idempotency_key: str) -> str:
    """Graph ``transactionId`` for a delivery: a UUID derived from its stable id, the same
    on every retry, never the id itself."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, idempotency_key))


def _version_property(record: Mapping[str, Any]) -> dict[str, str]:
    return {"id": VERSION_PROPERTY_ID, "value": str(int(record.get("aggregate_version") or 0))}


def _odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def filter_expression(external_event_id: str) -> str:
    """The $filter that finds the event carrying our extended property."""
    return (
        "singleValueExtendedProperties/Any(ep: ep/id eq "
        f"{_odata_literal(PROPERTY_ID)} and ep/value eq {_odata_literal(external_event_id)})"
    )


def events_path(record: Mapping[str, Any]) -> str:
    """The events collection: the default calendar for ``primary``, else that calendar."""
    calendar = str(record.get("calendar_id") or "primary")
    if calendar == "primary":
        return "/v1.0/me/events"
    return f"/v1.0/me/calendars/{quote(calendar, safe='')}/events"


def event_path(event_id: str) -> str:
    return f"/v1.0/me/events/{quote(event_id, safe='')}"


def _zone(record: Mapping[str, Any]) -> ZoneInfo:
    name = str(record.get("time_zone") or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRecord("unknown time zone in the record") from exc


def mailbox_settings_request() -> Request:
    """The signed-in mailbox's settings, its `timeZone` (a Windows or IANA name) among them."""
    return Request("GET", "/v1.0/me/mailboxSettings", params={"$select": "timeZone"})


def event_times(record: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Graph ``start`` and ``end`` (dateTimeTimeZone): UTC for timed events routing placed;
    the wall clock (``local_start``) with the zone it is read in otherwise (Graph takes
    Windows and IANA names); local midnights (end exclusive, at least one day) for all-day
    events."""
    fmt = "%Y-%m-%dT%H:%M:%S"
    try:
        span = local.days(record)
        if span is not None:
            first, after = span
            return (
                {"dateTime": f"{first.isoformat()}T00:00:00", "timeZone": "UTC"},
                {"dateTime": f"{after.isoformat()}T00:00:00", "timeZone": "UTC"},
            )
        if record.get("starts_at_ms") is None:
            name = local.zone_name(record)
            start, end = local.wall_clock(record)
            return (
                {"dateTime": start.strftime(fmt), "timeZone": name},
                {"dateTime": end.strftime(fmt), "timeZone": name},
            )
    except local.LocalTimesRefused as exc:
        raise BadRecord(str(exc)) from None
    zone = _zone(record)
    try:
        start = datetime.fromtimestamp(int(record["starts_at_ms"]) / 1000, UTC)
        end = datetime.fromtimestamp(int(record["ends_at_ms"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadRecord("the record has no readable start or end") from exc
    if record.get("all_day"):
        first, after = start.astimezone(zone).date(), end.astimezone(zone).date()
        if after <= first:
            after = first + timedelta(days=1)
        return (
            {"dateTime": f"{first.isoformat()}T00:00:00", "timeZone": "UTC"},
            {"dateTime": f"{after.isoformat()}T00:00:00", "timeZone": "UTC"},
        )
    fmt = "%Y-%m-%dT%H:%M:%S"
    return (
        {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
    )


def event_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """The event fields we own (for create and patch)."""
    start, end = event_times(record)
    body: dict[str, Any] = {
        "subject": str(record.get("title") or ""),
        "start": start,
        "end": end,
        "isAllDay": bool(record.get("all_day")),
        "body": {"contentType": "text", "content": str(record.get("description") or "")},
    }
    if record.get("location") is not None:
        body["location"] = {"displayName": str(record["location"])}
    return body


def find_request(record: Mapping[str, Any]) -> Request:
    """List the events carrying our extended property with this external id."""
    params = {
        "$filter": filter_expression(str(record["external_event_id"])),
        "$select": "id",
        "$top": "2",
        "$expand": EXPAND_VERSION,
    }
    return Request("GET", events_path(record), params=params)


def create_request(record: Mapping[str, Any], idempotency_key: str) -> Request:
    """Create with ``transactionId`` and our extended property."""
    body = {
        **event_body(record),
        "transactionId": transaction_id(idempotency_key),
        "singleValueExtendedProperties": [
            {"id": PROPERTY_ID, "value": str(record["external_event_id"])},
            _version_property(record),
        ],
    }
    return Request("POST", events_path(record), json=body)


def patch_request(record: Mapping[str, Any], event_id: str, etag: str | None = None) -> Request:
    """Update our fields of a found event; with If-Match when re-applying after a 412."""
    headers = {"If-Match": etag} if etag else {}
    body = {**event_body(record), "singleValueExtendedProperties": [_version_property(record)]}
    return Request("PATCH", event_path(event_id), headers=headers, json=body)


def get_request(event_id: str) -> Request:
    """Read one event (its current ``@odata.etag`` and our version property)."""
    return Request("GET", event_path(event_id), params={"$expand": EXPAND_VERSION})


def delete_request(event_id: str) -> Request:
    return Request("DELETE", event_path(event_id))


def found_events(body: Any) -> list[Mapping[str, Any]]:
    """The events (with an id) of a list answer (``{"value": [{"id": ...}, ...]}``)."""
    values = body.get("value") if isinstance(body, Mapping) else None
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, Mapping) and v.get("id")]


def found_ids(body: Any) -> list[str]:
    """Event ids of a list answer."""
    return [str(v["id"]) for v in found_events(body)]


def stored_version(event: Any) -> int | None:
    """The aggregate version our last write left on the event (expanded extended
    property), None when absent or unreadable."""
    props = event.get("singleValueExtendedProperties") if isinstance(event, Mapping) else None
    for prop in props if isinstance(props, list) else []:
        if isinstance(prop, Mapping) and prop.get("id") == VERSION_PROPERTY_ID:
            try:
                return int(prop.get("value"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return None
    return None


def error_code(body: Any) -> str | None:
    """``error.code`` of a Graph error body, if any."""
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    return code if isinstance(code, str) else None


def classify(
    status: int, body: Any, retry_after: str | None = None, *, now_s: float | None = None
) -> Answer:
    """The meaning of a Graph answer (see the module docstring); provider_id on success is
    the Graph event id."""
    if 200 <= status < 300:
        event_id = body.get("id") if isinstance(body, Mapping) else None
        return ok(status, str(event_id) if event_id else None)
    code = error_code(body)
    error_class = f"graph.{code}" if code in CODES else f"graph.{status}"
    delay = parse_retry_after(retry_after, now_s=now_s)
    if status in STATUSES:
        verdict = STATUSES[status]
    elif status in BACKPRESSURE_WITH_RETRY_AFTER and delay is not None:
        verdict = Verdict.BACKPRESSURE
    elif status >= 500:
        verdict = Verdict.RETRY
    elif code in CODES:
        verdict = CODES[code]
    else:
        verdict = Verdict.FATAL
    message = refusal("Graph", verdict, status)
    return from_verdict(verdict, error_class, message, status=status, retry_after=delay)
