"""Google Calendar v3 on the wire, as pure functions (no I/O).

Requests: `insert_request`, `patch_request`, `get_request`, `delete_request` build the method,
path, headers and JSON body of events.insert / patch / get / delete from a CalendarDelivery
record. Event ids: `event_id` derives the client-chosen id (base32hex: ``0-9a-v``, 5-1024
characters) from `external_event_id`, the same on every retry and every process.

Answers: `classify` turns a status, error body and Retry-After header into an `Answer` using
the `REASONS` table (Google's ``errors[0].reason``) first, then `STATUSES` (the Answer made by
`connectors.sinks.answer.from_verdict`). The answers that are a step of the write algorithm
(`connectors.calendar.upsert`) rather than its end are `FOLLOW_UPS`, which the sink's port
reads: insert 409 ``duplicate`` = it exists (get + patch with If-Match), patch 404 = gone
(insert once more), patch 412 ``conditionNotMet`` = changed (get + patch once more), delete
404/410 = done; `GONE` is a get's. Order: every write leaves the record's `aggregate_version`
in a private extended property, and `stored_version` reads it back (the algorithm never
overwrites a newer version with an older one; retry topics break per-key order).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.calendar import local
from connectors.calendar.rest_wire import BadRecord, Request, refusal
from connectors.sinks.answer import Answer, Verdict, from_verdict, ok, parse_retry_after

EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")
PRIVATE_PROPERTY = "wedsyncExternalId"
VERSION_PROPERTY = "wedsyncVersion"

Operation = Literal["insert", "patch", "get", "delete"]
Step = Literal["patch", "insert", "refetch", "done"]


# Google's error reasons -> verdict (error_class ``google.<reason>``).
REASONS: dict[str, Verdict] = {
    "authError": Verdict.REAUTH,
    "rateLimitExceeded": Verdict.BACKPRESSURE,
    "userRateLimitExceeded": Verdict.BACKPRESSURE,
    "quotaExceeded": Verdict.BACKPRESSURE,
    "dailyLimitExceeded": Verdict.BACKPRESSURE,
    "backendError": Verdict.RETRY,
    "internalError": Verdict.RETRY,
    "conditionNotMet": Verdict.RETRY,
    "forbiddenForNonOrganizer": Verdict.FATAL,
    "forbidden": Verdict.FATAL,
    "requiredAccessLevel": Verdict.FATAL,
    "invalid": Verdict.FATAL,
    "required": Verdict.FATAL,
    "badRequest": Verdict.FATAL,
    "timeRangeEmpty": Verdict.FATAL,
    "notFound": Verdict.FATAL,
    "duplicate": Verdict.OK,
    "deleted": Verdict.OK,
}

# Status -> verdict when the reason is absent or not in REASONS (error_class ``google.<status>``).
STATUSES: dict[int, Verdict] = {
    400: Verdict.FATAL,
    401: Verdict.REAUTH,
    403: Verdict.FATAL,
    404: Verdict.FATAL,
    409: Verdict.OK,
    410: Verdict.OK,
    412: Verdict.RETRY,
    429: Verdict.BACKPRESSURE,
    500: Verdict.RETRY,
    502: Verdict.RETRY,
    503: Verdict.RETRY,
    504: Verdict.RETRY,
}

GONE = frozenset({404, 410})  # events.get or events.delete of an event that is not there

# (operation, status) -> the next request the sink makes instead of classifying.
FOLLOW_UPS: dict[tuple[Operation, int], Step] = {
    ("insert", 409): "patch",
    ("patch", 404): "insert",
    ("patch", 412): "refetch",
    ("delete", 404): "done",
    ("delete", 410): "done",
}


def is_event_id(value: str) -> bool:
    """True when `value` is a valid client-chosen Google event id."""
    return bool(EVENT_ID.match(value))


def event_id(external_event_id: str) -> str:
    """The Google event id for our event: `external_event_id` itself when it already is a
    valid id (the router makes them base32hex), else the base32hex SHA-256 of it (52
    characters). Deterministic: a retry or a replay targets the same event."""
    if is_event_id(external_event_id):
        return external_event_id
    digest = hashlib.sha256(external_event_id.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def _calendar_path(record: Mapping[str, Any]) -> str:
    calendar = str(record.get("calendar_id") or "primary")
    return f"/calendar/v3/calendars/{quote(calendar, safe='')}/events"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRecord("unknown time zone in the record") from exc


needs_calendar_zone = local.needs_own_zone  # then `calendar_request`, then `placed`
placed = local.placed


def calendar_request(record: Mapping[str, Any]) -> Request:
    """calendars.get: the calendar's metadata, its `timeZone` among them."""
    calendar = str(record.get("calendar_id") or "primary")
    return Request("GET", f"/calendar/v3/calendars/{quote(calendar, safe='')}")


