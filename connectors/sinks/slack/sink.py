"""The Slack sink's I/O: one record -> one `chat.postMessage` (slack-sdk) or one incoming
webhook POST (the same aiohttp session), classified by `wire`.

Which credential: the supplier's Slack integration row
(``supplier_integration`` / ``<recipient_id>:slack``): its `api_key` is a bot token, its
`webhook_url` (used only when there is no `api_key`) an incoming webhook. Without a row the
platform bot token from `SlackConfig.bot_token` is used. The webhook URL is a secret: it is
only handed to the HTTP client, whose audit line carries the host alone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from streams.topics import Destination

from connectors.sinks import answer as answers
from connectors.sinks.answer import Answer, parse_retry_after
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.credentials import MissingCredential
from connectors.sinks.outbound import OutboundPolicy, aiohttp_session, audit_scope
from connectors.sinks.slack import wire
from connectors.sinks.slack.config import SlackConfig

log = logging.getLogger("wedsync.sinks.slack")

# slack-sdk logs request bodies and response headers at DEBUG; keep its logger quieter.
_SDK_LOG = logging.getLogger("wedsync.sinks.slack.sdk")
_SDK_LOG.setLevel(logging.INFO)

PLATFORM_KEY = "slack:platform"


def integration_key(recipient_id: str) -> str:
    """The credential store key of a supplier's Slack integration."""
    return f"{recipient_id}:slack"


