"""Settings of the SLA agent (prefix `WEDSYNC_SLA_`), and its per-integration thresholds."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.logic.sla import Thresholds


class SlaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_SLA_", extra="ignore", frozen=True)

    slot_s: float = Field(default=10.0, gt=0, description="Resolution of the windows.")
    windows: Annotated[dict[str, float], NoDecode] = Field(
        default={"1m": 60.0, "5m": 300.0, "1h": 3600.0},
        description="Sliding windows, 'name=seconds' comma-separated.",
    )
    evaluate_every_s: float = Field(
        default=30.0, gt=0, le=30.0, description="Health is evaluated at least this often."
    )
    lag_every_s: float = Field(default=15.0, gt=0, description="Consumer-lag refresh period.")
    thresholds_file: Path | None = Field(
        default=None,
        description='TOML: [default] and [integrations."<id>"] tables of Thresholds fields.',
    )
    fetch_wait_ms: int = Field(default=100, ge=0)

    @field_validator("windows", mode="before")
    @classmethod
    def _windows(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        out = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, _, seconds = part.partition("=")
            if not name or not seconds:
                raise ValueError(f"window {part!r}: write name=seconds, e.g. 5m=300")
            out[name.strip()] = float(seconds)
        return out

    def thresholds(self) -> tuple[Thresholds, dict[str, Thresholds]]:
        """The default thresholds and the per-integration ones; ValueError names the file."""
        if self.thresholds_file is None:
            return Thresholds(), {}
        try:
            data = tomllib.loads(self.thresholds_file.read_text())
            default = Thresholds(**data.get("default", {}))
            per = {
                key: Thresholds(**{**data.get("default", {}), **fields})
                for key, fields in data.get("integrations", {}).items()
            }
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{self.thresholds_file}: {exc}") from exc
        return default, per
