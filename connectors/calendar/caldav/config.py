"""Settings of the CalDAV provider, read once from WEDSYNC_CALDAV_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CalDavConfig(BaseSettings):
    """`concurrency` caps requests per integration (iCloud throttles busy accounts);
    `rate_per_s` optionally rate-limits them. `default_home_url` is the calendar home used
    when an integration row names none (a single-account deployment, `wedsync fake caldav`
    demos); normally the row's `webhook_url` or `settings.caldav_url` is used."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_CALDAV_", frozen=True, extra="ignore")

    concurrency: int = Field(default=5, ge=1)
    rate_per_s: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)
    default_home_url: str | None = None
    prodid: str = "-//WedSync//wedsync-streams CalDAV sink//EN"
