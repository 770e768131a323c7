"""The CalDAV provider's I/O: httpx through the outbound policy, Basic auth per integration.

The write algorithm is `connectors.calendar.upsert` (create if absent, re-apply with If-Match
unless the event holds this version or a newer one, 412 -> re-read, vanished -> create once
more; delete unless newer). What is CalDAV's, in `_Resource` (the port), on the event's URL:

    create   PUT If-None-Match: *            412 = exists; an OK's provider_id is the ETag
    read     GET -> ETag, SEQUENCE, X-WEDSYNC-VERSION; 404/410 = gone; the ETag is the id
             reported when nothing is written
    update   PUT If-Match: <etag> with SEQUENCE + 1; 412 = changed, 404/410 = gone
    copies   that GET (one resource per UID)
    remove   DELETE If-Match: <etag>; 404/410 -> OK; 412 -> RETRY

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

from connectors.calendar import upsert
from connectors.calendar.caldav import wire
from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.upsert import EXISTS, Changed, Exists, Gone, Held
from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.credentials import Credential
from connectors.sinks.outbound import OutboundPolicy, OutboundRefused, audit_scope, http_client

log = logging.getLogger("wedsync.sinks.caldav")


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
                return await upsert.write(_Resource(self, record, href, auth), record)
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

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _Resource:
    """`upsert.Port` for one record: the event's resource (`href`) in one collection."""

    name = "caldav"

    def __init__(
        self, sink: CalDavConnector, record: dict[str, Any], href: str, auth: httpx.BasicAuth
    ) -> None:
        self._client, self._record, self._href, self._auth = sink.client, record, href, auth
        self._prodid = sink.config.prodid

    def _event(self, sequence: int) -> bytes:
        return wire.build_event(self._record, sequence=sequence, prodid=self._prodid)

    async def create(self) -> Answer | Exists:
        response = await self._client.put(
            self._href, content=self._event(0), headers=wire.create_headers(), auth=self._auth
        )
        return EXISTS if response.status_code == 412 else _answer(response, "upsert")

    async def read(self) -> Held | Gone | Answer:
        current = await self._client.get(self._href, auth=self._auth)
        if current.status_code in wire.GONE_ON_DELETE:
            return Gone(current.status_code)
        if not current.is_success:
            return _answer(current, "upsert")
        etag = current.headers.get("ETag")
        stored = wire.stored(current.content)
        return Held(stored.version, etag, etag, stored)  # the ETag is the id we report

    async def update(self, held: Held) -> Answer | Changed | Gone:
        sequence = held.body.sequence + 1 if isinstance(held.body, wire.Stored) else 1
        response = await self._client.put(
            self._href,
            content=self._event(sequence),
            headers=wire.update_headers(held.etag),
            auth=self._auth,
        )
        if response.status_code == 412:
            return Changed(_answer(response, "upsert"))
        if response.status_code in wire.GONE_ON_DELETE:
            return Gone(response.status_code)
        return _answer(response, "upsert")

    async def copies(self) -> list[Held] | Gone | Answer:
        found = await self.read()
        return [found] if isinstance(found, Held) else found

    async def remove(self, held: Held) -> Answer | Gone:
        response = await self._client.delete(
            self._href, headers=wire.delete_headers(held.etag), auth=self._auth
        )
        return _answer(response, "delete")


def _answer(response: httpx.Response, operation: str) -> Answer:
    """`wire.classify` of an answer to `operation`; an upsert's OK reports the ETag."""
    answer = wire.classify(
        response.status_code,
        operation=operation,
        retry_after=response.headers.get("Retry-After"),
        body=response.text[:2000] if response.status_code in (403, 409) else "",
    )
    if answer.ok and operation == "upsert":
        return ok(response.status_code, provider_id=response.headers.get("ETag"))
    return answer


def build(env: SinkEnv) -> CalDavConnector:
    """The connector from WEDSYNC_CALDAV_* settings (the calendar dispatcher calls this)."""
    return CalDavConnector(env.policy, env.settings(CalDavConfig))
