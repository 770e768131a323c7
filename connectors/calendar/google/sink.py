"""The Google Calendar sink's I/O: one CalendarDelivery -> events.insert/get/patch/delete.

The write algorithm is `connectors.calendar.upsert` (create if absent, re-apply with If-Match
unless the event holds this version or a newer one, 412 -> re-read, vanished -> create once
more; delete unless newer); the skeleton (OAuth token, audit scope, the zone cache, JSON
calls) is `connectors.calendar.rest`. What is Google's, in `_Events` (the port):

    create   events.insert with our event id (`wire.event_id`): 409 ``duplicate`` = exists
             (perhaps from an earlier attempt whose answer was lost: never a second event)
    read     events.get: its etag and our version property; 404 = gone
    update   events.patch with If-Match; 404 = gone, 412 ``conditionNotMet`` = changed
    copies   events.get; 404, 410 and an already ``cancelled`` event (Google keeps deleted
             events so) = gone
    remove   events.delete; 404 and 410 ``deleted`` = gone
A wall-clock event is placed in the calendar's own ``timeZone`` (calendars.get, asked once
per calendar). Every other answer is classified by `wire.classify`; transport errors
propagate (the runtime retries them).
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.calendar import upsert
from connectors.calendar.google import wire
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.rest import Reply, RestCalendarSink
from connectors.calendar.rest_wire import Request
from connectors.calendar.upsert import EXISTS, Changed, Exists, Gone, Held
from connectors.sinks.answer import Answer, ok
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.outbound import OutboundPolicy


class GoogleCalendarConnector(RestCalendarSink):
    """Delivers calendar records to Google Calendar v3 (see the module docstring)."""

    name = "google"

    def __init__(
        self,
        policy: OutboundPolicy,
        config: GoogleConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or GoogleConfig.model_construct()  # defaults, not the env
        super().__init__(policy, self.config, http=http)

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One integration (one Google user's quota): `rate_per_s` with `burst`."""
        return (
            f"google:{record.get('integration_id') or '-'}",
            Limits(rate_per_s=self.config.rate_per_s, burst=self.config.burst),
        )

    def _zone_key(self, record: dict[str, Any]) -> tuple[str, ...]:
        return (str(record.get("integration_id")), str(record.get("calendar_id") or "primary"))

    def _zone_request(self, record: dict[str, Any]) -> Request:
        return wire.calendar_request(record)

    def _verdict(self, status: int, body: Any, retry_after: str | None) -> Answer:
        return wire.classify(status, body, retry_after)

    async def _write(self, record: dict[str, Any], token: str, ctx: DeliveryContext) -> Answer:
        return await upsert.write(_Events(self, record, token), record)


class _Events:
    """`upsert.Port` for one record: our event in one Google calendar."""

    def __init__(self, sink: GoogleCalendarConnector, record: dict[str, Any], token: str) -> None:
        self.name = sink.name
        self._sink, self._record, self._token = sink, record, token
        self._id = wire.event_id(str(record["external_event_id"]))

    async def _call(self, request: Request) -> Reply:
        return await self._sink.call(request, self._token)

    async def create(self) -> Answer | Exists:
        status, body, headers = await self._call(wire.insert_request(self._record))
        if wire.follow_up("insert", status) == "patch":
            return EXISTS
        return self._sink.classify(status, body, headers)

    async def read(self) -> Held | Gone | Answer:
        status, body, headers = await self._call(wire.get_request(self._record))
        if status in wire.GONE:
            return Gone(status, self._id)
        if not 200 <= status < 300:
            return self._sink.classify(status, body, headers)
        etag = body.get("etag") if isinstance(body, dict) else None
        return Held(wire.stored_version(body), str(etag) if etag else None, self._id, body)

    async def update(self, held: Held) -> Answer | Changed | Gone:
        status, body, headers = await self._call(wire.patch_request(self._record, etag=held.etag))
        step = wire.follow_up("patch", status)
        if step == "insert":
            return Gone(status, self._id)
        if step == "refetch":  # not logged: the algorithm reads and re-applies
            return Changed(wire.classify(status, body, headers.get("Retry-After")))
        return self._sink.classify(status, body, headers)

    async def copies(self) -> list[Held] | Gone | Answer:
        found = await self.read()
        if not isinstance(found, Held):
            return found
        if isinstance(found.body, dict) and found.body.get("status") == "cancelled":
            return Gone(410, self._id)  # deleted before: Google keeps it as cancelled
        return [found]

    async def remove(self, held: Held) -> Answer | Gone:
        status, body, headers = await self._call(wire.delete_request(self._record))
        if wire.follow_up("delete", status) == "done":
            return Gone(status, self._id)
        answer = self._sink.classify(status, body, headers)
        return ok(status, self._id) if answer.ok else answer


def build(env: SinkEnv) -> GoogleCalendarConnector:
    """The connector with its settings from ``WEDSYNC_GOOGLE_*``."""
    return GoogleCalendarConnector(env.policy, env.settings(GoogleConfig))
