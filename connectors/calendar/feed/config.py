"""Settings of `wedsync calendar-feed`, from ``WEDSYNC_CALENDAR_FEED_*`` variables (parsed at
the process's edge; the providers' own settings are the calendar sinks': WEDSYNC_GOOGLE_*,
WEDSYNC_GRAPH_*, WEDSYNC_CALDAV_*; credentials and the outbound policy are WEDSYNC_SINK_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CalendarFeedConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WEDSYNC_CALENDAR_FEED_", extra="ignore", frozen=True
    )

    concurrency: int = Field(default=8, ge=1, description="Fetch rounds in flight at once.")
    debounce_ms: int = Field(default=2000, ge=0, description="Wait after a push before fetching.")
    max_debounce_ms: int = Field(
        default=10_000, ge=0, description="At most this long into a burst of pushes."
    )
    reconcile_min: float = Field(default=60, gt=0, description="Push calendars: safety net.")
    reconcile_soon_min: float = Field(default=15, gt=0, description="... with a wedding soon.")
    poll_min: float = Field(default=15, gt=0, description="CalDAV calendars: poll interval.")
    poll_soon_min: float = Field(default=5, gt=0, description="... with a wedding soon.")
    reauth_retry_min: float = Field(
        default=15,
        gt=0,
        description="A calendar whose credential was refused is tried again this often "
        "(one token request): a reconnect is seen without any signal from the platform.",
    )
    horizon_days: int = Field(default=548, ge=1, description="How far ahead busy time is read.")
    channels_every_s: float = Field(
        default=30, gt=0, description="Create, renew and stop push channels this often."
    )
    health_every_s: float = Field(default=30, gt=0, description="Re-evaluate calendar health.")
    calendars_every_s: float = Field(
        default=5, gt=0, description="Re-read the connected calendars from the routing state."
    )
    leader_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="The leader group's session timeout: a standby takes over this long "
        "after the active feed was last heard of (at once when it stops); within the "
        "brokers' group.min/max.session.timeout.ms (6 s and 30 min by default).",
    )
    channel_keys: tuple[SecretStr, ...] = Field(
        default=(),
        description="Keys of the channel tokens (the gateway's channel_keys); the first issues.",
    )
    google_push_url: str | None = Field(
        default=None,
        description="The gateway's public URL for Google pushes (channels off if unset).",
    )
    graph_push_url: str | None = Field(
        default=None, description="The gateway's public URL for Graph notifications."
    )
