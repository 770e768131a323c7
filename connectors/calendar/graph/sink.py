"""The Microsoft Graph calendar sink's I/O: one CalendarDelivery -> find, then create, patch
or delete.

The write algorithm is `connectors.calendar.upsert` (create if absent, re-apply with If-Match
unless the event holds this version or a newer one, 412 -> re-read, vanished -> create once
more; delete unless newer); the skeleton (OAuth token, audit scope, the zone cache, JSON
calls) is `connectors.calendar.rest`. What is Graph's, in `_Events` (the port):

    create   Graph chooses event ids: find our event by its extended property (our version
             property expanded); found = exists; none -> POST with ``transactionId`` (a
             retried create, e.g. after a lost answer, returns the event Graph already made).
             After a vanish the POST is made without a second find.
    read     the found event first (no second call), then GET by id; 404 = gone
    update   PATCH with If-Match (``@odata.etag``); 404 = gone (deleted in Outlook between
             find and patch), 412 = changed
    copies   every event the find returns (duplicates included); none = gone
    remove   DELETE each; 404 ErrorItemNotFound = gone
A wall-clock event is placed in the mailbox's own zone (mailboxSettings, asked once per
integration). Every other answer is classified by `wire.classify`; transport errors propagate
(the runtime retries them).

The connector never limits itself: the runtime applies `limit()` (one mailbox: 4 concurrent
requests, 10,000 per 10 minutes); without it the mailbox answers 429 MailboxConcurrency, which
is classified as backpressure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connectors.calendar import upsert
from connectors.calendar.graph import wire
from connectors.calendar.graph.config import GraphConfig
from connectors.calendar.rest import Reply, RestCalendarSink
from connectors.calendar.rest_wire import Request
from connectors.calendar.upsert import EXISTS, Changed, Exists, Gone, Held
from connectors.sinks.answer import Answer, ok
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.outbound import OutboundPolicy


class GraphCalendarConnector(RestCalendarSink):
    """Delivers calendar records to Microsoft Graph (see the module docstring)."""

    name = "graph"

    def __init__(
        self,
        policy: OutboundPolicy,
        config: GraphConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or GraphConfig.model_construct()  # defaults, not the env
        super().__init__(policy, self.config, http=http, scope=self.config.scope)

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One mailbox (one integration): `concurrency` in flight and
        `requests_per_window` per `window_s`."""
        rate = self.config.requests_per_window / self.config.window_s
        return (
            f"graph:{record.get('integration_id') or '-'}",
            Limits(rate_per_s=rate, burst=self.config.burst, concurrency=self.config.concurrency),
        )

    def _zone_key(self, record: dict[str, Any]) -> tuple[str, ...]:
        return (str(record.get("integration_id")),)  # an integration is one mailbox

    def _zone_request(self, record: dict[str, Any]) -> Request:
        return wire.mailbox_settings_request()

    def _verdict(self, status: int, body: Any, retry_after: str | None) -> Answer:
        return wire.classify(status, body, retry_after)

    async def _write(self, record: dict[str, Any], token: str, ctx: DeliveryContext) -> Answer:
        return await upsert.write(_Events(self, record, token, ctx.idempotency_key), record)


def _held(event: Mapping[str, Any]) -> Held:
    etag = event.get("@odata.etag")
    return Held(wire.stored_version(event), str(etag) if etag else None, str(event["id"]))


class _Events:
    """`upsert.Port` for one record: the events carrying our id in one mailbox."""

    def __init__(
        self, sink: GraphCalendarConnector, record: dict[str, Any], token: str, key: str
    ) -> None:
        self.name = sink.name
        self._sink, self._record, self._token, self._key = sink, record, token, key
        self._found: Held | None = None  # the find's event, the first read
        self._id: str | None = None  # the event's id once found
        self._looked = False

    async def _call(self, request: Request) -> Reply:
        return await self._sink.call(request, self._token)

    async def _find(self) -> list[Mapping[str, Any]] | Answer:
        status, body, headers = await self._call(wire.find_request(self._record))
        if not 200 <= status < 300:
            return self._sink.classify(status, body, headers)
        return wire.found_events(body)

    async def create(self) -> Answer | Exists:
        if not self._looked:
            self._looked = True
            found = await self._find()
            if isinstance(found, Answer):
                return found
            if found:
                self._found = _held(found[0])
                self._id = self._found.id
                return EXISTS
        answer = self._sink.classify(
            *await self._call(wire.create_request(self._record, self._key))
        )
        return self._with_id(answer)

    async def read(self) -> Held | Gone | Answer:
        if self._found is not None:
            found, self._found = self._found, None
            return found
        event_id = str(self._id)
        status, body, headers = await self._call(wire.get_request(event_id))
        if status == 404:
            return Gone(status, event_id)
        if not (200 <= status < 300 and isinstance(body, dict)):
            return self._sink.classify(status, body, headers)
        return _held({**body, "id": event_id})

    async def update(self, held: Held) -> Answer | Changed | Gone:
        request = wire.patch_request(self._record, str(held.id), etag=held.etag)
        status, body, headers = await self._call(request)
        if status == 404:
            return Gone(status, held.id)
        if status == 412:  # not logged: the algorithm reads and re-applies
            return Changed(wire.classify(status, body, headers.get("Retry-After")))
        return self._with_id(self._sink.classify(status, body, headers))

    async def copies(self) -> list[Held] | Gone | Answer:
        found = await self._find()
        if isinstance(found, Answer):
            return found
        return [_held(event) for event in found] or Gone(404)

    async def remove(self, held: Held) -> Answer | Gone:
        status, body, headers = await self._call(wire.delete_request(str(held.id)))
        if status == 404:
            return Gone(status, held.id)
        answer = self._sink.classify(status, body, headers)
        return ok(status, held.id) if answer.ok else answer

    def _with_id(self, answer: Answer) -> Answer:
        """An OK without an id (a PATCH's) reports the found event's."""
        if answer.ok and answer.provider_id is None and self._id is not None:
            return ok(answer.status, self._id)
        return answer


def build(env: SinkEnv) -> GraphCalendarConnector:
    """The connector with its settings from ``WEDSYNC_GRAPH_*``."""
    return GraphCalendarConnector(env.policy, env.settings(GraphConfig))
