"""The CRM sink: one POST per CrmDelivery to the vendor's CRM or booking system.

Built by `build(env)` (the runtime, via registry.CONNECTORS) or directly in tests:

    CrmSink(CrmConfig(), OutboundPolicy.loopback_for_tests(receiver_port))

The request comes from `wire.CLIENTS[record["crm_kind"]]`; every call goes through the
policy's aiohttp session (`outbound.aiohttp_session`: https only, public addresses only, no
redirects, one deadline for the whole answer, the answer read up to the policy's cap, one
audit line per call), as the webhook sink's do: httpx's request and response models around
it were a fifth of this sink's CPU (py-spy under `bench delivery`). The API key is read per
delivery from the credential store (``integration``, integration id); on `ctx.refresh` the
cached row is invalidated first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from streams.topics import Destination

from connectors.sinks.answer import Answer, fatal, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.credentials import CredentialStore, MissingCredential, endpoint_url
from connectors.sinks.crm import wire
from connectors.sinks.crm.config import CrmConfig
from connectors.sinks.outbound import (
    OutboundPolicy,
    OutboundRefused,
    OutboundSession,
    aiohttp_session,
    audit_scope,
)

log = logging.getLogger(__name__)


class CrmSink:
    """Delivers CrmDelivery records (see the package docstring for each CRM's shape)."""

    destination = Destination.CRM

    def __init__(
        self,
        config: CrmConfig,
        policy: OutboundPolicy,
        clients: Mapping[str, wire.CrmClient] | None = None,
    ) -> None:
        self.config = config
        self._clients = dict(clients or wire.CLIENTS)
        self._policy = policy
        self._session: OutboundSession | None = None  # made on the running loop
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=policy.connect_timeout_s, sock_read=config.read_timeout_s
        )
        self._base_urls: dict[str, str | None] = {
            "tave": config.tave_base_url,
            "honeybook": config.honeybook_base_url,
        }

    def target(self, record: dict[str, Any]) -> str:
        """``crm:<integration id>``."""
        return f"crm:{record.get('integration_id')}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One limit per integration (default 5/s, burst 5, 4 in flight)."""
        limits = Limits(
            rate_per_s=self.config.rate_per_s,
            burst=self.config.burst,
            concurrency=self.config.concurrency,
        )
        return f"crm:{record.get('integration_id')}", limits

    def credential_key(self, record: dict[str, Any]) -> str | None:
        """``integration:<integration id>``: a refused key pauses that integration."""
        return f"integration:{record.get('integration_id')}"

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """Build the call for the record's crm_kind, make it, classify the answer.

        Never raises for an answer. Fatal without a call: no integration id
        (``crm.no_integration``), unknown crm_kind (``crm.unknown_kind``), no stored key or
        username (``crm.no_credential``); refused by the outbound policy -> fatal
        ``crm.refused``; timeout / connection error -> retry."""
        integration_id = record.get("integration_id")
        if not integration_id:
            return fatal("crm.no_integration", "the delivery names no integration")
        client = self._clients.get(str(record.get("crm_kind")))
        if client is None:
            return fatal("crm.unknown_kind", f"no CRM client for {record.get('crm_kind')!r}")
        try:
            auth = await self._auth(client.scheme(record), str(integration_id), ctx)
            stated = str(record.get("endpoint_url") or "")
            url = await endpoint_url(
                ctx.credentials, "integration", str(integration_id), stated, "webhook_url"
            )
            request = client.build(
                {**record, "endpoint_url": url}, auth, ctx.idempotency_key,
                self._base_urls.get(client.kind),
            )  # fmt: skip
        except MissingCredential as exc:
            return fatal("crm.no_credential", str(exc))
        except ValueError as exc:  # the message names the missing piece, never a value
            return fatal("crm.no_credential", f"integration {integration_id}: {exc}")
        if self._session is None:
            self._session = aiohttp_session(self._policy)
        headers = {"User-Agent": self.config.user_agent, **request.headers}
        with audit_scope(Destination.CRM.value, self.target(record)):
            try:
                async with self._session.request(
                    request.method,
                    request.url,
                    headers=headers,
                    data=request.content(),
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    raw = await response.read()  # already read, at most the policy's cap
                    status, retry_after = response.status, response.headers.get("retry-after")
            except OutboundRefused as exc:
                return fatal("crm.refused", str(exc))
            except TimeoutError:
                return retry("crm.timeout", "no answer within the timeout")
            except aiohttp.ClientError as exc:
                return retry("crm.connect", type(exc).__name__)
        answer = client.classify(status, self._body(raw), retry_after)
        if not answer.ok:
            log.info(
                "crm delivery answered target=%s kind=%s status=%s verdict=%s class=%s",
                self.target(record), client.kind, status, answer.verdict.value,
                answer.error_class,
            )  # fmt: skip
        return answer

    async def _auth(self, scheme: str, integration_id: str, ctx: DeliveryContext) -> wire.CrmAuth:
        """The credential for `scheme`: nothing for ``none``; else the integration row's
        api_key (and settings.username for basic), re-read from the database on refresh."""
        if scheme not in wire.SCHEMES:
            raise ValueError(f"unknown auth scheme {scheme!r}")
        if scheme == "none":
            return wire.CrmAuth("none")
        store: CredentialStore = ctx.credentials
        if ctx.refresh:
            store.invalidate("integration", integration_id)
        credential = await store.get("integration", integration_id)
        api_key = credential.secret("api_key", f"integration {integration_id}")
        username: str | None = None
        if scheme == "basic":
            settings = credential.get("settings") or {}
            if isinstance(settings, str):
                try:
                    settings = json.loads(settings)
                except ValueError:
                    settings = {}
            name = settings.get("username") if isinstance(settings, Mapping) else None
            username = name if isinstance(name, str) and name else None
        return wire.CrmAuth(scheme, api_key, username)

    def _body(self, content: bytes) -> Any:
        """The answer body as JSON (None when empty or not JSON), at most max_answer_bytes."""
        raw = content[: self.config.max_answer_bytes]
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


def build(env: SinkEnv) -> CrmSink:
    """The CRM connector with its settings from the environment (WEDSYNC_CRM_*)."""
    return CrmSink(env.settings(CrmConfig), env.policy)
