"""Settings of the in-app gateway, parsed once from the environment (prefix `WEDSYNC_INAPP_`)."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_INAPP_", extra="ignore", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8765, ge=0, le=65535, description="Port (0: any free port).")
    gateway_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex[:12],
        description="This process's id in presence records; new on every start by default.",
    )
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 shared secret.")
    jwks_file: Path | None = Field(default=None, description="JWKS file with the RS256 keys.")
    jwt_audience: str = Field(default="wedsync-inapp")
    jwt_issuer: str = Field(default="wedsync")
    jwt_leeway_s: float = Field(default=5.0, ge=0, description="Clock skew allowed on exp/nbf.")
    refresh_grace_s: float = Field(
        default=25.0, ge=0, description="How long past `exp` a connection may stay unrefreshed."
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Time to send `connect`.")
    history_records: int = Field(
        default=5_000, ge=0, description="Notifications kept per partition for resume."
    )
    history_max_age_s: float = Field(
        default=24 * 3600.0, gt=0, description="Oldest notification kept for resume."
    )
    history_per_user: int = Field(
        default=100, ge=1, description="Notifications kept per user (the inbox's length)."
    )
    queue_bytes: int = Field(
        default=1 << 20, ge=1024, description="Unsent bytes a connection may have; over: 4108."
    )
    max_connections: int = Field(default=50_000, ge=1, description="Over it, new ones get 4100.")
    ping_interval_s: float = Field(default=20.0, gt=0)
    ping_timeout_s: float = Field(default=10.0, gt=0)
    presence_heartbeat_s: float = Field(default=5.0, gt=0)
    presence_ttl_s: float = Field(
        default=15.0, gt=0, description="A gateway silent this long is gone, with its users."
    )
    drain_timeout_s: float = Field(default=10.0, ge=0)
    fetch_wait_ms: int | None = Field(
        default=None, ge=1, description="Kafka fetch.wait.max.ms; unset: the connection's."
    )

    @model_validator(mode="after")
    def _one_key_at_least(self) -> GatewaySettings:
        if self.jwt_secret is None and self.jwks_file is None:
            raise ValueError(
                "set WEDSYNC_INAPP_JWT_SECRET (HS256) or WEDSYNC_INAPP_JWKS_FILE (RS256), or both"
            )
        if self.presence_ttl_s <= self.presence_heartbeat_s:
            raise ValueError("WEDSYNC_INAPP_PRESENCE_TTL_S must exceed the heartbeat period")
        return self
