"""The CalDAV provider's I/O: httpx through the outbound policy, Basic auth per integration.

Upsert (one attempt):
    PUT {event} If-None-Match: *            201/204: created -> OK (provider_id = ETag)
    412 (it exists):  GET {event} -> ETag, SEQUENCE, X-WEDSYNC-VERSION
                      stored version >= ours  -> OK, nothing written (a replay, or older news)
                      PUT If-Match: <etag> with SEQUENCE + 1
                      412 again (changed meanwhile): refetch and re-apply once more, then RETRY
Delete:
    GET {event} (404/410 -> OK, already gone; a stored newer version -> OK, kept), then
    DELETE If-Match: <etag>; 404/410 -> OK; 412 -> RETRY.

Every answer is classified by wire.classify (never raised). Timeouts and connection errors
are RETRY; a host the outbound policy refuses, a calendar_id outside the integration's home,
or a record that cannot become a VEVENT, is FATAL; a missing credential raises
MissingCredential (a FatalError: the runtime dead-letters it).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from streams.topics import Destination

from connectors.calendar.caldav import wire
from connectors.calendar.caldav.config import CalDavConfig
from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.credentials import Credential
from connectors.sinks.outbound import OutboundPolicy, OutboundRefused, audit_scope, http_client

log = logging.getLogger("wedsync.sinks.caldav")

REAPPLY_ROUNDS = 2  # If-Match PUTs after the first 412: the re-apply and "once more"


class CalDavConnector:
    """Delivers CalendarDelivery records whose provider is ``caldav``.

    ``CalDavConnector(policy, config=None)``; tests pass ``OutboundPolicy.loopback_for_tests(port)``
    and put the integration row (webhook_url = Radicale collection or home, settings.username,
    api_key = password) in a MemoryCredentialStore."""

    destination = Destination.CALENDAR

    def __init__(self, policy: OutboundPolicy, config: CalDavConfig | None = None) -> None:
        self.policy = policy
        self.config = config or CalDavConfig.model_construct()  # defaults, not the env
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The policy-checked client, created on first use."""
        if self._client is None:
            self._client = http_client(self.policy)
        return self._client

    def target(self, record: dict[str, Any]) -> str:
        return f"calendar:{record.get('integration_id') or 'unknown'}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One limit per integration (account): WEDSYNC_CALDAV_CONCURRENCY (default 5)."""
        cfg = self.config
        return f"caldav:{record.get('integration_id') or 'unknown'}", Limits(
            rate_per_s=cfg.rate_per_s, burst=cfg.burst, concurrency=cfg.concurrency
        )

    def credential_key(self, record: dict[str, Any]) -> str | None:
        iid = record.get("integration_id")
        return f"integration:{iid}" if iid else None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """One attempt of an upsert or delete (see the module docstring)."""
        iid = record.get("integration_id")
        if not iid:
            return fatal("caldav.no_integration", "the record names no integration")
        if ctx.refresh:
            ctx.credentials.invalidate("integration", iid)
        credential = await ctx.credentials.get("integration", iid)
        try:
            href, auth = self._where(record, credential, iid)
        except wire.CollectionRefused as exc:
            return fatal("caldav.collection_refused", str(exc))
        with audit_scope(self.destination.value, self.target(record)):
            try:
                if record.get("operation") == "delete":
                    return await self._delete(record, href, auth)
                return await self._upsert(record, href, auth)
            except wire.EventRefused as exc:
                return fatal("caldav.bad_event", str(exc))
            except OutboundRefused as exc:
                return fatal("caldav.refused", str(exc))
            except httpx.TimeoutException:
                return retry("caldav.timeout", "no answer within the timeout")
            except httpx.TransportError as exc:
                return retry("caldav.connect", type(exc).__name__)

    def _where(
        self, record: dict[str, Any], credential: Credential, iid: str
    ) -> tuple[str, httpx.BasicAuth]:
        settings = credential.get("settings")
        home = wire.home_url(credential.get("webhook_url"), settings, self.config.default_home_url)
        if home is None:
            raise wire.CollectionRefused("the integration has no CalDAV URL")
        user = wire.username(settings)
        if user is None:
            raise wire.CollectionRefused("the integration has no settings.username")
        password = credential.secret("api_key", f"integration {iid}")
        collection = wire.collection_url(home, str(record.get("calendar_id") or ""))
        return wire.event_url(collection, record["external_event_id"]), httpx.BasicAuth(
            user, password
        )

    async def _upsert(self, record: dict[str, Any], href: str, auth: httpx.BasicAuth) -> Answer:
        body = wire.build_event(record, sequence=0, prodid=self.config.prodid)
        response = await self.client.put(href, content=body, headers=wire.create_headers(),
                                         auth=auth)  # fmt: skip
        if response.status_code != 412:
            return self._answer(response, "upsert")
        ours = int(record.get("aggregate_version") or 0)
        for _ in range(REAPPLY_ROUNDS):
            current = await self.client.get(href, auth=auth)
            if current.status_code in (404, 410):  # deleted meanwhile: create again
                response = await self.client.put(
                    href, content=body, headers=wire.create_headers(), auth=auth
                )
            elif not current.is_success:
                return self._answer(current, "upsert")
            else:
                etag = current.headers.get("ETag")
                held = wire.stored(current.content)
                if held.version is not None and held.version >= ours:
                    return ok(current.status_code, provider_id=etag)
                body = wire.build_event(
                    record, sequence=held.sequence + 1, prodid=self.config.prodid
                )
                response = await self.client.put(
                    href, content=body, headers=wire.update_headers(etag), auth=auth
                )
            if response.status_code != 412:
                return self._answer(response, "upsert")
        return retry("caldav.412", "the event kept changing while we updated it", status=412)

    async def _delete(self, record: dict[str, Any], href: str, auth: httpx.BasicAuth) -> Answer:
        current = await self.client.get(href, auth=auth)
        if current.status_code in wire.GONE_ON_DELETE or not current.is_success:
            return self._answer(current, "delete")
        etag = current.headers.get("ETag")
        held = wire.stored(current.content)
        if held.version is not None and held.version > int(record.get("aggregate_version") or 0):
            return ok(current.status_code, provider_id=etag)  # a newer upsert is kept
        response = await self.client.delete(href, headers=wire.delete_headers(etag), auth=auth)
        return self._answer(response, "delete")

    @staticmethod
    def _answer(response: httpx.Response, operation: str) -> Answer:
        answer = wire.classify(
            response.status_code,
            operation=operation,
            retry_after=response.headers.get("Retry-After"),
            body=response.text[:2000] if response.status_code in (403, 409) else "",
        )
        if answer.ok and operation == "upsert":
            return ok(response.status_code, provider_id=response.headers.get("ETag"))
        return answer

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def build(env: SinkEnv) -> CalDavConnector:
    """The connector from WEDSYNC_CALDAV_* settings (the calendar dispatcher calls this)."""
    return CalDavConnector(env.policy, env.settings(CalDavConfig))
