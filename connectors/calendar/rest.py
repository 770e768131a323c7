"""The sink skeleton Google's and Graph's calendar connectors share: JSON calls with an OAuth
access token (the integration's stored refresh token, `connectors.sinks.oauth`).

`RestCalendarSink` is the Connector protocol up to the provider's part: the target and the
credential key are the integration; `deliver` refuses a record naming no integration, opens
the audit scope, gets the access token (its refusal is the answer), places a wall-clock
event in the calendar's own zone (asked once per `_zone_key`, kept), then runs the provider's
`_write` (which runs `connectors.calendar.upsert` over its port); a `BadRecord` is FATAL
``<name>.bad_record``. `call` makes one JSON call, `classify` classifies and logs a
refusal (the status and error class only). A subclass gives `name`, `limit`, the zone's
request and key, and `_write`."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import httpx
from streams.topics import Destination

from connectors.calendar import local
from connectors.calendar.rest_config import OAuthApiConfig
from connectors.calendar.rest_wire import BadRecord, Request
from connectors.sinks.answer import Answer, fatal
from connectors.sinks.base import DeliveryContext, Limits
from connectors.sinks.oauth import OAuthClient
from connectors.sinks.outbound import OutboundPolicy, audit_scope, http_client

Reply = tuple[int, Any, httpx.Headers]  # status, parsed JSON body (or None), headers


class RestCalendarSink(ABC):
    """Delivers calendar records to one JSON calendar API (see the module docstring).

    `http` may be injected (tests); by default a policy-checked client is made."""

    destination = Destination.CALENDAR
    name: ClassVar[str]  # "google", "graph": error classes, limit keys, the OAuth prefix

    def __init__(
        self,
        policy: OutboundPolicy,
        config: OAuthApiConfig,
        *,
        http: httpx.AsyncClient | None = None,
        scope: str | None = None,
    ) -> None:
        self._http = http or http_client(policy)
        self._base = config.api_base_url.rstrip("/")
        self._zones: dict[tuple[str, ...], str | None] = {}  # `_zone_key` -> its zone
        self._log = logging.getLogger(f"wedsync.sinks.{self.name}")
        self.oauth = OAuthClient(
            self._http,
            token_url=config.token_url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            prefix=self.name,
            scope=scope,
            skew_s=config.token_skew_s,
        )

    # ---- the provider's part --------------------------------------------------------------
    @abstractmethod
    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]: ...

    @abstractmethod
    def _zone_key(self, record: dict[str, Any]) -> tuple[str, ...]:
        """Whose zone a wall-clock event is read in (one calendar, one mailbox)."""

    @abstractmethod
    def _zone_request(self, record: dict[str, Any]) -> Request:
        """The call whose JSON answer names that zone as ``timeZone``."""

    @abstractmethod
    async def _write(self, record: dict[str, Any], token: str, ctx: DeliveryContext) -> Answer:
        """The upsert or delete of the (placed) record."""

    # ---- the Connector protocol ------------------------------------------------------------
    def target(self, record: dict[str, Any]) -> str:
        return f"calendar:{record.get('integration_id') or '-'}"

    def credential_key(self, record: dict[str, Any]) -> str | None:
        integration_id = record.get("integration_id")
        return f"integration:{integration_id}" if integration_id else None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """One attempt: token, zone, then upsert or delete. Returns the classified answer;
        raises only for transport errors and a missing credential row (FatalError)."""
        integration_id = record.get("integration_id")
        if not integration_id:
            return fatal(f"{self.name}.no_integration", "the record names no integration")
        with audit_scope(self.destination.value, self.target(record)):
            token = await self.oauth.access_token(str(integration_id), ctx)
            if isinstance(token, Answer):
                return token
            try:
                placed = await self._placed(record, token)
                if isinstance(placed, Answer):
                    return placed
                return await self._write(placed, token, ctx)
            except BadRecord as exc:
                return fatal(f"{self.name}.bad_record", str(exc))

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the calls --------------------------------------------------------------------------
    async def _placed(self, record: dict[str, Any], token: str) -> dict[str, Any] | Answer:
        """`record` with the zone of its wall-clock times when routing could not place it:
        the calendar's (or mailbox's) own, kept per `_zone_key`, else the record's fallback;
        a refused read is answered as any call is. Upsert only: a delete needs no times."""
        if record.get("operation") == "delete" or not local.needs_own_zone(record):
            return record
        key = self._zone_key(record)
        if key not in self._zones:
            status, body, headers = await self.call(self._zone_request(record), token)
            if not 200 <= status < 300:
                return self.classify(status, body, headers)
            zone = body.get("timeZone") if isinstance(body, dict) else None
            self._zones[key] = str(zone) if zone else None
        return local.placed(record, self._zones[key])

    def classify(self, status: int, body: Any, headers: httpx.Headers) -> Answer:
        answer = self._verdict(status, body, headers.get("Retry-After"))
        if not answer.ok:
            self._log.info(
                "%s answered status=%s error_class=%s", self.name, status, answer.error_class
            )
        return answer

    @abstractmethod
    def _verdict(self, status: int, body: Any, retry_after: str | None) -> Answer:
        """The provider's `wire.classify`."""

    async def call(self, request: Request, token: str) -> Reply:
        """Make one API call; (status, parsed JSON body or None, headers)."""
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
