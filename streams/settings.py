"""Settings, parsed once at the edge from the environment (and a `.env` file if present).

`KAFKA_BOOTSTRAP_SERVERS` and `SCHEMA_REGISTRY_URL` keep their conventional names; everything
else is prefixed `WEDSYNC_`. Settings are frozen and validated before any I/O happens.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WEDSYNC_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "WEDSYNC_KAFKA_BOOTSTRAP_SERVERS"),
        description="Use this Kafka cluster; when unset an embedded broker is started.",
    )
    schema_registry_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "WEDSYNC_SCHEMA_REGISTRY_URL"),
        description="Confluent-compatible Schema Registry; unset: the embedded registry.",
    )
    schema_registry_basic_auth: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "WEDSYNC_SCHEMA_REGISTRY_BASIC_AUTH"
        ),
        description="'user:password' for the Schema Registry.",
    )
    schemas_dir: Path = REPO_ROOT / "schemas"
    app_id: str = "wedsync"
    partitions: int = Field(
        default=6,
        ge=1,
        description="Partitions of every keyed catalog topic and of Faust's internal topics "
        "(tables stay co-partitioned with their sources). The most workers a stage can use; "
        "on the embedded broker each partition also costs broker CPU on every fetch.",
    )
    replication_factor: int = 1
    faust_fetch_wait_ms: int = Field(
        default=50,
        ge=1,
        description="Longest a Faust worker's fetch wait (streams.kafka.faust_transport).",
    )
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: str = "info"
    metrics_port: int | None = Field(
        default=9400,
        description="Port of this process's /metrics and /healthz (unset: none served).",
    )
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in containers.")


def load_settings() -> Settings:
    """Read the environment once. Call at process start, pass the result down."""
    return Settings()