def event_times(record: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Google ``start`` and ``end``: ``date`` (end exclusive, at least one day) for all-day
    events; else ``dateTime`` with the local offset plus ``timeZone`` when routing placed
    the event, or the wall clock (``local_start``) with the ``timeZone`` it is read in."""
    try:
        span = local.days(record)
        if span is not None:
            return {"date": span[0].isoformat()}, {"date": span[1].isoformat()}
        if record.get("starts_at_ms") is None:
            tz = str(_zone(local.zone_name(record)).key)
            start, end = local.wall_clock(record)
            return (
                {"dateTime": start.isoformat(), "timeZone": tz},
                {"dateTime": end.isoformat(), "timeZone": tz},
            )
    except local.LocalTimesRefused as exc:
        raise BadRecord(str(exc)) from None
    zone = _zone(str(record.get("time_zone") or "UTC"))
    try:
        start = datetime.fromtimestamp(int(record["starts_at_ms"]) / 1000, zone)
        end = datetime.fromtimestamp(int(record["ends_at_ms"]) / 1000, zone)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadRecord("the record has no readable start or end") from exc
    if record.get("all_day"):
        first = start.date()
        return {"date": first.isoformat()}, {"date": local.after(first, end.date()).isoformat()}
    tz = str(zone.key)
    return (
        {"dateTime": start.isoformat(), "timeZone": tz},
        {"dateTime": end.isoformat(), "timeZone": tz},
    )


def event_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """The event resource for insert and patch (without the id). ``status: confirmed``
    restores an event deleted earlier (Google keeps deleted events as ``cancelled``)."""
    start, end = event_times(record)
    body: dict[str, Any] = {
        "summary": str(record.get("title") or ""),
        "start": start,
        "end": end,
        "status": "confirmed",
        "extendedProperties": {
            "private": {
                PRIVATE_PROPERTY: str(record.get("external_event_id") or ""),
                VERSION_PROPERTY: str(int(record.get("aggregate_version") or 0)),
            }
        },
    }
    if record.get("description") is not None:
        body["description"] = str(record["description"])
    if record.get("location") is not None:
        body["location"] = str(record["location"])
    return body


def insert_request(record: Mapping[str, Any]) -> Request:
    """events.insert with our id: POST .../calendars/{calendarId}/events."""
    body = {"id": event_id(str(record["external_event_id"])), **event_body(record)}
    return Request("POST", _calendar_path(record), json=body)


def patch_request(record: Mapping[str, Any], etag: str | None = None) -> Request:
    """events.patch of our event; with If-Match when re-applying after a 412."""
    path = f"{_calendar_path(record)}/{event_id(str(record['external_event_id']))}"
    headers = {"If-Match": etag} if etag else {}
    return Request("PATCH", path, headers=headers, json=event_body(record))


def get_request(record: Mapping[str, Any]) -> Request:
    """events.get of our event (its current etag)."""
    return Request("GET", f"{_calendar_path(record)}/{event_id(str(record['external_event_id']))}")


def delete_request(record: Mapping[str, Any]) -> Request:
    """events.delete of our event."""
    path = f"{_calendar_path(record)}/{event_id(str(record['external_event_id']))}"
    return Request("DELETE", path)


def stored_version(event: Any) -> int | None:
    """The aggregate version our last write left on the event (private extended property),
    None when absent or unreadable."""
    props = event.get("extendedProperties") if isinstance(event, Mapping) else None
    private = props.get("private") if isinstance(props, Mapping) else None
    value = private.get(VERSION_PROPERTY) if isinstance(private, Mapping) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def error_reason(body: Any) -> str | None:
    """``error.errors[0].reason`` of a Google error body, if any."""
    error = body.get("error") if isinstance(body, Mapping) else None
    errors = error.get("errors") if isinstance(error, Mapping) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        reason = errors[0].get("reason")
        return reason if isinstance(reason, str) else None
    return None


def follow_up(operation: Operation, status: int) -> Step | None:
    """The next request the sink makes for this answer, or None to classify it."""
    return FOLLOW_UPS.get((operation, status))


def classify(
    status: int, body: Any, retry_after: str | None = None, *, now_s: float | None = None
) -> Answer:
    """The meaning of a Google answer. 2xx ok (provider_id = the event id, else its etag);
    a known reason decides, else the status; unknown 5xx retry, other unknown 4xx fatal."""
    if 200 <= status < 300:
        provider_id = None
        if isinstance(body, Mapping):
            provider_id = body.get("id") or body.get("etag")
        return ok(status, str(provider_id) if provider_id else None)
    reason = error_reason(body)
    if reason in REASONS:
        verdict, code = REASONS[reason], f"google.{reason}"
    else:
        code = f"google.{status}"
        verdict = STATUSES.get(status, Verdict.RETRY if status >= 500 else Verdict.FATAL)
    delay = parse_retry_after(retry_after, now_s=now_s)
    message = refusal("Google", verdict, status)
    return from_verdict(verdict, code, message, status=status, retry_after=delay)
