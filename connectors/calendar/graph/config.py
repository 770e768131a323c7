"""Settings of the Microsoft Graph calendar sink, from ``WEDSYNC_GRAPH_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from connectors.calendar.rest_config import OAuthApiConfig


class GraphConfig(OAuthApiConfig):
    """The platform's OAuth client, where Graph is, and one mailbox's limits."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_GRAPH_", extra="ignore", frozen=True)

    token_url: str = Field(
        default="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        description="OAuth token endpoint (refresh-token grant).",
    )
    scope: str = Field(
        default="https://graph.microsoft.com/Calendars.ReadWrite offline_access",
        description="Scopes asked for on refresh (a subset of the consented ones).",
    )
    api_base_url: str = Field(
        default="https://graph.microsoft.com",
        description="Base of Graph; the sink appends /v1.0/...",
    )
    requests_per_window: int = Field(
        default=10_000, ge=1, description="Requests per mailbox per `window_s` (Outlook limit)."
    )
    window_s: float = Field(default=600.0, gt=0, description="Length of that window.")
    burst: int = Field(default=20, ge=1, description="Token-bucket burst per mailbox.")
    concurrency: int = Field(
        default=4, ge=1, description="Concurrent requests per mailbox (Outlook allows 4)."
    )
