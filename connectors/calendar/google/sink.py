"""The Google Calendar sink's I/O: one CalendarDelivery -> events.insert/patch/delete calls.

Upsert: insert with our event id; 409 ``duplicate`` (it exists, maybe from an earlier attempt
whose answer was lost) -> get it and patch it with If-Match (its etag), so a retry never makes
a second event; nothing is written when the event already holds this record's aggregate
version or a newer one (ordering: retry topics deliver out of order); a patch answering 404
-> insert once more; 412 ``conditionNotMet`` -> get and patch once more, then retry.
Delete: get, then delete unless a newer version is there; 404 / 410 ``deleted`` / an already
cancelled event mean it is already gone (ok).
Every other answer is classified by `wire.classify`; transport errors propagate (the runtime
retries them).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from streams.topics import Destination

from connectors.calendar.google import wire
from connectors.calendar.google.config import GoogleConfig
from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.oauth import OAuthClient
from connectors.sinks.outbound import OutboundPolicy, audit_scope, http_client

log = logging.getLogger("wedsync.sinks.google")

REAPPLY_ROUNDS = 2  # reads + patches of an existing event before a 412 becomes RETRY


class GoogleCalendarConnector:
    """Delivers calendar records to Google Calendar v3 (see the module docstring).

    `http` may be injected (tests); by default a policy-checked client is made."""

    destination = Destination.CALENDAR

    def __init__(
        self,
        policy: OutboundPolicy,
        config: GoogleConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or GoogleConfig.model_construct()  # defaults, not the env
        self._http = http or http_client(policy)
        self._base = self.config.api_base_url.rstrip("/")
        self._zones: dict[tuple[str, str], str | None] = {}  # (integration, calendar) -> zone
        self.oauth = OAuthClient(
            self._http,
            token_url=self.config.token_url,
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            prefix="google",
            skew_s=self.config.token_skew_s,
        )

    # ---- the Connector protocol --------------------------------------------------------
    def target(self, record: dict[str, Any]) -> str:
        return f"calendar:{record.get('integration_id') or '-'}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One integration (one Google user's quota): `rate_per_s` with `burst`."""
        return (
            f"google:{record.get('integration_id') or '-'}",
            Limits(rate_per_s=self.config.rate_per_s, burst=self.config.burst),
        )

    def credential_key(self, record: dict[str, Any]) -> str | None:
        integration_id = record.get("integration_id")
        return f"integration:{integration_id}" if integration_id else None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """One attempt: token, then upsert or delete. Returns the classified answer; raises
        only for transport errors and a missing credential row (FatalError)."""
        integration_id = record.get("integration_id")
        if not integration_id:
            return fatal("google.no_integration", "the record names no integration")
        with audit_scope(self.destination.value, self.target(record)):
            token = await self.oauth.access_token(str(integration_id), ctx)
            if isinstance(token, Answer):
                return token
            try:
                if record.get("operation") == "delete":
                    return await self._delete(record, token)
                return await self._upsert(record, token)
            except wire.BadRecord as exc:
                return fatal("google.bad_record", str(exc))

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the calls ----------------------------------------------------------------------
    async def _upsert(self, record: dict[str, Any], token: str) -> Answer:
        """Insert; when it exists (409), read it and patch with If-Match unless it already
        holds this version or a newer one; a vanished event is inserted once more; a 412
        (changed since our read) reads and patches once more, then retries. A wall-clock
        event is placed in the calendar's own zone first (`_placed`)."""
        placed = await self._placed(record, token)
        if isinstance(placed, Answer):
            return placed
        record = placed
        status, body, headers = await self._call(wire.insert_request(record), token)
        if wire.follow_up("insert", status) != "patch":
            return self._classify(status, body, headers)
        reinserted = False
        for _ in range(REAPPLY_ROUNDS):
            status, body, headers = await self._call(wire.get_request(record), token)
            if 200 <= status < 300:
                if wire.is_stale(body, record):
                    return ok(status, self._event_id(record))
                etag = body.get("etag") if isinstance(body, dict) else None
                request = wire.patch_request(record, etag=etag)
                status, body, headers = await self._call(request, token)
            if wire.follow_up("patch", status) == "insert" and not reinserted:
                reinserted = True  # gone since the 409: make it again, once
                status, body, headers = await self._call(wire.insert_request(record), token)
                if wire.follow_up("insert", status) == "patch":
                    continue
                return self._classify(status, body, headers)
            if wire.follow_up("patch", status) != "refetch":
                return self._classify(status, body, headers)
        return retry(
            "google.conditionNotMet", "the event kept changing while we updated it", status=412
        )

    async def _placed(self, record: dict[str, Any], token: str) -> dict[str, Any] | Answer:
        """`record` with the zone of its wall-clock times when routing could not place it:
        the calendar's own `timeZone` (calendars.get, kept per calendar), else the record's
        fallback; a refused read is answered as any call is."""
        if not wire.needs_calendar_zone(record):
            return record
        key = (str(record.get("integration_id")), str(record.get("calendar_id") or "primary"))
        if key not in self._zones:
            status, body, headers = await self._call(wire.calendar_request(record), token)
            if not 200 <= status < 300:
                return self._classify(status, body, headers)
            zone = body.get("timeZone") if isinstance(body, dict) else None
            self._zones[key] = str(zone) if zone else None
        return wire.placed(record, self._zones[key])

    async def _delete(self, record: dict[str, Any], token: str) -> Answer:
        """Read, then delete unless a newer version is there; 404, 410 ``deleted`` and an
        already cancelled event are success (already gone)."""
        status, body, headers = await self._call(wire.get_request(record), token)
        if wire.follow_up("delete", status) == "done":
            return ok(status, self._event_id(record))
        if not 200 <= status < 300:
            return self._classify(status, body, headers)
        if isinstance(body, dict) and body.get("status") == "cancelled":
            return ok(410, self._event_id(record))
        if wire.is_stale(body, record):
            return ok(status, self._event_id(record))  # a newer upsert is kept
        status, body, headers = await self._call(wire.delete_request(record), token)
        if wire.follow_up("delete", status) == "done":
            return ok(status, self._event_id(record))
        answer = self._classify(status, body, headers)
        return ok(status, self._event_id(record)) if answer.ok else answer

    @staticmethod
    def _event_id(record: dict[str, Any]) -> str:
        return wire.event_id(str(record["external_event_id"]))

    def _classify(self, status: int, body: Any, headers: httpx.Headers) -> Answer:
        answer = wire.classify(status, body, headers.get("Retry-After"))
        if not answer.ok:
            log.info("google answered status=%s error_class=%s", status, answer.error_class)
        return answer

    async def _call(self, request: wire.Request, token: str) -> tuple[int, Any, httpx.Headers]:
        """Make one API call; (status, parsed JSON body or None, headers)."""
        response = await self._http.request(
            request.method,
            self._base + request.path,
            headers={"Authorization": f"Bearer {token}", **request.headers},
            json=request.json,
        )
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = None
        return response.status_code, body, response.headers


def build(env: SinkEnv) -> GoogleCalendarConnector:
    """The connector with its settings from ``WEDSYNC_GOOGLE_*``."""
    return GoogleCalendarConnector(env.policy, env.settings(GoogleConfig))
