"""A local Google Calendar v3 (and its OAuth token endpoint) for tests and
``wedsync fake google``.

Routes (paths as Google's, under the fake's base URL):

    POST   /token                                          refresh-token grant
    GET    /calendar/v3/calendars/{calendarId}             calendars.get (its timeZone)
    POST   /calendar/v3/calendars/{calendarId}/events      events.insert
    GET    /calendar/v3/calendars/{calendarId}/events      events.list: sync tokens, pages, 410
                                                           (streams/dev/fakes/google_sync.py)
    GET    /calendar/v3/calendars/{calendarId}/events/{id} events.get
    PATCH  /calendar/v3/calendars/{calendarId}/events/{id} events.patch (If-Match -> 412)
    DELETE /calendar/v3/calendars/{calendarId}/events/{id} events.delete

Answers as documented: a client-chosen id must be base32hex (``0-9a-v``, 5-1024 chars) or 400
``invalid``; an id used before (deleted events are kept as ``cancelled``) is 409 ``duplicate``;
deleting a cancelled event is 410 ``deleted``; an unknown id is 404 ``notFound``; an unknown or
expired access token is 401 ``authError``. Switches (fakekit): ``throttle_next`` answers
`throttle_status` (403 or 429) ``rateLimitExceeded`` (429 with Retry-After), ``fail_next``
answers `fail_status` ``backendError`` (500 by default), ``expire_tokens`` refuses every token
issued so far (one-shot: it resets once applied), ``revoke_refresh`` answers the token endpoint
400 ``invalid_grant``. `conflict_next` (attribute) makes the next N patches 412.

Counters: events_created, events_patched, events_deleted, tokens_issued (plus requests,
auth_refused, refresh_refused). `stats()["events"]` lists the stored events.

Every write sets the event's `updated` (RFC 3339, ms) and then calls each of `change_hooks`
with (owner, calendar id, event id): the API's insert/patch/delete and the vendor's own edits
made with `vendor_upsert` / `vendor_delete` (what the vendor does in Google's UI). Push
channels (`events.watch`, `channels.stop`) are in `google_channels.py`.

The token endpoint, the bearer check and the switch handling are `calendar_kit.CalendarFake`'s
(shared with the Graph fake); this module keeps what Google documents its own way.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from streams.dev.fakes.calendar_kit import CalendarFake
from streams.dev.fakes.google_channels import GoogleChannels
from streams.dev.fakes.google_sync import GoogleSync
from streams.dev.fakes.kit import Switches

EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")
EVENTS = "/calendar/v3/calendars/{calendar}/events"


def updated_now() -> str:
    """An RFC 3339 `updated` timestamp of now, in milliseconds, as Google writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def google_error(status: int, reason: str, message: str, **headers: str) -> web.Response:
    """Google's documented error body."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    return web.json_response(body, status=status, headers=headers or None)


class GoogleCalendarFake(CalendarFake):
    """Google Calendar v3 events + token endpoint (see the module docstring)."""

    name = "google"

    def __init__(
        self,
        switches: Switches | None = None,
        *,
        throttle_status: int = 429,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.throttle_status = throttle_status
        # (owner, calendar id, event id) -> event resource
        self.events: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.time_zones: dict[str, str] = {}  # calendar id -> its timeZone (default London)
        self.sync = GoogleSync(self)  # events.list: full and incremental sync (google_sync.py)
        # called with (owner, calendar id, event id) after every write of an event
        self.change_hooks: list[Callable[[str, str, str], None]] = []
        self.channels = GoogleChannels(self)
        super().__init__(
            switches or Switches(fail_status=500), client_id=client_id, client_secret=client_secret
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_get("/calendar/v3/calendars/{calendar}", self.authorised(self._calendar))
        app.router.add_post(EVENTS, self.authorised(self._insert))
        app.router.add_get(EVENTS, self.authorised(self.sync.handle))
        app.router.add_get(EVENTS + "/{event}", self.authorised(self._get))
        app.router.add_patch(EVENTS + "/{event}", self.authorised(self._patch))
        app.router.add_delete(EVENTS + "/{event}", self.authorised(self._delete))
        self.channels.routes(app)

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["events"] = [
            {"calendarId": calendar, **event} for (_, calendar, _), event in self.events.items()
        ]
        stats["channels"] = self.channels.stats()
        return stats

    # ---- Google's answers (calendar_kit) ---------------------------------------------------
    @staticmethod
    def error(status: int, code: str, message: str, **headers: str) -> web.Response:
        return google_error(status, code, message, **headers)

    def throttled(self) -> web.Response:
        headers = self.retry_after() if self.throttle_status == 429 else {}
        return google_error(
            self.throttle_status, "rateLimitExceeded", "Rate Limit Exceeded", **headers
        )

    def failed(self) -> web.Response:
        return google_error(self.switches.fail_status, "backendError", "Backend Error")

    def unauthorised(self) -> web.Response:
        return google_error(401, "authError", "Invalid Credentials")

    # ---- the vendor's own edits (Google's UI) --------------------------------------------------
    def vendor_upsert(self, owner: str, calendar_id: str, event: dict[str, Any]) -> str:
        """Store `event` in the owner's calendar as the vendor's own edit (a new event, or
        fields merged into the one with its `id`); its id."""
        event_id = str(event.get("id") or secrets.token_hex(13))
        key = (owner, calendar_id, event_id)
        stored = self.events.get(key, {"kind": "calendar#event", "status": "confirmed"})
        self.events[key] = {**stored, **event, "id": event_id, "etag": self.etag()}
        self.counters["vendor_edits"] += 1
        self._changed(owner, calendar_id, event_id)
        return event_id

    def vendor_delete(self, owner: str, calendar_id: str, event_id: str) -> None:
        """Cancel the event as the vendor's own deletion (KeyError when it is unknown)."""
        event = self.events[owner, calendar_id, event_id]
        event["status"] = "cancelled"
        event["etag"] = self.etag()
        self.counters["vendor_edits"] += 1
        self._changed(owner, calendar_id, event_id)

    def _changed(self, owner: str, calendar_id: str, event_id: str) -> None:
        """Stamp the event's `updated` and tell every hook."""
        self.events[owner, calendar_id, event_id]["updated"] = updated_now()
        for hook in list(self.change_hooks):
            hook(owner, calendar_id, event_id)

    def _written(
        self, owner: str, request: web.Request, event: dict[str, Any], counter: str
    ) -> None:
        """An API write of `event`: a new etag, counted, stamped and told to the hooks."""
        event["etag"] = self.etag()
        self.counters[counter] += 1
        self._changed(owner, request.match_info["calendar"], event["id"])

    # ---- events ----------------------------------------------------------------------------
    async def _insert(self, request: web.Request, owner: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return google_error(400, "parseError", "Parse Error")
        event_id = body.get("id") or secrets.token_hex(13)
        if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        if not isinstance(body.get("start"), dict) or not isinstance(body.get("end"), dict):
            return google_error(400, "required", "Missing end time.")
        for end in ("start", "end"):
            if _zoneless(body[end]):
                return google_error(400, "required", "Missing time zone definition for start time.")
        key = (owner, request.match_info["calendar"], event_id)
        if key in self.events:
            return google_error(409, "duplicate", "The requested identifier already exists.")
        event = {**body, "id": event_id, "kind": "calendar#event", "etag": ""}  # set when written
        event.setdefault("status", "confirmed")
        self.events[key] = event
        self._written(owner, request, event, "events_created")
        return web.json_response(event)

    async def _calendar(self, request: web.Request, owner: str) -> web.Response:
        calendar = request.match_info["calendar"]
        self.counters["calendars_read"] += 1
        zone = self.time_zones.get(calendar, "Europe/London")
        return web.json_response(
            {"kind": "calendar#calendar", "id": calendar, "summary": calendar, "timeZone": zone}
        )

    def _find(self, owner: str, request: web.Request) -> dict[str, Any] | None:
        key = (owner, request.match_info["calendar"], request.match_info["event"])
        return self.events.get(key) or self.sync.materialize(*key)

    async def _get(self, request: web.Request, owner: str) -> web.Response:
        event = self._find(owner, request)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        return web.json_response(event)

    async def _patch(self, request: web.Request, owner: str) -> web.Response:
        event = self._find(owner, request)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if self.precondition_failed(request, event["etag"]):
            return google_error(412, "conditionNotMet", "Precondition Failed")
        try:
            body = await request.json()
        except ValueError:
            return google_error(400, "parseError", "Parse Error")
        if "id" in body and body["id"] != event["id"]:
            return google_error(400, "invalid", "The id cannot be changed.")
        event.update(body)
        self._written(owner, request, event, "events_patched")
        return web.json_response(event)

    async def _delete(self, request: web.Request, owner: str) -> web.Response:
        event = self._find(owner, request)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if event.get("status") == "cancelled":
            return google_error(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        self._written(owner, request, event, "events_deleted")
        return web.Response(status=204)


def _zoneless(when: dict[str, Any]) -> bool:
    """A `dateTime` with neither an offset nor a `timeZone`: Google refuses it (400)."""
    text = when.get("dateTime")
    if not isinstance(text, str) or when.get("timeZone"):
        return False
    return not (text.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", text))
