"""The Microsoft Graph calendar sink's I/O: one CalendarDelivery -> find, then create, patch
or delete.

Upsert: find our event by its extended property (with our version property expanded);
found -> PATCH it with If-Match (its etag) unless it already holds this record's aggregate
version or a newer one (a 404 there means it vanished between find and patch: it is
re-created once; a 412 -> GET it and PATCH once more, then retry); not found -> POST with
``transactionId`` (a retried create, e.g. after a lost answer, returns the event Graph
already made). Delete: find; none -> ok; DELETE each found unless it holds a newer version
(404 ErrorItemNotFound -> ok, already gone). Every other answer is
classified by `wire.classify`; transport errors propagate (the runtime retries them).

The connector never limits itself: the runtime applies `limit()` (one mailbox: 4 concurrent
requests, 10,000 per 10 minutes); without it the mailbox answers 429 MailboxConcurrency, which
is classified as backpressure.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from streams.topics import Destination

from connectors.calendar.graph import wire
from connectors.calendar.graph.config import GraphConfig
from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.oauth import OAuthClient
from connectors.sinks.outbound import OutboundPolicy, audit_scope, http_client

log = logging.getLogger("wedsync.sinks.graph")

Reply = tuple[int, Any, httpx.Headers]
REAPPLY_ROUNDS = 2  # patches of a found event before a 412 becomes RETRY


class GraphCalendarConnector:
    """Delivers calendar records to Microsoft Graph (see the module docstring).

    `http` may be injected (tests); by default a policy-checked client is made."""

    destination = Destination.CALENDAR

    def __init__(
        self,
        policy: OutboundPolicy,
        config: GraphConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or GraphConfig.model_construct()  # defaults, not the env
        self._http = http or http_client(policy)
        self._base = self.config.api_base_url.rstrip("/")
        self._zones: dict[str, str | None] = {}  # integration (a mailbox) -> its zone
        self.oauth = OAuthClient(
            self._http,
            token_url=self.config.token_url,
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            prefix="graph",
            scope=self.config.scope,
            skew_s=self.config.token_skew_s,
        )

    # ---- the Connector protocol --------------------------------------------------------
    def target(self, record: dict[str, Any]) -> str:
        return f"calendar:{record.get('integration_id') or '-'}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One mailbox (one integration): `concurrency` in flight and
        `requests_per_window` per `window_s`."""
        rate = self.config.requests_per_window / self.config.window_s
        return (
            f"graph:{record.get('integration_id') or '-'}",
            Limits(rate_per_s=rate, burst=self.config.burst, concurrency=self.config.concurrency),
        )

    def credential_key(self, record: dict[str, Any]) -> str | None:
        integration_id = record.get("integration_id")
        return f"integration:{integration_id}" if integration_id else None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """One attempt: token, then upsert or delete. Returns the classified answer; raises
        only for transport errors and a missing credential row (FatalError)."""
        integration_id = record.get("integration_id")
        if not integration_id:
            return fatal("graph.no_integration", "the record names no integration")
        with audit_scope(self.destination.value, self.target(record)):
            token = await self.oauth.access_token(str(integration_id), ctx)
            if isinstance(token, Answer):
                return token
            try:
                if record.get("operation") == "delete":
                    return await self._delete(record, token)
                return await self._upsert(record, token, ctx.idempotency_key)
            except wire.BadRecord as exc:
                return fatal("graph.bad_record", str(exc))

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the calls ----------------------------------------------------------------------
    async def _upsert(self, record: dict[str, Any], token: str, key: str) -> Answer:
        """Find; none -> create; found -> patch with If-Match unless it already holds this
        version or a newer one; 404 -> create once; 412 -> read and patch once more. A
        wall-clock event is placed in the mailbox's own zone first."""
        if wire.needs_mailbox_zone(record):
            mailbox = str(record.get("integration_id"))
            if mailbox not in self._zones:
                status, body, headers = await self._call(wire.mailbox_settings_request(), token)
                if not 200 <= status < 300:
                    return self._classify(status, body, headers)
                zone = body.get("timeZone") if isinstance(body, dict) else None
                self._zones[mailbox] = str(zone) if zone else None
            record = wire.placed(record, self._zones[mailbox])
        status, body, headers = await self._call(wire.find_request(record), token)
        if not 200 <= status < 300:
            return self._classify(status, body, headers)
        found = wire.found_events(body)
        if not found:
            return self._classify(*await self._call(wire.create_request(record, key), token))
        event, event_id = found[0], str(found[0]["id"])
        for _ in range(REAPPLY_ROUNDS):
            if wire.is_stale(event, record):
                return ok(200, event_id)
            etag = event.get("@odata.etag")
            request = wire.patch_request(record, event_id, etag=str(etag) if etag else None)
            status, body, headers = await self._call(request, token)
            if status == 412:  # changed since we read it: read again
                status, body, headers = await self._call(wire.get_request(event_id), token)
                if 200 <= status < 300 and isinstance(body, dict):
                    event = body
                    continue
            if status == 404:  # gone since the find: make it again (upsert means "be there")
                status, body, headers = await self._call(wire.create_request(record, key), token)
            answer = self._classify(status, body, headers)
            if answer.ok and answer.provider_id is None:
                return ok(answer.status, event_id)
            return answer
        return retry("graph.412", "the event kept changing while we updated it", status=412)

    async def _delete(self, record: dict[str, Any], token: str) -> Answer:
        """Delete every event carrying our id unless it holds a newer version; none found or
        404 means already gone."""
        status, body, headers = await self._call(wire.find_request(record), token)
        if not 200 <= status < 300:
            return self._classify(status, body, headers)
        found = wire.found_events(body)
        if not found:
            return ok(404)
        for event in found:
            if wire.is_stale(event, record):
                continue  # a newer upsert is kept
            status, body, headers = await self._call(wire.delete_request(str(event["id"])), token)
            if status != 404 and not 200 <= status < 300:
                return self._classify(status, body, headers)
        return ok(status, str(found[0]["id"]))

    def _classify(self, status: int, body: Any, headers: httpx.Headers) -> Answer:
        answer = wire.classify(status, body, headers.get("Retry-After"))
        if not answer.ok:
            log.info("graph answered status=%s error_class=%s", status, answer.error_class)
        return answer

    async def _call(self, request: wire.Request, token: str) -> Reply:
        """Make one Graph call; (status, parsed JSON body or None, headers)."""
        response = await self._http.request(
            request.method,
            self._base + request.path,
            params=request.params or None,
            headers={"Authorization": f"Bearer {token}", **request.headers},
            json=request.json,
        )
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = None
        return response.status_code, body, response.headers


def build(env: SinkEnv) -> GraphCalendarConnector:
    """The connector with its settings from ``WEDSYNC_GRAPH_*``."""
    return GraphCalendarConnector(env.policy, env.settings(GraphConfig))
