"""Microsoft Graph calendarView delta on the wire, as pure functions (no I/O).

Requests: `first_request` is a full sync of a `CalendarRef` over a window (calendar id
``primary`` -> ``/v1.0/me/calendarView/delta``, else ``/v1.0/me/calendars/{id}/calendarView/
delta``) with `prefer_headers` (``odata.maxpagesize``, ``outlook.timezone="UTC"``; sent on
every page). Later pages and rounds GET the ``@odata.nextLink`` / ``@odata.deltaLink`` as
given (the window and options are encoded in their tokens).

Answers: `parse_page` -> `Page(items, next_link, delta_link)`; `observe` maps one item to
``(resource_id, Observed)``, ``(resource_id, None)`` for a removal, or None when it is dropped:

    busy       showAs busy, oof, workingElsewhere
    tentative  showAs tentative
    free       showAs free or unknown; isCancelled; responseStatus declined
    all-day    isAllDay: the days of start/end (Graph gives midnights) placed at local midnight
               of the event's ``originalStartTimeZone`` (Windows names mapped by
               `WINDOWS_ZONES`, IANA names as they are), else of the calendar's own zone
    window     an item outside the window is dropped on a full sync; on an incremental round
               it becomes a removal (an event moved out of the window: the owner ignores
               removals of ids it never knew, so this is never wrong)

Each Graph item is its own resource (occurrences and exceptions of a series have their own ids,
and ``@removed`` names them), so `Observed.instance` is ''. `Observed.ours` stays None: delta
cannot expand extended properties (Graph echoes are recognised by provider id). Nothing private
(subject, body, attendees, location, transactionId) is read.

Errors: `classify_error(status, body, retry_after)` -> the `feed_errors` class to raise: 410,
or any 4xx naming ``syncStateNotFound``/``resyncRequired`` -> FullResyncRequired; 401 ->
ReauthRequired; 404, 403 -> CalendarGone; 429/503/504 -> Throttled (Retry-After, else
`DEFAULT_RETRY_AFTER_S`); other 5xx and anything else -> FetchFailed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.logic.calendar.rounds import BusyClass, CalendarRef, Observed

from connectors.calendar.feed_errors import (
    CalendarGone,
    FetchError,
    FetchFailed,
    FullResyncRequired,
    ReauthRequired,
    Throttled,
)
from connectors.calendar.graph.wire import Request, error_code
from connectors.sinks.answer import parse_retry_after

PAGE_SIZE = 200
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")
DEFAULT_RETRY_AFTER_S = 30.0
RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
BUSY: dict[str, BusyClass] = {
    "busy": "busy", "oof": "busy", "workingElsewhere": "busy",
    "tentative": "tentative", "free": "free", "unknown": "free",
}  # fmt: skip

# The common Windows zone names (CLDR windowsZones.xml, territory 001) -> IANA.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "E. Australia Standard Time": "Australia/Brisbane",
    "W. Australia Standard Time": "Australia/Perth",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "Canada Central Standard Time": "America/Regina",
    "Mexico Standard Time": "America/Mexico_City",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "SA Pacific Standard Time": "America/Bogota",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Buenos_Aires",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Egypt Standard Time": "Africa/Cairo",
    "Greek Standard Time": "Europe/Athens",
}


@dataclass(frozen=True, slots=True)
class Page:
    """One delta page: its items, and the link to the next page or the round's delta link."""

    items: tuple[Mapping[str, Any], ...]
    next_link: str | None
    delta_link: str | None


