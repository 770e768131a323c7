"""Pure pieces of the CalDAV provider: URLs, the VEVENT, headers, answer classification.

No I/O. Where things live (our rule for `calendar_id`):

    home        the integration's `webhook_url`, else its `settings.caldav_url`, else the
                configured default: a calendar home or a collection URL, with a trailing slash
    collection  home                                  when calendar_id is "", "primary"
                calendar_id                           when it is an absolute URL on the home's
                                                      origin whose path lies under the home's
                origin + calendar_id                  when it is a path under the home's path
                home + calendar_id + "/"              otherwise (a collection name relative to
                                                      the home; "." and ".." segments refused)
    event       collection + quote(UID) + ".ics", UID = the record's external_event_id

A calendar_id elsewhere is refused (`CollectionRefused`): a record can never point the
integration's credentials at another host or outside its home.

The VEVENT carries UID, SUMMARY, DESCRIPTION, LOCATION, DTSTART/DTEND in the record's zone
(VALUE=DATE when all_day), DTSTAMP (the source change's time, so a retry builds the same
bytes), SEQUENCE (0 on create, the stored one + 1 on update) and X-WEDSYNC-VERSION (the
aggregate version: an older version never overwrites a newer one).

Answers (PROVIDERS.md): 2xx ok; 401 re-auth (iCloud: app-specific password); 403 and 409
(``no-uid-conflict``) fatal; 412 refetch and re-apply (retry when it persists); 404/410 on a
delete ok (already gone); 404 on a write fatal (no such collection); 429, and 503 with
Retry-After, backpressure; other 5xx and 507 retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event

from connectors.calendar import local
from connectors.sinks.answer import (
    Answer,
    Verdict,
    backpressure,
    classify_http_status,
    fatal,
    from_verdict,
    ok,
    parse_retry_after,
)

PRIMARY = frozenset({"", "primary"})
ICS_CONTENT_TYPE = "text/calendar; charset=utf-8"
VERSION_PROP = "X-WEDSYNC-VERSION"


class CollectionRefused(ValueError):
    """The calendar_id does not name a collection under the integration's home."""


class EventRefused(ValueError):
    """The record cannot become a VEVENT (unknown time zone, bad times)."""


# ---- where ----------------------------------------------------------------------------------
def home_url(webhook_url: str | None, settings: Any, default: str | None) -> str | None:
    """The calendar home from an integration row (see the module docstring); None if none."""
    if isinstance(settings, str):
        try:
            settings = json.loads(settings)
        except ValueError:
            settings = {}
    configured = settings.get("caldav_url") if isinstance(settings, dict) else None
    for candidate in (webhook_url, configured, default):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def username(settings: Any) -> str | None:
    """`settings.username` of the integration row."""
    if isinstance(settings, str):
        try:
            settings = json.loads(settings)
        except ValueError:
            return None
    value = settings.get("username") if isinstance(settings, dict) else None
    return value if isinstance(value, str) and value else None


