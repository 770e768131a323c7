"""A local Microsoft Graph calendar (and its OAuth token endpoint) for tests and
``wedsync fake graph``.

Routes (paths as Graph's and the Microsoft identity platform's, under the fake's base URL):

    POST   /common/oauth2/v2.0/token                    refresh-token grant
    GET    /v1.0/me/mailboxSettings                      the mailbox's timeZone (Windows name)
    GET    /v1.0/me/events, /v1.0/me/calendars/{id}/events
           with $filter=singleValueExtendedProperties/Any(ep: ep/id eq '..' and ep/value eq '..')
    POST   /v1.0/me/events, /v1.0/me/calendars/{id}/events       create (transactionId)
    GET    /v1.0/me/events/{id}                          read (with @odata.etag)
    PATCH  /v1.0/me/events/{id}                          update (If-Match -> 412)
    DELETE /v1.0/me/events/{id}                          delete (unknown: 404 ErrorItemNotFound)
    GET    /v1.0/me/calendarView/delta, /v1.0/me/calendars/{id}/calendarView/delta
                                                         the delta feed (`graph_delta`)
    POST   /v1.0/subscriptions, PATCH/DELETE/GET /v1.0/subscriptions/{id},
    POST   /v1.0/subscriptions/{id}/reauthorize          notifications (`graph_subscriptions`)

Vendor side (a test plays the vendor editing in Outlook; `owner` is `owner_of(refresh_token)`):
`vendor_upsert`, `vendor_delete`, `delta.vendor_move_occurrence`,
`delta.vendor_cancel_occurrence`; knobs `expire_delta_tokens()`, `forget_sync_state()`,
`drop_next_notifications`, `send_lifecycle(subscription_id, event)`. Every change, the sink's
writes included, bumps the delta feed's change sequence and notifies the subscriptions.

Behaviour: a create repeating a live event's ``transactionId`` returns that event (201)
without making a second one; at most `mailbox_concurrency` (4) requests per mailbox are in
flight, the next one gets 429 ``MailboxConcurrency`` with Retry-After (`latency_ms` makes
requests overlap); an unknown or expired token is 401 ``InvalidAuthenticationToken``.
Switches (fakekit): ``throttle_next`` -> 429 ``ApplicationThrottled`` with Retry-After;
``fail_next`` -> `fail_status` (503 by default; 503/504 carry Retry-After); ``expire_tokens``
(one-shot) and ``revoke_refresh`` as in the Google fake (`calendar_kit.FakeTokens`). `conflict_next`
(attribute) makes the next N patches 412; `vanish_next` deletes the next N patched events
just before the patch (someone deleted it between a find and a patch: 404).

Counters: events_created, events_patched, events_deleted, tokens_issued,
concurrency_rejections (plus requests, transaction_replays, auth_refused, refresh_refused).
`stats()["events"]` lists the stored events (series as their masters),
`stats()["subscriptions"]` the subscriptions. Delta: delta_rounds, delta_pages; subscriptions:
see `graph_subscriptions`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from streams.dev.fakes.calendar_kit import CalendarFake, bearer
from streams.dev.fakes.graph_delta import DeltaFeed
from streams.dev.fakes.graph_subscriptions import SubscriptionHub
from streams.dev.fakes.kit import Switches

T = TypeVar("T")

FILTER = re.compile(
    r"^singleValueExtendedProperties/Any\(ep: ep/id eq '((?:[^']|'')*)' "
    r"and ep/value eq '((?:[^']|'')*)'\)$"
)
EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=id eq '((?:[^']|'')*)'\)$")
DEFAULT_CALENDAR = "primary"


def graph_error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """Graph's documented error body."""
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers or None
    )


