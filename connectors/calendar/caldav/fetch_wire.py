"""CalDAV's inbound feed on the wire, as pure functions (RFC 6578 sync-collection, RFC 4791).

Requests: `sync_body(token)` is the REPORT body of one sync round: the stored
`DAV:sync-token` (empty on an initial sync), `sync-level 1`, and the properties wanted for
each changed member (`getetag` and the `calendar-data` itself, so one request serves a round
on servers that return it; Radicale does).

Answers: `parse_multistatus` reads the 207: each member's href, status (404 = removed), etag
and calendar-data, the new sync token, and whether the server truncated the result (507 on
the request URI: continue with the returned token). `token_refused` says whether a 403/409
is the `DAV:valid-sync-token` precondition (an expired or unknown token: sync in full; iCloud
answers a bare 403 to a token-bearing REPORT, read the same way; a 403 naming
`DAV:supported-report` is `report_unsupported`, never a refused token).

Server quirks read here (iCloud's above all): calendar-data wrapped in CDATA, XML in the
default namespace (``xmlns="DAV:"``) rather than prefixed, hrefs as absolute URLs on a
partition host (``p180-caldav.icloud.com``) or as relative paths (a resource id is the decoded
path either way, so both name the same resource).

The CTag/ETag path (servers without a working sync-collection) lives in `etag_wire`.

Items: `observe_ics` expands one calendar object resource (a VEVENT, or a series: master,
RECURRENCE-ID overrides, EXDATE) within the horizon with `recurring-ical-events`, and places
all-day (VALUE=DATE) and floating times in the calendar's own zone. Busy class: TRANSP
TRANSPARENT is free, STATUS TENTATIVE tentative, STATUS CANCELLED no time at all; busy
otherwise. Our own events carry X-WEDSYNC-VERSION (their UID is our external event id).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import recurring_ical_events
from icalendar import Calendar
from streams.logic.calendar.rounds import BusyClass, CalendarRef, Observed

from connectors.calendar.caldav.wire import VERSION_PROP

DAV, CALDAV = "DAV:", "urn:ietf:params:xml:ns:caldav"
MAX_INSTANCES = 1000  # per series within the horizon (an endless daily series stops here)


def sync_body(token: str | None) -> bytes:
    """The sync-collection REPORT body; `token` None is an initial sync."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:sync-token>{_xml_text(token or '')}</d:sync-token>"
        "<d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        "</d:sync-collection>"
    ).encode()


@dataclass(frozen=True, slots=True)
class Member:
    href: str  # absolute URL
    status: int
    etag: str | None
    calendar_data: str | None


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    members: tuple[Member, ...]
    token: str | None
    truncated: bool