def _slash(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def collection_url(home: str, calendar_id: str) -> str:
    """The collection URL for `calendar_id` under `home` (rule in the module docstring)."""
    base = urlsplit(home)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise CollectionRefused("the calendar home is not an http(s) URL")
    origin = f"{base.scheme}://{base.netloc}"
    home_path = _slash(base.path or "/")
    cid = calendar_id.strip()
    if cid in PRIMARY:
        return origin + home_path
    if "://" in cid:
        given = urlsplit(cid)
        if (given.scheme, given.netloc) != (base.scheme, base.netloc):
            raise CollectionRefused("calendar_id names another host than the integration's")
        path = given.path
    elif cid.startswith("/"):
        path = cid
    else:
        path = home_path + quote(cid.strip("/"), safe="/@:+~!$&'()*,;=")
    segments = path.split("/")
    if any(s in (".", "..") for s in segments):
        raise CollectionRefused("calendar_id has dot segments")
    path = _slash(path)
    if not path.startswith(home_path):
        raise CollectionRefused("calendar_id is not under the integration's calendar home")
    return origin + path


def event_url(collection: str, uid: str) -> str:
    """The event resource: the collection + the quoted UID + ``.ics`` (stable per UID)."""
    return _slash(collection) + quote(uid, safe="") + ".ics"


# ---- what -----------------------------------------------------------------------------------
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise EventRefused("unknown time zone in the record") from None


def _utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def event_times(record: dict[str, Any]) -> tuple[date | datetime, date | datetime]:
    """(DTSTART, DTEND): local datetimes in the record's zone, or dates when all_day (DTEND
    exclusive: at least the day after DTSTART). A wedding routing could not place (its
    zone unknown) is read in the record's fallback zone, else it is a floating time (RFC
    5545 3.3.5: the same wall clock in whatever zone the calendar's user is in)."""
    try:
        span = local.days(record)
        if span is not None:
            return span
        if record.get("starts_at_ms") is None:
            start, end = local.wall_clock(record)
    except local.LocalTimesRefused as exc:
        raise EventRefused(str(exc)) from None
    if record.get("starts_at_ms") is None:
        if end < start:
            raise EventRefused("the event ends before it starts")
        fallback = record.get("time_zone") or record.get("fallback_time_zone")
        if fallback:
            zone = _zone(str(fallback))
            return start.replace(tzinfo=zone), end.replace(tzinfo=zone)
        return start, end  # floating
    zone = _zone(record["time_zone"])
    start = _utc(int(record["starts_at_ms"])).astimezone(zone)
    end = _utc(int(record["ends_at_ms"])).astimezone(zone)
    if end < start:
        raise EventRefused("the event ends before it starts")
    if record.get("all_day"):
        first, last = start.date(), end.date()
        return first, (last if last > first else first + timedelta(days=1))
    return start, end


def build_event(record: dict[str, Any], *, sequence: int = 0, prodid: str = "") -> bytes:
    """The VCALENDAR with one VEVENT for `record` (see the module docstring)."""
    start, end = event_times(record)
    cal = Calendar()
    cal.add("prodid", prodid or "-//WedSync//wedsync-streams//EN")
    cal.add("version", "2.0")
    ev = Event()
    ev.add("uid", record["external_event_id"])
    ev.add("dtstamp", _utc(int(record.get("source_ts_ms") or 0)))
    ev.add("dtstart", start)
    ev.add("dtend", end)
    ev.add("summary", record.get("title") or "")
    if record.get("description"):
        ev.add("description", record["description"])
    if record.get("location"):
        ev.add("location", record["location"])
    ev.add("sequence", max(0, sequence))
    ev.add(VERSION_PROP, str(int(record.get("aggregate_version") or 0)))
    ev.add("transp", "TRANSPARENT" if record.get("all_day") else "OPAQUE")
    cal.add_component(ev)
    if isinstance(start, datetime):
        cal.add_missing_timezones(
            first_date=date(start.year - 1, 1, 1), last_date=date(start.year + 2, 1, 1)
        )
    return bytes(cal.to_ical())


@dataclass(frozen=True)
class Stored:
    """What the server holds for our UID: its SEQUENCE and our version stamp (or None)."""

    sequence: int
    version: int | None


def stored(ics: bytes) -> Stored:
    """Read SEQUENCE and X-WEDSYNC-VERSION of the first VEVENT; zeros/None when unreadable."""
    try:
        events = Calendar.from_ical(ics).walk("VEVENT")
    except (ValueError, KeyError, IndexError):
        return Stored(0, None)
    if not events:
        return Stored(0, None)
    ev = events[0]
    try:
        sequence = int(ev.get("sequence", 0))
    except (TypeError, ValueError):
        sequence = 0
    raw = ev.get(VERSION_PROP)
    try:
        version = int(raw.to_ical() if hasattr(raw, "to_ical") else raw) if raw else None
    except (TypeError, ValueError):
        version = None
    return Stored(sequence, version)


# ---- how ------------------------------------------------------------------------------------
def create_headers() -> dict[str, str]:
    """PUT that only creates: fails with 412 when the UID's resource exists."""
    return {"Content-Type": ICS_CONTENT_TYPE, "If-None-Match": "*"}


def update_headers(etag: str | None) -> dict[str, str]:
    """PUT that only replaces the version we read (unconditional when the server gave no
    ETag, which RFC 4791 servers always do)."""
    headers = {"Content-Type": ICS_CONTENT_TYPE}
    if etag:
        headers["If-Match"] = etag
    return headers


def delete_headers(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}


# ---- what the answer means --------------------------------------------------------------------
# status -> (verdict, error_class, message) for the answers PROVIDERS.md names for CalDAV.
STATUS_TABLE: dict[int, tuple[Verdict, str, str]] = {
    401: (Verdict.REAUTH, "caldav.401", "credentials refused (iCloud needs an app password)"),
    403: (Verdict.FATAL, "caldav.403", "forbidden: no write access to this calendar"),
    404: (Verdict.FATAL, "caldav.404", "no such calendar collection"),
    409: (Verdict.FATAL, "caldav.409", "conflict: the collection refused the event"),
    412: (Verdict.RETRY, "caldav.412", "the event changed meanwhile; refetch and re-apply"),
    507: (Verdict.RETRY, "caldav.507", "the server is out of storage"),
}
GONE_ON_DELETE = frozenset({404, 410})


def classify(
    status: int, *, operation: str, retry_after: str | None = None, body: str = ""
) -> Answer:
    """The Answer for one CalDAV answer to a PUT or DELETE of `operation` (upsert|delete)."""
    if 200 <= status < 300:
        return ok(status)
    if operation == "delete" and status in GONE_ON_DELETE:
        return ok(status)
    if "no-uid-conflict" in body:
        return fatal(
            "caldav.no_uid_conflict",
            "another resource in the collection holds this UID",
            status=status,
        )
    seconds = parse_retry_after(retry_after)
    if status == 429 or (status == 503 and seconds is not None):
        return backpressure(f"caldav.{status}", seconds, "the server asked us to slow down",
                            status=status)  # fmt: skip
    row = STATUS_TABLE.get(status)
    if row is not None:
        verdict, code, message = row
        return from_verdict(verdict, code, message, status=status)
    return classify_http_status(status, seconds, prefix="caldav")