class GraphFake(CalendarFake):
    """Microsoft Graph events + token endpoint (see the module docstring)."""

    name = "graph"
    ETAG = 'W/"{}"'

    def __init__(
        self,
        switches: Switches | None = None,
        *,
        mailbox_concurrency: int = 4,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.mailbox_concurrency = mailbox_concurrency
        self.vanish_next = 0
        self.in_flight: Counter[str] = Counter()
        self.events: dict[str, dict[str, Any]] = {}  # id -> event (with private _owner etc.)
        self.mailbox_time_zone = "GMT Standard Time"  # Outlook names zones the Windows way
        self.transactions: dict[tuple[str, str], str] = {}  # (owner, transactionId) -> id
        self._loop: asyncio.AbstractEventLoop | None = None
        self.delta = DeltaFeed(self)
        self.hub = SubscriptionHub(self)
        super().__init__(
            switches, client_id=client_id, client_secret=client_secret, rotate_refresh=True
        )

    def routes(self, app: web.Application) -> None:
        app.middlewares.insert(0, self._mailbox_gate)  # outermost: counts the latency too
        app.router.add_post("/common/oauth2/v2.0/token", self.token)
        for path in ("/v1.0/me/events", "/v1.0/me/calendars/{calendar}/events"):
            app.router.add_get(path, self.authorised(self._list))
            app.router.add_post(path, self.authorised(self._create))
        app.router.add_get("/v1.0/me/mailboxSettings", self.authorised(self._mailbox_settings))
        app.router.add_get("/v1.0/me/events/{event}", self.authorised(self._get))
        app.router.add_patch("/v1.0/me/events/{event}", self.authorised(self._patch))
        app.router.add_delete("/v1.0/me/events/{event}", self.authorised(self._delete))
        self.delta.routes(app)
        self.hub.routes(app)
        app.on_startup.append(self._started)

    async def _started(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()

    def on_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the fake's event loop (vendor-side helpers are called from a
        test's thread; the stores belong to the loop), waiting for its result."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or not loop.is_running():
            return fn(*args)

        async def call() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    # ---- vendor side (see graph_delta / graph_subscriptions) -------------------------------
    def vendor_upsert(self, owner: str, calendar_id: str, event: dict[str, Any]) -> str:
        return self.delta.vendor_upsert(owner, calendar_id, event)

    def vendor_delete(self, owner: str, calendar_id: str, event_id: str) -> None:
        self.delta.vendor_delete(owner, calendar_id, event_id)

    def expire_delta_tokens(self) -> None:
        self.on_loop(self.delta.expire_delta_tokens)

    def forget_sync_state(self) -> None:
        self.on_loop(self.delta.forget_sync_state)

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        self.hub.send_lifecycle(subscription_id, event)

    @property
    def drop_next_notifications(self) -> int:
        return self.hub.drop_next_notifications

    @drop_next_notifications.setter
    def drop_next_notifications(self, count: int) -> None:
        self.hub.drop_next_notifications = count

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["events"] = [self._public(e) for e in self.events.values()]
        stats["subscriptions"] = [self.hub.public(s) for s in self.hub.subscriptions.values()]
        return stats

    # ---- shared checks -------------------------------------------------------------------
    @web.middleware
    async def _mailbox_gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """At most `mailbox_concurrency` Graph requests in flight per bearer token's mailbox."""
        if not request.path.startswith("/v1.0/"):
            response: web.StreamResponse = await handler(request)
            return response
        mailbox = self.tokens.valid.get(bearer(request), "unknown")
        if self.in_flight[mailbox] >= self.mailbox_concurrency:
            self.counters["concurrency_rejections"] += 1
            return graph_error(
                429,
                "MailboxConcurrency",
                "Application is over its MailboxConcurrency limit.",
                **self.retry_after(),
            )
        self.in_flight[mailbox] += 1
        try:
            response = await handler(request)
        finally:
            self.in_flight[mailbox] -= 1
        return response

    async def _mailbox_settings(self, request: web.Request, owner: str) -> web.Response:
        self.counters["mailbox_settings_read"] += 1
        return web.json_response({"timeZone": self.mailbox_time_zone,
                                  "language": {"locale": "en-GB"}})  # fmt: skip

    # ---- Graph's answers (calendar_kit) ----------------------------------------------------
    @staticmethod
    def error(status: int, code: str, message: str, **headers: str) -> web.Response:
        return graph_error(status, code, message, **headers)

    def throttled(self) -> web.Response:
        return graph_error(
            429, "ApplicationThrottled", "Application is over its request limit.",
            **self.retry_after(),
        )  # fmt: skip

    def failed(self) -> web.Response:
        status = self.switches.fail_status
        return graph_error(
            status,
            {503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(status, "generalException"),
            "The service is temporarily unavailable.",
            **(self.retry_after() if status in (503, 504) else {}),
        )

    def unauthorised(self) -> web.Response:
        return graph_error(
            401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
        )

    @staticmethod
    def _public(event: dict[str, Any], request: web.Request | None = None) -> dict[str, Any]:
        """The event as Graph shows it; with the extended property a `$expand` asks for."""
        public = {k: v for k, v in event.items() if not k.startswith("_")}
        match = EXPAND.match(request.query.get("$expand", "")) if request is not None else None
        if match is not None:
            prop = match.group(1).replace("''", "'")
            if prop in event["_properties"]:
                value = event["_properties"][prop]
                public["singleValueExtendedProperties"] = [{"id": prop, "value": value}]
        return public

    def _owned(self, owner: str, request: web.Request) -> dict[str, Any] | None:
        event = self.events.get(request.match_info["event"])
        return event if event is not None and event["_owner"] == owner else None

    # ---- events ----------------------------------------------------------------------------
    async def _list(self, request: web.Request, owner: str) -> web.Response:
        calendar = request.match_info.get("calendar", DEFAULT_CALENDAR)
        mine = [
            e for e in self.events.values() if e["_owner"] == owner and e["_calendar"] == calendar
        ]
        expression = request.query.get("$filter")
        if expression is not None:
            match = FILTER.match(expression)
            if match is None:
                return graph_error(400, "ErrorInvalidRequest", "Invalid filter clause.")
            prop, value = (g.replace("''", "'") for g in match.groups())
            mine = [e for e in mine if e["_properties"].get(prop) == value]
        top = int(request.query.get("$top", "10") or 10)
        return web.json_response({"value": [self._public(e, request) for e in mine[:top]]})

    async def _create(self, request: web.Request, owner: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return graph_error(400, "ErrorInvalidRequest", "Cannot read the request body.")
        if not isinstance(body.get("start"), dict) or not isinstance(body.get("end"), dict):
            return graph_error(400, "ErrorInvalidRequest", "Start and end are required.")
        transaction = body.get("transactionId")
        if transaction:
            existing = self.events.get(self.transactions.get((owner, transaction), ""))
            if existing is not None:
                self.counters["transaction_replays"] += 1
                return web.json_response(self._public(existing), status=201)
        properties = {
            p.get("id"): p.get("value")
            for p in body.pop("singleValueExtendedProperties", None) or []
            if isinstance(p, dict)
        }
        event_id = "AAMkAG" + secrets.token_urlsafe(18)
        event = {
            **body,
            "id": event_id,
            "@odata.etag": self.etag(),
            "_owner": owner,
            "_calendar": request.match_info.get("calendar", DEFAULT_CALENDAR),
            "_properties": properties,
        }
        self.events[event_id] = event
        if transaction:
            self.transactions[(owner, transaction)] = event_id
        self.delta.touched(event, "created")
        self.counters["events_created"] += 1
        return web.json_response(self._public(event), status=201)

    async def _get(self, request: web.Request, owner: str) -> web.Response:
        event = self._owned(owner, request)
        if event is None:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
        return web.json_response(self._public(event, request))

    async def _patch(self, request: web.Request, owner: str) -> web.Response:
        if self.vanish_next > 0:
            self.vanish_next -= 1
            self.events.pop(request.match_info["event"], None)
        event = self._owned(owner, request)
        if event is None:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
        if self.precondition_failed(request, event["@odata.etag"]):
            return graph_error(412, "PreconditionFailed", "The etag does not match.")
        try:
            body = await request.json()
        except ValueError:
            return graph_error(400, "ErrorInvalidRequest", "Cannot read the request body.")
        body.pop("id", None)
        for prop in body.pop("singleValueExtendedProperties", None) or []:
            if isinstance(prop, dict):
                event["_properties"][prop.get("id")] = prop.get("value")
        event.update({k: v for k, v in body.items() if not k.startswith("_")})
        event["@odata.etag"] = self.etag()
        self.delta.touched(event, "updated")
        self.counters["events_patched"] += 1
        return web.json_response(self._public(event))

    async def _delete(self, request: web.Request, owner: str) -> web.Response:
        event = self._owned(owner, request)
        if event is None:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
        del self.events[event["id"]]
        self.transactions = {k: v for k, v in self.transactions.items() if v != event["id"]}
        self.delta.removed(event)
        self.counters["events_deleted"] += 1
        return web.Response(status=204)