def parse_multistatus(body: bytes, base_url: str) -> SyncAnswer:
    """The 207 of a sync-collection REPORT; ValueError when it is not a multistatus."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != f"{{{DAV}}}multistatus":
        raise ValueError("not a DAV:multistatus")
    members: list[Member] = []
    truncated = False
    request_path = _path(base_url)
    for response in root.findall(f"{{{DAV}}}response"):
        href_text = (response.findtext(f"{{{DAV}}}href") or "").strip()
        if not href_text:
            continue
        href = urljoin(base_url, href_text)
        top = _status(response.findtext(f"{{{DAV}}}status"))
        if _path(href) == request_path:
            truncated = truncated or top == 507
            continue
        etag = data = None
        status = top
        for propstat in response.findall(f"{{{DAV}}}propstat"):
            code = _status(propstat.findtext(f"{{{DAV}}}status"))
            if code != 200:
                continue
            status = 200
            etag = propstat.findtext(f"{{{DAV}}}prop/{{{DAV}}}getetag") or etag
            data = propstat.findtext(f"{{{DAV}}}prop/{{{CALDAV}}}calendar-data") or data
        members.append(Member(href, status or 200, etag, data))
    token = root.findtext(f"{{{DAV}}}sync-token")
    return SyncAnswer(tuple(members), token.strip() if token else None, truncated)


def token_refused(status: int, body: bytes, had_token: bool) -> bool:
    """True when the answer refuses the sync token (module docstring)."""
    if status not in (403, 409):
        return False
    if b"valid-sync-token" in body:
        return True
    return status == 403 and had_token and not report_unsupported(status, body)


def report_unsupported(status: int, body: bytes) -> bool:
    """True when the server does not do sync-collection on this collection."""
    return status in (405, 501) or (status == 403 and b"supported-report" in body)


def observe_ics(text: str, calendar: CalendarRef, window: tuple[int, int]) -> list[Observed]:
    """The occurrences of one calendar object resource within `window` (module docstring).
    ValueError when it is not iCalendar."""
    try:
        parsed = Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"not iCalendar: {type(exc).__name__}") from None
    zone = _zone(calendar.time_zone)
    low = datetime.fromtimestamp(window[0] / 1000, UTC)
    high = datetime.fromtimestamp(window[1] / 1000, UTC)
    series = any(
        any(c.get(p) is not None for p in ("RRULE", "RDATE", "RECURRENCE-ID"))
        for c in parsed.walk("VEVENT")
    )
    out: list[Observed] = []
    for n, occurrence in enumerate(_between(parsed, low, high)):
        if n >= MAX_INSTANCES:
            break
        observed = _occurrence(occurrence, zone, series)
        if observed is not None:
            out.append(observed)
    return out


def _between(parsed: Calendar, low: datetime, high: datetime) -> Iterator[Any]:
    query = recurring_ical_events.of(parsed, components=["VEVENT"])
    yield from query.between(low, high)


def _occurrence(event: Any, zone: ZoneInfo, series: bool) -> Observed | None:
    """One occurrence; `instance` is its original start in a series ('' for a single event,
    so moving it is an update, not a new interval)."""
    status = str(event.get("STATUS", "")).upper()
    if status == "CANCELLED":
        return None
    start_value = event.get("DTSTART")
    if start_value is None:
        return None
    start = start_value.dt
    end_value = event.get("DTEND")
    if end_value is not None:
        end = end_value.dt
    elif event.get("DURATION") is not None:
        end = start + event["DURATION"].dt
    else:
        end = start + timedelta(days=1) if _is_date(start) else start
    all_day = _is_date(start)
    start_ms, end_ms = _ms(start, zone), _ms(end, zone)
    if end_ms <= start_ms:
        return None
    transp = str(event.get("TRANSP", "OPAQUE")).upper()
    busy: BusyClass = (
        "free" if transp == "TRANSPARENT" else ("tentative" if status == "TENTATIVE" else "busy")
    )
    uid = event.get("UID")
    recurrence = event.get("RECURRENCE-ID")
    original = recurrence.dt if recurrence is not None else start
    instance = str(_ms(original, zone)) if series else ""
    stamp = event.get("LAST-MODIFIED") or event.get("DTSTAMP")
    return Observed(
        start_ms=start_ms,
        end_ms=end_ms,
        busy=busy,
        all_day=all_day,
        instance=instance,
        ical_uid=str(uid) if uid is not None else None,
        updated_ms=_ms(stamp.dt, zone) if stamp is not None else 0,
        ours=str(uid) if uid is not None and event.get(VERSION_PROP) is not None else None,
    )


def _is_date(value: Any) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _ms(value: Any, zone: ZoneInfo) -> int:
    if _is_date(value):
        value = datetime.combine(value, time(), zone)
    elif value.tzinfo is None:  # floating time: the calendar's own zone
        value = value.replace(tzinfo=zone)
    return int(value.timestamp() * 1000)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _status(line: str | None) -> int | None:
    parts = (line or "").split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def _path(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path).rstrip("/")


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def multiget_body(hrefs: list[str]) -> bytes:
    """A calendar-multiget REPORT body for members whose data the sync answer lacked."""
    from urllib.parse import urlsplit

    items = "".join(f"<d:href>{_xml_text(urlsplit(h).path)}</d:href>" for h in hrefs)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{items}</c:calendar-multiget>"
    ).encode()


def resource_id(href: str) -> str:
    """A member's resource id: its decoded path (the same however the server quotes it)."""
    return _path(href)
