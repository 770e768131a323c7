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

`FakeTokens` is the token endpoint shared with the Graph fake.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from streams.dev.fakes.google_channels import GoogleChannels
from streams.dev.fakes.google_sync import GoogleSync
from streams.dev.fakes.kit import FakeProvider, Switches

EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")
EVENTS = "/calendar/v3/calendars/{calendar}/events"


class FakeTokens:
    """An OAuth token endpoint (refresh-token grant) and the bearer check of a fake.

    Any non-empty refresh token is accepted (its owner is a fingerprint of it) unless
    ``revoke_refresh`` is on; `client_id`/`client_secret`, when given, must match."""

    def __init__(
        self,
        provider: FakeProvider,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        expires_in: int = 3599,
        rotate_refresh: bool = False,
    ) -> None:
        self.provider = provider
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.rotate_refresh = rotate_refresh
        self.valid: dict[str, str] = {}  # access token -> owner
        self.issued: list[str] = []  # every access token ever issued (tests look for leaks)

    def _expire_if_switched(self) -> None:
        if self.provider.switches.expire_tokens:
            self.valid.clear()
            self.provider.switches.expire_tokens = False
            self.provider.counters["tokens_expired"] += 1

    async def handle(self, request: web.Request) -> web.Response:
        """POST grant_type=refresh_token -> {access_token, expires_in, token_type}."""
        self._expire_if_switched()
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (self.client_id is not None and form.get("client_id") != self.client_id) or (
            self.client_secret is not None and form.get("client_secret") != self.client_secret
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        refresh = form.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            return web.json_response({"error": "invalid_request"}, status=400)
        if self.provider.switches.revoke_refresh:
            self.provider.counters["refresh_refused"] += 1
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status=400,
            )
        token = "ya29." + secrets.token_urlsafe(24)
        self.issued.append(token)
        self.valid[token] = owner_of(refresh)
        self.provider.counters["tokens_issued"] += 1
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/calendar.events",
        }
        if self.rotate_refresh:
            body["refresh_token"] = "rotated-" + secrets.token_urlsafe(8)
        return web.json_response(body)

    @staticmethod
    def owner_of(refresh_token: str) -> str:
        """The owner (mailbox, calendar account) the token endpoint maps a refresh token to:
        what the fakes' vendor-side helpers take as `owner`."""
        return owner_of(refresh_token)

    def owner(self, request: web.Request) -> str | None:
        """The owner of the request's bearer token, or None when it is refused."""
        self._expire_if_switched()
        header = request.headers.get("Authorization", "")
        owner = self.valid.get(header.removeprefix("Bearer ").strip())
        if owner is None:
            self.provider.counters["auth_refused"] += 1
        return owner


def owner_of(refresh_token: str) -> str:
    """The owner (the fake's user) that a refresh token's access tokens act as."""
    return "user-" + hashlib.sha256(refresh_token.encode()).hexdigest()[:12]


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


