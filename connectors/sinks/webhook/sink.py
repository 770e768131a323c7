"""The outbound webhook sink: sign one delivery and POST it to the customer's endpoint.

Built by `build(env)` (the runtime, via registry.CONNECTORS) or directly in tests:

    WebhookSink(WebhookConfig(), OutboundPolicy.loopback_for_tests(receiver_port))

Every call goes through `outbound.aiohttp_session` (https only, public addresses only, no
redirects, one deadline for the whole answer, the answer read up to the policy's cap, one
audit line per call): this is the sink with the most traffic, so it talks to
aiohttp directly rather than through httpx's models (bench/sinks.py). The endpoint's
secret is read per delivery from the credential store (`webhook_endpoint`, endpoint id);
a missing row is fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from streams.topics import Destination

from connectors.sinks.answer import Answer, fatal, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.credentials import MissingCredential, endpoint_url
from connectors.sinks.outbound import (
    OutboundPolicy,
    OutboundRefused,
    OutboundSession,
    aiohttp_session,
    audit_scope,
)
from connectors.sinks.webhook import wire
from connectors.sinks.webhook.config import WebhookConfig

log = logging.getLogger(__name__)


class WebhookSink:
    """Delivers WebhookDelivery records (see the package docstring for the wire format)."""

    destination = Destination.WEBHOOK

    def __init__(
        self,
        config: WebhookConfig,
        policy: OutboundPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._policy = policy
        self._clock = clock
        self._session: OutboundSession | None = None  # made on the running loop
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=policy.connect_timeout_s, sock_read=config.read_timeout_s
        )
        self._limits = Limits(
            rate_per_s=config.rate_per_s, burst=config.burst, concurrency=config.concurrency
        )

    def target(self, record: dict[str, Any]) -> str:
        """``webhook:<endpoint id>``."""
        return f"webhook:{record['endpoint_id']}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One limit per endpoint: `rate_per_s`/`burst` and `concurrency` from the config."""
        return f"webhook:{record['endpoint_id']}", self._limits

    def credential_key(self, record: dict[str, Any]) -> str | None:
        """None: an endpoint secret cannot be refreshed, so there is nothing to pause."""
        return None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """Sign and POST one delivery; the endpoint's answer classified by `wire.classify`.

        Never raises for an answer: too large -> fatal ``webhook.too_large``; no stored
        secret -> fatal ``webhook.no_secret``; refused by the outbound policy -> fatal
        ``webhook.refused``; timeout / connection error -> retry."""
        endpoint_id = str(record["endpoint_id"])
        body = wire.body_bytes(record)
        refused = wire.too_large(body, self.config.max_body_bytes)
        if refused is not None:
            return refused
        if ctx.refresh:
            ctx.credentials.invalidate("webhook_endpoint", endpoint_id)
        try:
            credential = await ctx.credentials.get("webhook_endpoint", endpoint_id)
            secret = credential.secret("secret_key", f"webhook endpoint {endpoint_id}")
            url = await endpoint_url(ctx.credentials, "webhook_endpoint", endpoint_id,
                                     str(record["endpoint_url"]), "endpoint_url")  # fmt: skip
            request = wire.build_request(
                {**record, "endpoint_url": url},
                secret,
                msg_id=ctx.idempotency_key,
                timestamp=int(self._clock()),
                legacy_headers=self.config.legacy_headers,
                user_agent=self.config.user_agent,
            )
        except MissingCredential as exc:
            return fatal("webhook.no_secret", str(exc))
        except ValueError as exc:  # a malformed whsec_ secret; the message names no value
            return fatal("webhook.bad_secret", str(exc))
        if self._session is None:
            self._session = aiohttp_session(self._policy)
        with audit_scope(Destination.WEBHOOK.value, self.target(record)):
            try:
                async with self._session.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    data=request.body,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    await response.read()  # already read, at most the policy's cap
                    status, retry_after = response.status, response.headers.get("retry-after")
            except OutboundRefused as exc:
                return fatal("webhook.refused", str(exc))
            except TimeoutError:
                return retry("webhook.timeout", "no answer within the timeout")
            except aiohttp.ClientError as exc:
                return retry("webhook.connect", type(exc).__name__)
        answer = wire.classify(status, retry_after)
        if not answer.ok:
            log.info(
                "webhook delivery answered target=%s status=%s verdict=%s",
                self.target(record), status, answer.verdict.value,
            )  # fmt: skip
        return answer

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


def build(env: SinkEnv) -> WebhookSink:
    """The webhook connector with its settings from the environment (WEDSYNC_WEBHOOK_*)."""
    return WebhookSink(env.settings(WebhookConfig), env.policy)
