"""Settings of a sink process (`wedsync sink <kind>`), parsed once from the environment
(prefix `WEDSYNC_SINK_`). Connector settings live in each connector's `config.py`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from streams.logic.retry import STANDARD_WEBHOOKS_S, RetryPolicy

from connectors.sinks.outbound import OutboundPolicy
from connectors.sinks.outbound_rules import parse_allow_list


class SinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_SINK_", extra="ignore", frozen=True)

    concurrency: int = Field(default=200, ge=1, description="Deliveries in flight per process.")
    retry_schedule_s: Annotated[tuple[float, ...], NoDecode] = Field(
        default=STANDARD_WEBHOOKS_S,
        description="Delays before each retry, comma-separated seconds (default: Standard "
        "Webhooks, about 3 days); the number of retries is their count.",
    )
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    breaker_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open it."
    )
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    call_timeout_s: float = Field(default=30.0, gt=0, description="Longest one attempt may take.")
    drain_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="On stop, how long the calls already at a provider may take to finish and "
        "be recorded; those still running then are cancelled and may be sent again after a "
        "restart. Default: call_timeout_s + 5, so every call ends by its own timeout first.",
    )
    max_rate_wait_s: float = Field(
        default=5.0,
        ge=0,
        description="Wait at most this for a rate-limit token; beyond, reschedule.",
    )
    pause_probe_s: float = Field(
        default=60.0,
        gt=0,
        description="How often a paused integration's credential is tried again.",
    )
    max_held: int = Field(
        default=50_000,
        ge=1,
        description="Retry records held in memory before retry reading pauses.",
    )
    commit_interval_s: float = Field(default=0.2, gt=0)
    ledger_copy_window_s: float = Field(
        default=1800.0,
        ge=0,
        description="At start, delivery results at least this recent are read back (besides "
        "those of uncommitted records): a copy of a delivery routing sends again within it "
        "is skipped (connectors/sinks/ledger_reader.py).",
    )
    ledger_clock_skew_s: float = Field(
        default=300.0,
        ge=0,
        description="How far behind this host's clock another's (routing's, another sink's) "
        "may be: the start's window of delivery results reaches this much further back.",
    )
    platform_dsn: SecretStr | None = Field(
        default=None, description="PostgreSQL DSN of the platform database (credentials)."
    )
    credential_ttl_s: float = Field(default=30.0, ge=0)
    outbound_allow_http_hosts: str = Field(
        default="",
        description="Host:port entries that may be called over plain http, comma-separated "
        "(e.g. 127.0.0.1:8080, localhost:9000-9100); an entry without a port is refused.",
    )
    outbound_allow_networks: str = Field(
        default="",
        description="Non-public address-or-network:port entries that may be called, "
        "comma-separated (e.g. 127.0.0.1:8443, 10.0.0.0/8:9000-9100, [::1]:8443); an "
        "entry without a port is refused: it would open every port (metrics, databases).",
    )
    outbound_max_answer_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Bytes of any answer body read (decoded); past it the answer is "
        "classified on its status.",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(
        default=15.0, gt=0, description="The whole answer (connect to last body byte)."
    )

    @field_validator("retry_schedule_s", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(v) for v in value.split(",") if v.strip())
        return value

    @field_validator("outbound_allow_http_hosts", "outbound_allow_networks")
    @classmethod
    def _allow_list(cls, value: str, info: ValidationInfo) -> str:
        setting = f"WEDSYNC_SINK_{str(info.field_name).upper()}"
        parse_allow_list(value, setting)  # ValueError naming the setting and the entry
        return value

    @property
    def drain_s(self) -> float:
        """The stop's drain bound in seconds (`drain_timeout_s` or its default)."""
        return self.drain_timeout_s or self.call_timeout_s + 5.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_schedule_s, self.retry_jitter)

    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy.parse(
            self.outbound_allow_http_hosts,
            self.outbound_allow_networks,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            max_answer_bytes=self.outbound_max_answer_bytes,
        )
