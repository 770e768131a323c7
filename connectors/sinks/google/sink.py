"""The Google Calendar sink's I/O: one CalendarDelivery -> events.insert/patch/delete calls.

Upsert: insert with our event id; 409 ``duplicate`` (it exists, maybe from an earlier attempt
whose answer was lost) -> patch it, so a retry never makes a second event; a patch answering
404 -> insert once more; 412 ``conditionNotMet`` -> get the event's etag and patch once with
If-Match, then retry. Delete: delete; 404 / 410 ``deleted`` mean it is already gone (ok).
Every other answer is classified by `wire.classify`; transport errors propagate (the runtime
retries them).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from streams.topics import Destination

from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.google import wire
from connectors.sinks.google.config import GoogleConfig
from connectors.sinks.oauth import OAuthClient
from connectors.sinks.outbound import OutboundPolicy, audit_scope, http_client

log = logging.getLogger("wedsync.sinks.google")


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
        self.config = config or GoogleConfig()
        self._http = http or http_client(policy)
        self._base = self.config.api_base_url.rstrip("/")
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
        """Insert; on duplicate patch; a vanished event (patch 404) is inserted once more."""
        status, body, headers = await self._call(wire.insert_request(record), token)
        if wire.follow_up("insert", status) != "patch":
            return self._classify(status, body, headers)
        status, body, headers = await self._call(wire.patch_request(record), token)
        step = wire.follow_up("patch", status)
        if step == "insert":
            status, body, headers = await self._call(wire.insert_request(record), token)
            if wire.follow_up("insert", status) == "patch":
                return retry("google.duplicate", "the event reappeared while re-inserting it")
        elif step == "refetch":
            status, body, headers = await self._reapply(record, token)
        return self._classify(status, body, headers)

    async def _reapply(self, record: dict[str, Any], token: str) -> tuple[int, Any, httpx.Headers]:
        """After a 412: read the current etag and patch once with If-Match."""
        status, body, headers = await self._call(wire.get_request(record), token)
        if not 200 <= status < 300:
            return status, body, headers
        etag = body.get("etag") if isinstance(body, dict) else None
        return await self._call(wire.patch_request(record, etag=etag), token)

    async def _delete(self, record: dict[str, Any], token: str) -> Answer:
        """Delete; 404 and 410 ``deleted`` are success (already gone)."""
        status, body, headers = await self._call(wire.delete_request(record), token)
        if wire.follow_up("delete", status) == "done":
            return ok(status, wire.event_id(str(record["external_event_id"])))
        answer = self._classify(status, body, headers)
        if answer.ok:
            return ok(status, wire.event_id(str(record["external_event_id"])))
        return answer

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
    return GoogleCalendarConnector(env.policy, GoogleConfig())
