"""events.list of the Google Calendar fake: full and incremental sync as documented.

    GET /calendar/v3/calendars/{calendarId}/events

Parameters as Google's: `singleEvents`, `showDeleted`, `timeMin`/`timeMax` (RFC 3339),
`maxResults` (default 250, at most 2,500), `pageToken`, `syncToken`. The last page alone
carries `nextSyncToken`. With `syncToken`, Google refuses `timeMin`, `timeMax`, `q`,
`orderBy`, `iCalUID`, `updatedMin`, `privateExtendedProperty`, `sharedExtendedProperty`
(400 invalid) and returns every event changed since the token, deleted ones included as
cancelled stubs carrying only `id` (a cancelled instance of a series also names
`recurringEventId` and `originalStartTime`). A token the fake has invalidated
(`invalidate_sync_tokens`, Google's "token expired or ACL changed") is 410 Gone
`fullSyncRequired`.

`singleEvents=true` expands a stored event's `recurrence` (RRULE and EXDATE lines, as
Google stores them) into instances with ids `<id>_<yyyymmddThhmmssZ>`; an instance the
vendor edited is stored as its own event with `recurringEventId` + `originalStartTime` and
replaces the generated one. A sync token is a snapshot of what the listing held (id ->
etag), so "changed since" is exactly what differs from it.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from dateutil.rrule import rruleset, rrulestr

if TYPE_CHECKING:
    from streams.dev.fakes.google import GoogleCalendarFake

INCOMPATIBLE = (
    "timeMin",
    "timeMax",
    "q",
    "orderBy",
    "iCalUID",
    "updatedMin",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)
MAX_RESULTS = 2500
MAX_INSTANCES = 730  # per series: two years of a daily event


class GoogleSync:
    """The sync half of `GoogleCalendarFake`: it reads the fake's stored events."""

    def __init__(self, fake: GoogleCalendarFake) -> None:
        self.fake = fake
        self._tokens = itertools.count(1)
        # sync token -> (owner, calendar, {item id: etag}) as that listing held them
        self.snapshots: dict[str, tuple[str, str, dict[str, str]]] = {}
        self.pages: dict[str, list[dict[str, Any]]] = {}  # page token -> remaining items
        self.invalid: set[str] = set()

    def invalidate_sync_tokens(self) -> None:
        """Every sync token issued so far answers 410 (the client must sync in full)."""
        self.invalid.update(self.snapshots)

    async def handle(self, request: web.Request, owner: str) -> web.Response:
        """The events.list route (the fake checks the bearer first: `authorised`)."""
        calendar, q = request.match_info["calendar"], request.query
        self.fake.counters["events_listed"] += 1
        try:
            size = min(int(q.get("maxResults", "250")), MAX_RESULTS)
        except ValueError:
            return self.fake.error(400, "invalid", "Invalid value for maxResults")
        if page := q.get("pageToken"):
            return self._page(page, size)
        sync = q.get("syncToken")
        single = q.get("singleEvents") == "true"
        if sync is not None:
            if bad := [p for p in INCOMPATIBLE if p in q]:
                return self.fake.error(400, "invalid", f"{bad[0]} cannot be used with syncToken")
            if q.get("showDeleted") == "false":
                return self.fake.error(400, "invalid", "showDeleted cannot be false with syncToken")
            s_owner, s_calendar, before = self.snapshots.get(sync, ("", "", {}))
            if sync in self.invalid or (s_owner, s_calendar) != (owner, calendar):
                return self.fake.error(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            items = self._changed(before, self._listing(owner, calendar, single))
        else:
            window = (_time(q.get("timeMin")), _time(q.get("timeMax")))
            listing = self._listing(owner, calendar, single)
            show_deleted = q.get("showDeleted") == "true"
            items = [
                i
                for i in listing.values()
                if _in_window(i, window) and (show_deleted or i.get("status") != "cancelled")
            ]
        token = f"sync-{next(self._tokens)}"
        self.snapshots[token] = (
            owner,
            calendar,
            {i: e["etag"] for i, e in self._listing(owner, calendar, single).items()},
        )
        return self._answer(items, size, token)

    def _answer(self, items: list[dict[str, Any]], size: int, sync_token: str) -> web.Response:
        body: dict[str, Any] = {"kind": "calendar#events", "items": items[:size]}
        if len(items) > size:
            page = f"page-{next(self._tokens)}"
            self.pages[page] = items[size:]
            self.pages[page + ":sync"] = [{"token": sync_token}]
            body["nextPageToken"] = page
        else:
            body["nextSyncToken"] = sync_token
        return web.json_response(body)

    def _page(self, page: str, size: int) -> web.Response:
        items = self.pages.pop(page, None)
        sync = self.pages.pop(page + ":sync", None)
        if items is None or sync is None:
            return self.fake.error(400, "invalid", "Invalid page token")
        return self._answer(items, size, sync[0]["token"])

    def materialize(self, owner: str, calendar: str, event_id: str) -> dict[str, Any] | None:
        """An instance of a stored series, stored as its own event so it can be edited (an
        exception); None when `event_id` names no instance."""
        series_id, _, _ = event_id.rpartition("_")
        series = self.fake.events.get((owner, calendar, series_id))
        if not series_id or series is None or not series.get("recurrence"):
            return None
        for instance in _instances(series):
            if instance["id"] == event_id:
                instance["etag"] = self.fake.etag()
                self.fake.events[(owner, calendar, event_id)] = instance
                return instance
        return None

    # ---- the listing -----------------------------------------------------------------------
    def _listing(self, owner: str, calendar: str, single: bool) -> dict[str, dict[str, Any]]:
        stored = {
            eid: e for (o, c, eid), e in self.fake.events.items() if o == owner and c == calendar
        }
        out: dict[str, dict[str, Any]] = {}
        overrides = {e["id"]: e for e in stored.values() if e.get("recurringEventId")}
        for event in stored.values():
            if event.get("recurringEventId") and single:
                continue  # placed below, in its series
            if single and event.get("recurrence"):
                for instance in _instances(event):
                    out[instance["id"]] = overrides.get(instance["id"], instance)
                    if event.get("status") == "cancelled":
                        out[instance["id"]] = _stub(instance)
                continue
            out[event["id"]] = event
        return out

    @staticmethod
    def _changed(before: dict[str, str], now: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        changed = [
            e if e.get("status") != "cancelled" else _stub(e)
            for i, e in now.items()
            if before.get(i) != e["etag"]
        ]
        gone = [
            {"kind": "calendar#event", "id": i, "status": "cancelled", "etag": '"gone"'}
            for i in before
            if i not in now
        ]
        return changed + gone


def _stub(event: dict[str, Any]) -> dict[str, Any]:
    """What Google guarantees of a cancelled event: its id (an instance: its series too)."""
    stub = {
        "kind": "calendar#event",
        "id": event["id"],
        "status": "cancelled",
        "etag": event["etag"],
    }
    for key in ("recurringEventId", "originalStartTime"):
        if key in event:
            stub[key] = event[key]
    return stub


def _instances(master: dict[str, Any]) -> list[dict[str, Any]]:
    """The series' instances (RRULE minus EXDATE), each a copy of the master."""
    start, end = _when(master["start"]), _when(master["end"])
    length = end - start
    rules = rruleset()
    for line in master.get("recurrence", []):
        if line.startswith("RRULE:"):
            rules.rrule(rrulestr(line.removeprefix("RRULE:"), dtstart=start))
        elif line.startswith("EXDATE"):
            for value in line.split(":", 1)[1].split(","):
                rules.exdate(_ical_time(value, start.tzinfo))
    out = []
    for occurrence in itertools.islice(rules, MAX_INSTANCES):
        tag = occurrence.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        instance = {
            **{k: v for k, v in master.items() if k != "recurrence"},
            "id": f"{master['id']}_{tag}",
            "recurringEventId": master["id"],
            "originalStartTime": _as_field(occurrence, master["start"]),
            "start": _as_field(occurrence, master["start"]),
            "end": _as_field(occurrence + length, master["end"]),
        }
        out.append(instance)
    return out


def _when(field: dict[str, Any]) -> datetime:
    if "date" in field:
        return datetime.fromisoformat(field["date"]).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(field["dateTime"].replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(field.get("timeZone") or "UTC"))
    return parsed


def _as_field(moment: datetime, like: dict[str, Any]) -> dict[str, str]:
    if "date" in like:
        return {"date": moment.date().isoformat()}
    out = {"dateTime": moment.isoformat()}
    if like.get("timeZone"):
        out["timeZone"] = like["timeZone"]
    return out


def _ical_time(value: str, zone: Any) -> datetime:
    if value.endswith("Z"):
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if "T" in value:
        return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    return datetime.strptime(value, "%Y%m%d").replace(tzinfo=zone)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _in_window(event: dict[str, Any], window: tuple[datetime | None, datetime | None]) -> bool:
    if event.get("status") == "cancelled" and "start" not in event:
        return True
    low, high = window
    start, end = _when(event["start"]), _when(event["end"])
    return (low is None or end > low) and (high is None or start < high + timedelta(0))
