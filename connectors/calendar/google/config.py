"""Settings of the Google Calendar sink, from ``WEDSYNC_GOOGLE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from connectors.calendar.rest_config import OAuthApiConfig


class GoogleConfig(OAuthApiConfig):
    """The platform's OAuth client and where Google is (loopback for tests and fakes)."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_GOOGLE_", extra="ignore", frozen=True)

    token_url: str = Field(
        default="https://oauth2.googleapis.com/token",
        description="OAuth token endpoint (refresh-token grant).",
    )
    api_base_url: str = Field(
        default="https://www.googleapis.com",
        description="Base of the Calendar API; the sink appends /calendar/v3/...",
    )
    rate_per_s: float = Field(default=5.0, gt=0, description="Requests/s per integration.")
    burst: int = Field(default=5, ge=1, description="Token-bucket burst per integration.")