class GoogleCalendarFake(FakeProvider):
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
        self.tokens: FakeTokens | None = None
        self.throttle_status = throttle_status
        self.conflict_next = 0
        self.if_match_seen: list[str] = []  # If-Match values of patches, in order
        # (owner, calendar id, event id) -> event resource
        self.events: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.time_zones: dict[str, str] = {}  # calendar id -> its timeZone (default London)
        self._etags = itertools.count(1)
        self.sync = GoogleSync(self)  # events.list: full and incremental sync (google_sync.py)
        # called with (owner, calendar id, event id) after every write of an event
        self.change_hooks: list[Callable[[str, str, str], None]] = []
        self.channels = GoogleChannels(self)
        super().__init__(switches or Switches(fail_status=500))
        self.tokens = FakeTokens(self, client_id=client_id, client_secret=client_secret)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._token)
        app.router.add_get("/calendar/v3/calendars/{calendar}", self._calendar)
        app.router.add_post(EVENTS, self._insert)
        app.router.add_get(EVENTS, self.sync.handle)
        app.router.add_get(EVENTS + "/{event}", self._get)
        app.router.add_patch(EVENTS + "/{event}", self._patch)
        app.router.add_delete(EVENTS + "/{event}", self._delete)
        self.channels.routes(app)

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["events"] = [
            {"calendarId": calendar, **event} for (_, calendar, _), event in self.events.items()
        ]
        stats["channels"] = self.channels.stats()
        return stats

    # ---- the vendor's own edits (Google's UI) --------------------------------------------------
    def vendor_upsert(self, owner: str, calendar_id: str, event: dict[str, Any]) -> str:
        """Store `event` in the owner's calendar as the vendor's own edit (a new event, or
        fields merged into the one with its `id`); its id."""
        event_id = str(event.get("id") or secrets.token_hex(13))
        key = (owner, calendar_id, event_id)
        stored = self.events.get(key, {"kind": "calendar#event", "status": "confirmed"})
        self.events[key] = {**stored, **event, "id": event_id, "etag": self._etag()}
        self.counters["vendor_edits"] += 1
        self._changed(owner, calendar_id, event_id)
        return event_id

    def vendor_delete(self, owner: str, calendar_id: str, event_id: str) -> None:
        """Cancel the event as the vendor's own deletion (KeyError when it is unknown)."""
        event = self.events[owner, calendar_id, event_id]
        event["status"] = "cancelled"
        event["etag"] = self._etag()
        self.counters["vendor_edits"] += 1
        self._changed(owner, calendar_id, event_id)

    def _changed(self, owner: str, calendar_id: str, event_id: str) -> None:
        """Stamp the event's `updated` and tell every hook."""
        self.events[owner, calendar_id, event_id]["updated"] = updated_now()
        for hook in list(self.change_hooks):
            hook(owner, calendar_id, event_id)

    # ---- shared checks -------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        assert self.tokens is not None
        return await self.tokens.handle(request)

    def _refusal(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        """(owner, None) for an authorised, non-injected request; (None, answer) else."""
        injected = self.injected()
        if injected == "throttle":
            headers = {}
            if self.throttle_status == 429:
                headers["Retry-After"] = str(int(self.switches.retry_after_s))
            return None, google_error(
                self.throttle_status, "rateLimitExceeded", "Rate Limit Exceeded", **headers
            )
        if injected == "fail":
            return None, google_error(self.switches.fail_status, "backendError", "Backend Error")
        assert self.tokens is not None
        owner = self.tokens.owner(request)
        if owner is None:
            return None, google_error(401, "authError", "Invalid Credentials")
        return owner, None

    def _etag(self) -> str:
        return f'"{next(self._etags)}"'

    # ---- events ----------------------------------------------------------------------------
    async def _insert(self, request: web.Request) -> web.Response:
        owner, refused = self._refusal(request)
        if refused is not None or owner is None:
            return refused or web.Response(status=500)
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
        event = {**body, "id": event_id, "kind": "calendar#event", "etag": self._etag()}
        event.setdefault("status", "confirmed")
        self.events[key] = event
        self.counters["events_created"] += 1
        self._changed(*key)
        return web.json_response(event)

    async def _calendar(self, request: web.Request) -> web.Response:
        owner, refused = self._refusal(request)
        if refused is not None or owner is None:
            return refused or web.Response(status=500)
        calendar = request.match_info["calendar"]
        self.counters["calendars_read"] += 1
        zone = self.time_zones.get(calendar, "Europe/London")
        return web.json_response(
            {"kind": "calendar#calendar", "id": calendar, "summary": calendar, "timeZone": zone}
        )

    def _find(self, owner: str, request: web.Request) -> dict[str, Any] | None:
        key = (owner, request.match_info["calendar"], request.match_info["event"])
        return self.events.get(key) or self.sync.materialize(*key)

    async def _get(self, request: web.Request) -> web.Response:
        owner, refused = self._refusal(request)
        if refused is not None or owner is None:
            return refused or web.Response(status=500)
        event = self._find(owner, request)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        return web.json_response(event)

    async def _patch(self, request: web.Request) -> web.Response:
        owner, refused = self._refusal(request)
        if refused is not None or owner is None:
            return refused or web.Response(status=500)
        event = self._find(owner, request)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            self.if_match_seen.append(if_match)
        if self.conflict_next > 0 or (if_match is not None and if_match != event["etag"]):
            self.conflict_next = max(0, self.conflict_next - 1)
            return google_error(412, "conditionNotMet", "Precondition Failed")
        try:
            body = await request.json()
        except ValueError:
            return google_error(400, "parseError", "Parse Error")
        if "id" in body and body["id"] != event["id"]:
            return google_error(400, "invalid", "The id cannot be changed.")
        event.update(body)
        event["etag"] = self._etag()
        self.counters["events_patched"] += 1
        self._changed(owner, request.match_info["calendar"], event["id"])
        return web.json_response(event)

    async def _delete(self, request: web.Request) -> web.Response:
        owner, refused = self._refusal(request)
        if refused is not None or owner is None:
            return refused or web.Response(status=500)
        event = self._find(owner, request)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if event.get("status") == "cancelled":
            return google_error(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        event["etag"] = self._etag()
        self.counters["events_deleted"] += 1
        self._changed(owner, request.match_info["calendar"], event["id"])
        return web.Response(status=204)


def _zoneless(when: dict[str, Any]) -> bool:
    """A `dateTime` with neither an offset nor a `timeZone`: Google refuses it (400)."""
    text = when.get("dateTime")
    if not isinstance(text, str) or when.get("timeZone"):
        return False
    return not (text.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", text))
