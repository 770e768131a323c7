"""Configuration of the outbound webhook sink, read once from the environment
(prefix ``WEDSYNC_WEBHOOK_``, e.g. ``WEDSYNC_WEBHOOK_LEGACY_HEADERS=true``).

There is no base URL here: every endpoint URL comes from the delivery record (the customer's
registered `endpoint_url`), checked by the outbound policy at connect time."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookConfig(BaseSettings):
    """Settings of the webhook sink (frozen; no secrets: signing keys live per endpoint)."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_WEBHOOK_", extra="ignore", frozen=True)

    legacy_headers: bool = Field(
        default=False,
        description="also send X-WedSync-Signature/Event/Timestamp/Source (legacy scheme)",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        gt=0,
        description="larger bodies are fatal (webhook.too_large) without a call; Standard "
        "Webhooks recommends staying under 20 kB",
    )
    rate_per_s: float = Field(default=10.0, gt=0, description="per endpoint")
    burst: int = Field(default=10, ge=1)
    concurrency: int = Field(default=10, ge=1, description="in-flight calls per endpoint")
    read_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="the whole answer (connect to last body byte) must arrive within this "
        "(Svix: 15 s); at most the policy's WEDSYNC_SINK_READ_TIMEOUT_S",
    )
    user_agent: str = "wedsync-webhooks/1"
