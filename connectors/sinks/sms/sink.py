"""The SMS sink's I/O: one record -> one Twilio Messages.json create over httpx (the outbound
policy's client), classified by `wire`.

The platform's own Twilio account sends every message, so `credential_key` is None; a 20003
answer is still REAUTH. On the refresh attempt the sink re-reads its settings (`reload`,
given by `build`: a rotated WEDSYNC_SMS_AUTH_TOKEN is picked up) and rebuilds its client.
Phone numbers are never logged nor put in an Answer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx
from streams.topics import Destination

from connectors.sinks import answer as answers
from connectors.sinks.answer import Answer, parse_retry_after
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.outbound import OutboundPolicy, audit_scope, http_client
from connectors.sinks.sms import wire
from connectors.sinks.sms.config import SmsConfig

log = logging.getLogger("wedsync.sinks.sms")

LIMIT_KEY = "sms:account"


class SmsSink:
    """Delivers `wedsync.deliver.sms` records. Build with `SmsSink(config, policy)` (tests)
    or `build(env)`; `reload` returns fresh settings on a refresh attempt."""

    destination = Destination.SMS

    def __init__(
        self,
        config: SmsConfig,
        policy: OutboundPolicy,
        *,
        reload: Callable[[], SmsConfig] | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        self._reload = reload
        self._client: httpx.AsyncClient | None = None
        self._delivered: OrderedDict[str, str | None] = OrderedDict()

    def target(self, record: dict[str, Any]) -> str:
        """``sms:<recipient id>`` (a hash of the number without one): the unit disabled by
        a STOP reply (21610)."""
        return wire.target_for(record.get("recipient_id"), record.get("to_number") or "")

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One bucket for the whole account (Twilio limits per account)."""
        return LIMIT_KEY, Limits(
            rate_per_s=self.config.rate_per_s,
            burst=self.config.burst,
            concurrency=self.config.concurrency,
        )

    def credential_key(self, record: dict[str, Any]) -> str | None:
        """None: the platform's own Twilio account."""
        return None

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """Send one SMS. Returns the classified answer; httpx transport errors propagate
        (the runtime retries them), `OutboundRefused` dead-letters."""
        if ctx.idempotency_key in self._delivered:
            # Twilio has no idempotency hook: a repeat of a delivered id is not resent.
            return answers.ok(provider_id=self._delivered[ctx.idempotency_key])
        to_number = record.get("to_number") or ""
        text = record.get("text") or ""
        refused = wire.check_message(to_number, text)
        if refused is not None:
            return refused
        if ctx.refresh:
            await self._refresh()
        config = self.config
        request = wire.build_request(
            to_number,
            text,
            account_sid=config.account_sid,
            from_number=config.from_number,
            messaging_service_sid=config.messaging_service_sid,
            status_callback=config.status_callback_url,
        )
        target = self.target(record)
        with audit_scope(self.destination.value, target):
            response = await self._http().request(request.method, request.path, data=request.form)
        result = wire.classify(
            response.status_code,
            _json(response),
            parse_retry_after(response.headers.get("Retry-After")),
        )
        if result.ok:
            self._remember(ctx.idempotency_key, result.provider_id)
        else:
            log.info(
                "sms delivery not ok target=%s verdict=%s error_class=%s",
                target, result.verdict.value, result.error_class,
            )  # fmt: skip
        return result

    async def _refresh(self) -> None:
        """Re-read the settings (a rotated auth token) and drop the client holding the old
        credentials."""
        if self._reload is not None:
            self.config = self._reload()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = http_client(
                self.policy,
                base_url=self.config.api_base_url.rstrip("/"),
                auth=httpx.BasicAuth(
                    self.config.account_sid, self.config.auth_token.get_secret_value()
                ),
                headers={"Accept": "application/json"},
            )
        return self._client

    def _remember(self, key: str, provider_id: str | None) -> None:
        if self.config.ledger_size <= 0:
            return
        self._delivered[key] = provider_id
        self._delivered.move_to_end(key)
        while len(self._delivered) > self.config.ledger_size:
            self._delivered.popitem(last=False)

    async def aclose(self) -> None:
        """Close the httpx client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _json(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of an answer, or None (an HTML error page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def build(env: SinkEnv) -> SmsSink:
    """The SMS connector from `WEDSYNC_SMS_*` settings and the runtime's policy; a refresh
    re-reads the settings."""
    return SmsSink(env.settings(SmsConfig), env.policy, reload=lambda: env.settings(SmsConfig))