class SlackSink:
    """Delivers `wedsync.deliver.slack` records. Build with `SlackSink(config, policy)` or
    `build(env)`; clients are created lazily on the running loop and closed by `aclose`."""

    destination = Destination.SLACK

    def __init__(self, config: SlackConfig, policy: OutboundPolicy) -> None:
        self.config = config
        self.policy = policy
        self._session: Any = None
        self._platform_recipients: set[str] = set()
        self._delivered: OrderedDict[str, str | None] = OrderedDict()

    # ---- identity ---------------------------------------------------------------------
    def target(self, record: dict[str, Any]) -> str:
        """``slack:<channel id>``."""
        return f"slack:{record['channel']}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One token bucket per channel (Slack: about 1 message/s per channel)."""
        return (
            f"slack:{record['channel']}",
            Limits(rate_per_s=self.config.rate_per_s, burst=self.config.burst),
        )

    def credential_key(self, record: dict[str, Any]) -> str | None:
        """The supplier's Slack integration, or ``slack:platform`` when the platform token
        delivers for this recipient (learnt on delivery) or there is no recipient."""
        recipient = record.get("recipient_id")
        if not recipient or recipient in self._platform_recipients:
            return PLATFORM_KEY
        return f"supplier_integration:{integration_key(recipient)}"

    # ---- delivery ---------------------------------------------------------------------
    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """Post one message. Returns the classified answer; raises only for transport
        failures the runtime retries, `OutboundRefused` (dead letter) and nothing else."""
        if ctx.idempotency_key in self._delivered:
            # Slack has no idempotency hook: a repeat of a delivered id is not resent.
            return answers.ok(provider_id=self._delivered[ctx.idempotency_key])
        text = record.get("text") or ""
        blocks = wire.parse_blocks(record.get("blocks_json") or "")
        refused = wire.check_message(text, blocks)
        if refused is not None:
            return refused
        assert blocks is not None  # check_message refuses None
        how = await self._credential(record, ctx)
        if isinstance(how, Answer):
            return how
        kind, secret = how
        with audit_scope(self.destination.value, self.target(record)):
            if kind == "webhook":
                result = await self._post_webhook(secret, text, blocks)
            else:
                result = await self._post_message(secret, record["channel"], text, blocks)
        if result.ok:
            self._remember(ctx.idempotency_key, result.provider_id)
        else:
            log.info(
                "slack delivery not ok target=%s verdict=%s error_class=%s",
                self.target(record), result.verdict.value, result.error_class,
            )  # fmt: skip
        return result

    async def _credential(
        self, record: dict[str, Any], ctx: DeliveryContext
    ) -> tuple[str, str] | Answer:
        """("token", bot token) or ("webhook", URL) for this record, or a fatal Answer when
        there is neither a supplier integration nor a platform token."""
        recipient = record.get("recipient_id")
        if recipient:
            key = integration_key(recipient)
            if ctx.refresh:
                ctx.credentials.invalidate("supplier_integration", key)
            try:
                row = await ctx.credentials.get("supplier_integration", key)
            except MissingCredential:
                row = None
            if row is not None:
                token = row.get("api_key")
                webhook = row.get("webhook_url")
                self._platform_recipients.discard(recipient)
                if isinstance(token, str) and token:
                    return "token", token
                if isinstance(webhook, str) and webhook:
                    return "webhook", webhook
            self._platform_recipients.add(recipient)
        if self.config.bot_token is not None and self.config.bot_token.get_secret_value():
            return "token", self.config.bot_token.get_secret_value()
        return answers.fatal(
            "slack.no_credential",
            "no Slack integration for this supplier and no platform bot token; "
            "connect Slack, then replay",
        )

    async def _post_message(
        self, token: str, channel: str, text: str, blocks: list[dict[str, Any]]
    ) -> Answer:
        """chat.postMessage; SlackApiError (any `ok: false` or non-200) is translated here."""
        client = AsyncWebClient(
            token=token,
            base_url=self.config.api_url(),
            session=self._aiohttp(),
            timeout=int(self.config.timeout_s),
            logger=_SDK_LOG,
            retry_handlers=[],
        )
        try:
            response = await client.chat_postMessage(
                **wire.post_message_args(channel, text, blocks)
            )
        except SlackApiError as exc:
            return _translate(exc)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return answers.retry("slack.transport", f"Slack call failed: {type(exc).__name__}")
        data = response.data if isinstance(response.data, dict) else {}
        return wire.classify_api_ok(data, response.status_code)

    async def _post_webhook(self, url: str, text: str, blocks: list[dict[str, Any]]) -> Answer:
        """POST to an incoming webhook. The URL is never logged nor put in an Answer.

        Sent with the policy's aiohttp session rather than httpx: httpx logs every request's
        full URL at INFO (logger ``httpx``), and a webhook URL is the secret."""
        try:
            async with self._aiohttp().post(
                url, json=wire.webhook_body(text, blocks), allow_redirects=False
            ) as response:
                body = await response.text()
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                return wire.classify_webhook(response.status, body, retry_after)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return answers.retry("slack.transport", f"webhook call failed: {type(exc).__name__}")

    def _aiohttp(self) -> Any:
        if self._session is None:
            self._session = aiohttp_session(self.policy)
        return self._session

    def _remember(self, key: str, provider_id: str | None) -> None:
        if self.config.ledger_size <= 0:
            return
        self._delivered[key] = provider_id
        self._delivered.move_to_end(key)
        while len(self._delivered) > self.config.ledger_size:
            self._delivered.popitem(last=False)

    async def aclose(self) -> None:
        """Close the aiohttp session."""
        if self._session is not None:
            await self._session.close()
        self._session = None


def _translate(exc: SlackApiError) -> Answer:
    """SlackApiError -> Answer, from the error code, the status and Retry-After."""
    response = exc.response  # a SlackResponse, or the raw HTTP answer when it was not JSON
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    status: Any = getattr(response, "status_code", None) or getattr(response, "status", 0)
    headers = getattr(response, "headers", None) or {}
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    return wire.classify_api_error(
        int(status), error if isinstance(error, str) else None, retry_after
    )


def build(env: SinkEnv) -> SlackSink:
    """The Slack connector from `WEDSYNC_SLACK_*` settings and the runtime's policy."""
    return SlackSink(env.settings(SlackConfig), env.policy)
