"""Configuration of the Slack sink, parsed once from the environment (prefix `WEDSYNC_SLACK_`).

    WEDSYNC_SLACK_API_BASE_URL        Slack Web API base (default https://slack.com); the
                                      client calls <base>/api/chat.postMessage
    WEDSYNC_SLACK_BOT_TOKEN           optional platform bot token (xoxb-...), used when a
                                      supplier has no Slack integration row
    WEDSYNC_SLACK_RATE_PER_S          messages per second per channel (default 1.0)
    WEDSYNC_SLACK_BURST               token-bucket burst per channel (default 1)
    WEDSYNC_SLACK_LEDGER_SIZE         delivery ids remembered to skip repeats (default 10000)
    WEDSYNC_SLACK_TIMEOUT_S           whole-call timeout of the Web API client (default 20;
                                      the outbound policy's WEDSYNC_SINK_READ_TIMEOUT_S
                                      deadline bounds every call whatever this says)

The bot token is a SecretStr: it is never printed and only revealed to the Slack client.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_SLACK_", extra="ignore", frozen=True)

    api_base_url: str = Field(default="https://slack.com", description="Web API base URL")
    bot_token: SecretStr | None = Field(default=None, description="platform bot token")
    rate_per_s: float = Field(default=1.0, gt=0, description="messages/s per channel")
    burst: int = Field(default=1, ge=1)
    ledger_size: int = Field(default=10_000, ge=0, description="delivered ids remembered")
    timeout_s: float = Field(default=20.0, gt=0)

    def api_url(self) -> str:
        """The base URL slack-sdk expects (ends with ``/api/``)."""
        return self.api_base_url.rstrip("/") + "/api/"
