"""Configuration of the PostgreSQL CDC source, parsed once and validated before any I/O.

Read from the environment with the prefix `WEDSYNC_CDC_` (e.g. `WEDSYNC_CDC_HOST`,
`WEDSYNC_CDC_PASSWORD`, `WEDSYNC_CDC_TABLES='["public.form_responses"]'`,
`WEDSYNC_CDC_EXCLUDE_COLUMNS='{"public.core_fields": ["phone", "email"]}'`); the CLI may
override single fields. The password is a `SecretStr`: it is never printed, and `dsn()` is
the only place it is revealed (handed straight to libpq).

Table names are `schema.table`; a bare `table` means `public.table`.

Record size: `max_record_bytes` (`WEDSYNC_CDC_MAX_RECORD_BYTES`) bounds one Kafka record the
source writes (key + value + headers). It is checked at start against the topics'
`max.message.bytes` and the brokers' `message.max.bytes` (`limits.py`). A change larger than
that has its cuttable columns cut to `cut_value_bytes` (`cut.py`); one that still does not fit
is a dead letter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from psycopg2.extensions import make_dsn
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from streams.logic.contract import Contract, load_mapping

from connectors.sources.postgres_cdc.limits import DEFAULT_MAX_RECORD_BYTES
from connectors.sources.postgres_cdc.values import SESSION_OPTIONS

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def qualify(name: str) -> str:
    """`table` -> `public.table`; `schema.table` unchanged."""
    return name if "." in name else f"public.{name}"


class PostgresCdcConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_CDC_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "postgres"
    user: str = "postgres"
    password: SecretStr | None = None
    slot_name: str = Field(default="wedsync_cdc", description="logical replication slot")
    publication: str = Field(default="wedsync_cdc", description="created if missing")
    tables: tuple[str, ...] = Field(
        default=(), description="schema.table names to capture; empty = all tables"
    )
    exclude_columns: dict[str, frozenset[str]] = Field(
        default_factory=dict, description="schema.table -> columns dropped at the source (PII)"
    )
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    watermark_interval_s: float = Field(
        default=0.01,
        gt=0,
        description="at most this often, a heartbeat record on wedsync.ingest.state tells "
        "routing which commits the state holds (also every heartbeat_interval_s when idle)",
    )
    contract_file: Path | None = Field(
        default=None,
        description="TOML mapping of contract names to the platform's "
        "(streams/logic/contract.py); default: the platform's own names",
    )
    snapshot: bool = Field(default=True, description="initial snapshot (op 'r') on first start")
    connect_timeout_s: int = 10
    max_record_bytes: int = Field(
        default=DEFAULT_MAX_RECORD_BYTES,
        ge=64 * 1024,
        description="most bytes (key + value + headers) of one record the source writes; "
        "must fit the topics' max.message.bytes and the brokers' message.max.bytes",
    )
    cut_value_bytes: int = Field(
        default=16 * 1024,
        ge=256,
        description="a change over max_record_bytes has its cuttable columns (free text, "
        "JSON, text arrays) cut to this many bytes each, marked in a header",
    )

    @field_validator("slot_name", "publication")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"{value!r}: use lower-case letters, digits and _ (max 63)")
        return value

    @model_validator(mode="after")
    def _cut_below_limit(self) -> PostgresCdcConfig:
        if self.cut_value_bytes * 4 > self.max_record_bytes:
            raise ValueError(
                f"cut_value_bytes {self.cut_value_bytes} must be at most a quarter of "
                f"max_record_bytes {self.max_record_bytes} (a cut column appears in the "
                "before and the after image)"
            )
        return self

    @field_validator("tables")
    @classmethod
    def _qualify_tables(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(qualify(t) for t in value)

    @field_validator("exclude_columns")
    @classmethod
    def _qualify_exclusions(cls, value: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        return {qualify(t): frozenset(cols) for t, cols in value.items()}

    def dsn(self, **extra: Any) -> str:
        """The libpq connection string, password included: pass it to psycopg2, never log it."""
        password = self.password.get_secret_value() if self.password else None
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": self.connect_timeout_s,
            "application_name": f"wedsync-cdc-{self.slot_name}",
            "options": SESSION_OPTIONS,
        }
        if password is not None:
            params["password"] = password
        return str(make_dsn(**params, **extra))

    def contract(self) -> Contract:
        """The source contract with this deployment's names (ConfigurationError when the
        mapping file is wrong)."""
        base = Contract.default()
        return base if self.contract_file is None else base.mapped(load_mapping(self.contract_file))
