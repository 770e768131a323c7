"""Configuration of the CRM sink, read once from the environment (prefix ``WEDSYNC_CRM_``).

Endpoint URLs come from the delivery records (routing copies them from the integration);
the optional Tave/HoneyBook base URLs override the record's base for those two APIs (e.g.
to point every call at `wedsync fake crm`). No secrets here: API keys live per integration."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CrmConfig(BaseSettings):
    """Settings of the CRM sink (frozen)."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_CRM_", extra="ignore", frozen=True)

    rate_per_s: float = Field(default=5.0, gt=0, description="per integration")
    burst: int = Field(default=5, ge=1)
    concurrency: int = Field(default=4, ge=1, description="in-flight calls per integration")
    read_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="the whole answer; at most the policy's WEDSYNC_SINK_READ_TIMEOUT_S",
    )
    user_agent: str = "wedsync-crm/1"
    tave_base_url: str | None = Field(
        default=None, description="overrides the record's base URL for the Tave-style API"
    )
    honeybook_base_url: str | None = Field(
        default=None, description="overrides the record's base URL for the HoneyBook-style API"
    )
    max_answer_bytes: int = Field(
        default=64 * 1024, gt=0, description="answer bodies read for classification"
    )
