"""Settings of `wedsync calendar-feed`, from ``WEDSYNC_CALENDAR_FEED_*`` variables (parsed at
the process's edge; the providers' own settings are the calendar sinks': WEDSYNC_GOOGLE_*,
WEDSYNC_GRAPH_*, WEDSYNC_CALDAV_*; credentials and the outbound policy are WEDSYNC_SINK_*)."""

from __future__ import annotations

import dataclasses

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from streams.logic.calendar.limits import FeedRates
from streams.logic.calendar.schedule import MINUTE, Intervals

_R = FeedRates  # the documented defaults (streams/logic/calendar/limits.py)
_I = Intervals()  # the reconcile and poll defaults (streams/logic/calendar/schedule.py)


class CalendarFeedConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WEDSYNC_CALENDAR_FEED_", extra="ignore", frozen=True
    )

    concurrency: int = Field(default=8, ge=1, description="Fetch rounds in flight at once.")
    debounce_ms: int = Field(default=2000, ge=0, description="Wait after a push before fetching.")
    max_debounce_ms: int = Field(
        default=10_000, ge=0, description="At most this long into a burst of pushes."
    )
    reconcile_min: float = Field(
        default=_I.reconcile_ms / MINUTE, gt=0, description="Push calendars: safety net."
    )
    reconcile_soon_min: float = Field(
        default=_I.reconcile_soon_ms / MINUTE, gt=0, description="... with a wedding soon."
    )
    poll_min: float = Field(
        default=_I.poll_ms / MINUTE, gt=0, description="CalDAV calendars: poll interval."
    )
    poll_soon_min: float = Field(
        default=_I.poll_soon_ms / MINUTE, gt=0, description="... with a wedding soon."
    )
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
    # request limits, counted per provider request (streams/logic/calendar/limits.py)
    google_user_per_min: float = Field(
        default=_R.google_user_per_min,
        gt=0,
        description="Google requests per minute per user (Google: 600 per user per project).",
    )
    google_user_burst: int = Field(default=_R.google_user_burst, ge=1)
    google_project_per_min: float = Field(
        default=_R.google_project_per_min,
        gt=0,
        description="This feed's share of the project's Google quota (10,000 per minute).",
    )
    google_project_burst: int = Field(default=_R.google_project_burst, ge=1)
    graph_requests_per_window: int = Field(
        default=_R.graph_requests_per_window,
        ge=1,
        description="Graph requests per mailbox per `graph_window_s` (Outlook: 10,000 / 10 min).",
    )
    graph_window_s: float = Field(default=_R.graph_window_s, gt=0)
    graph_burst: int = Field(default=_R.graph_burst, ge=1)
    graph_concurrency: int = Field(
        default=_R.graph_concurrency, ge=1, description="Requests at once per mailbox (Outlook: 4)."
    )
    caldav_per_min: float = Field(default=_R.caldav_per_min, gt=0, description="Per account.")
    caldav_burst: int = Field(default=_R.caldav_burst, ge=1)
    caldav_concurrency: int = Field(default=_R.caldav_concurrency, ge=1, description="Per account.")
    caldav_host_concurrency: int = Field(
        default=_R.caldav_host_concurrency, ge=1, description="Requests at once per CalDAV server."
    )
    max_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="A request waits at most this long for its limits; a longer wait puts the "
        "round off (rescheduled, holding no fetch slot).",
    )

    def intervals(self) -> Intervals:
        """The reconcile and poll intervals as the scheduler takes them."""
        return Intervals(
            reconcile_ms=int(self.reconcile_min * MINUTE),
            reconcile_soon_ms=int(self.reconcile_soon_min * MINUTE),
            poll_ms=int(self.poll_min * MINUTE),
            poll_soon_ms=int(self.poll_soon_min * MINUTE),
        )

    def rates(self) -> FeedRates:
        """The request limits as the pure limiter takes them."""
        return FeedRates(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FeedRates)})
