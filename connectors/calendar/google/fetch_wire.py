"""Google Calendar v3 events.list on the wire, as pure functions: the inbound feed.

Requests (`list_params`): a full sync lists the horizon window (`timeMin`/`timeMax`) with
`singleEvents=true` (a series comes as its instances, an exception as the instance it
replaces) and `showDeleted=true`; an incremental round repeats the query with `syncToken`
and nothing Google refuses beside it (timeMin, timeMax, orderBy, q, ...); every page of a
round carries the same syncToken plus the `pageToken`. Only the last page has
`nextSyncToken`, the round's new cursor.

Items (`observe`): a cancelled item is a deletion of that resource (Google guarantees only
its id); else the item's times (a `date` is all-day: local midnight in the calendar's zone,
end exclusive; a `dateTime` with its offset, or in its `timeZone`), and its class:
free when `transparency` is transparent, the event is a working location or a birthday, or
the vendor declined; tentative when the event is tentative or the vendor has not answered
or answered tentatively; busy otherwise (the API default is opaque; `outOfOffice` is busy).
Our own events carry the private `wedsyncExternalId` the sink writes. No title,
description, location or attendee leaves this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.logic.calendar.rounds import BusyClass, CalendarRef, Observed

from connectors.calendar.feed_errors import FetchError, FullResyncRequired, from_answer
from connectors.calendar.google import channel_wire
from connectors.calendar.google.wire import PRIVATE_PROPERTY, classify, error_reason

PAGE_SIZE = 2500  # Google's maximum
FREE_TYPES = frozenset({"workingLocation", "birthday"})


def list_path(calendar: CalendarRef) -> str:
    return f"/calendar/v3/calendars/{quote(calendar.calendar_id, safe='')}/events"


def list_params(
    cursor: str | None, window: tuple[int, int], page_token: str | None = None
) -> dict[str, str]:
    """The query of one page: full (cursor None) over `window`, else incremental."""
    params = {"singleEvents": "true", "showDeleted": "true", "maxResults": str(PAGE_SIZE)}
    if cursor is None:
        params["timeMin"] = _rfc3339(window[0])
        params["timeMax"] = _rfc3339(window[1])
    else:
        params["syncToken"] = cursor
    if page_token:
        params["pageToken"] = page_token
    return params


def parse_page(body: Any) -> tuple[list[Mapping[str, Any]], str | None, str | None]:
    """(items, nextPageToken, nextSyncToken) of a page; ValueError when it is not one."""
    if not isinstance(body, Mapping) or not isinstance(body.get("items", []), list):
        raise ValueError("not an events list")
    items = [
        i for i in body.get("items", []) if isinstance(i, Mapping) and isinstance(i.get("id"), str)
    ]
    page, sync = body.get("nextPageToken"), body.get("nextSyncToken")
    return items, page if isinstance(page, str) else None, sync if isinstance(sync, str) else None


def refusal(status: int, body: Any, retry_after: str | None) -> FetchError:
    """What a non-2xx answer to events.list means for the feed."""
    if status == 410:  # with or without the fullSyncRequired reason: the status decides
        return FullResyncRequired(f"google.{error_reason(body) or 410}: sync token refused")
    if channel_wire.rate_limited(status, body):  # a usageLimits 403 of any reason: a wait
        return channel_wire.error_for(status, body, retry_after)
    return from_answer(classify(status, body, retry_after), "google events.list")


def observe(item: Mapping[str, Any], calendar: CalendarRef) -> tuple[str, Observed | None]:
    """(resource id, the occurrence) of one item; None when it is cancelled (deleted) or
    has no readable times."""
    resource = str(item["id"])
    if item.get("status") == "cancelled":
        return resource, None
    zone = _zone(calendar.time_zone)
    start = _moment(item.get("start"), zone)
    end = _moment(item.get("end"), zone)
    if start is None or end is None or end[0] <= start[0]:
        return resource, None
    props = item.get("extendedProperties")
    private = props.get("private") if isinstance(props, Mapping) else None
    ours = private.get(PRIVATE_PROPERTY) if isinstance(private, Mapping) else None
    uid = item.get("iCalUID")
    return resource, Observed(
        start_ms=start[0],
        end_ms=end[0],
        busy=busy_class(item),
        all_day=start[1],
        ical_uid=uid if isinstance(uid, str) else None,
        updated_ms=_updated(item.get("updated")),
        ours=ours if isinstance(ours, str) and ours else None,
    )


def busy_class(item: Mapping[str, Any]) -> BusyClass:
    if item.get("transparency") == "transparent" or item.get("eventType") in FREE_TYPES:
        return "free"
    attendees = item.get("attendees")
    me = (
        next((a for a in attendees if isinstance(a, Mapping) and a.get("self")), None)
        if isinstance(attendees, list)
        else None
    )
    answer = me.get("responseStatus") if me is not None else None
    if answer == "declined":
        return "free"
    if item.get("status") == "tentative" or answer in ("tentative", "needsAction"):
        return "tentative"
    return "busy"


def _moment(value: Any, zone: ZoneInfo) -> tuple[int, bool] | None:
    """(epoch ms, all-day) of a start/end field; None when unreadable."""
    if not isinstance(value, Mapping):
        return None
    try:
        if isinstance(value.get("date"), str):
            day = datetime.fromisoformat(value["date"]).date()
            return int(datetime.combine(day, time(), zone).timestamp() * 1000), True
        text = value.get("dateTime")
        if not isinstance(text, str):
            return None
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        own = value.get("timeZone")
        parsed = parsed.replace(tzinfo=_zone(own) if isinstance(own, str) else zone)
    return int(parsed.timestamp() * 1000), False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _updated(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def _rfc3339(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