def prefer_headers(page_size: int = PAGE_SIZE) -> dict[str, str]:
    """The Prefer header of every delta call (page size and UTC times)."""
    return {"Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC"'}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delta_path(calendar: CalendarRef) -> str:
    if calendar.calendar_id == "primary":
        return "/v1.0/me/calendarView/delta"
    return f"/v1.0/me/calendars/{quote(calendar.calendar_id, safe='')}/calendarView/delta"


def first_request(
    calendar: CalendarRef, window: tuple[int, int], page_size: int = PAGE_SIZE
) -> Request:
    """A full sync of `calendar` over `window` ([start, end) UTC ms)."""
    return Request("GET", delta_path(calendar),
                   params={"startDateTime": _iso(window[0]), "endDateTime": _iso(window[1])},
                   headers=prefer_headers(page_size))  # fmt: skip


def parse_page(body: Any) -> Page:
    """A delta answer's items and links; ValueError when it is not a delta page."""
    if not isinstance(body, Mapping) or not isinstance(body.get("value"), list):
        raise ValueError("a delta page has a value list")
    items = tuple(i for i in body["value"] if isinstance(i, Mapping) and i.get("id"))
    next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
    return Page(items, str(next_link) if next_link else None,
                str(delta_link) if delta_link else None)  # fmt: skip


def zone_of(name: str | None) -> ZoneInfo | None:
    """An IANA zone for a Graph zone name (Windows or IANA), None when unknown."""
    if not name:
        return None
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _naive(value: Any) -> datetime:
    if not isinstance(value, Mapping) or not value.get("dateTime"):
        raise ValueError("no dateTime")
    return datetime.fromisoformat(str(value["dateTime"])[:19])


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def busy_class(item: Mapping[str, Any]) -> BusyClass:
    """The §4 busy class of a Graph event."""
    response = item.get("responseStatus")
    declined = isinstance(response, Mapping) and response.get("response") == "declined"
    if item.get("isCancelled") or declined:
        return "free"
    return BUSY.get(str(item.get("showAs") or "busy"), "busy")


def times(item: Mapping[str, Any], calendar: CalendarRef) -> tuple[int, int]:
    """[start, end) UTC ms of an item; ValueError when unreadable."""
    start, end = _naive(item.get("start")), _naive(item.get("end"))
    if item.get("isAllDay"):
        zone = zone_of(item.get("originalStartTimeZone")) or zone_of(calendar.time_zone)
        zone = zone or ZoneInfo("UTC")
        first, after = start.date(), end.date()
        after = after if after > first else date.fromordinal(first.toordinal() + 1)
        return (_ms(datetime.combine(first, time(), zone)),
                _ms(datetime.combine(after, time(), zone)))  # fmt: skip
    start_zone = zone_of(str((item.get("start") or {}).get("timeZone") or "UTC"))
    end_zone = zone_of(str((item.get("end") or {}).get("timeZone") or "UTC"))
    if start_zone is None or end_zone is None:
        raise ValueError("unknown time zone")
    return _ms(start.replace(tzinfo=start_zone)), _ms(end.replace(tzinfo=end_zone))


def _updated_ms(item: Mapping[str, Any]) -> int:
    """``lastModifiedDateTime`` (seven fraction digits, ``Z``) as UTC ms; 0 when unreadable."""
    match = STAMP.match(str(item.get("lastModifiedDateTime") or ""))
    if match is None:
        return 0
    whole, fraction, offset = match.groups()
    text = whole + (fraction or "")[:7] + ("+00:00" if offset in (None, "Z") else offset)
    return _ms(datetime.fromisoformat(text))


def observe(
    item: Mapping[str, Any], calendar: CalendarRef, window: tuple[int, int], *, full: bool
) -> tuple[str, Observed | None] | None:
    """One delta item -> (resource id, Observed), (resource id, None) for a removal, or None
    when dropped (outside the window on a full sync). ValueError for unreadable times."""
    resource_id = str(item["id"])
    if "@removed" in item:
        return resource_id, None
    start_ms, end_ms = times(item, calendar)
    if not (start_ms < window[1] and end_ms > window[0]):
        return None if full else (resource_id, None)
    uid = item.get("iCalUId")
    return resource_id, Observed(
        start_ms=start_ms, end_ms=end_ms, busy=busy_class(item),
        all_day=bool(item.get("isAllDay")), ical_uid=str(uid) if uid else None,
        updated_ms=_updated_ms(item),
    )  # fmt: skip


def classify_error(
    status: int, body: Any, retry_after: str | None = None, *, now_s: float | None = None
) -> FetchError:
    """The feed error a non-2xx Graph answer means (see the module docstring)."""
    code = error_code(body) or ""
    what = f"Graph answered {status}" + (f" {code}" if code else "")
    if status == 410 or (400 <= status < 500 and code.lower() in RESYNC_CODES):
        return FullResyncRequired(what)
    if status == 401:
        return ReauthRequired(what)
    if status in (403, 404):
        return CalendarGone(what)
    if status in (429, 503, 504):
        delay = parse_retry_after(retry_after, now_s=now_s)
        return Throttled(what, DEFAULT_RETRY_AFTER_S if delay is None else delay)
    return FetchFailed(what)
