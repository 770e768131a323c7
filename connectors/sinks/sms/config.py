"""Configuration of the SMS (Twilio) sink, parsed once from the environment (prefix
`WEDSYNC_SMS_`).

    WEDSYNC_SMS_ACCOUNT_SID             the Twilio account (AC...)
    WEDSYNC_SMS_AUTH_TOKEN              its auth token (secret)
    WEDSYNC_SMS_FROM_NUMBER             sender number in E.164, or
    WEDSYNC_SMS_MESSAGING_SERVICE_SID   a Messaging Service (MG...), which wins when both set
    WEDSYNC_SMS_API_BASE_URL            default https://api.twilio.com
    WEDSYNC_SMS_STATUS_CALLBACK_URL     optional StatusCallback for delivery reports
    WEDSYNC_SMS_RATE_PER_S              messages per second for the account (default 10)
    WEDSYNC_SMS_BURST                   token-bucket burst (default 10)
    WEDSYNC_SMS_CONCURRENCY             concurrent requests for the account (default 10)
    WEDSYNC_SMS_LEDGER_SIZE             delivered ids remembered to skip repeats (default 10000)

Validated before any I/O: an account, a token and a sender are required.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_SMS_", extra="ignore", frozen=True)

    account_sid: str = Field(min_length=1, description="Twilio AccountSid (AC...)")
    auth_token: SecretStr = Field(description="Twilio auth token")
    from_number: str | None = Field(default=None, description="sender, E.164")
    messaging_service_sid: str | None = Field(default=None, description="MG...")
    api_base_url: str = "https://api.twilio.com"
    status_callback_url: str | None = None
    rate_per_s: float = Field(default=10.0, gt=0)
    burst: int = Field(default=10, ge=1)
    concurrency: int | None = Field(default=10, ge=1)
    ledger_size: int = Field(default=10_000, ge=0)

    @model_validator(mode="after")
    def _sender(self) -> SmsConfig:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set WEDSYNC_SMS_FROM_NUMBER or WEDSYNC_SMS_MESSAGING_SERVICE_SID")
        if not self.auth_token.get_secret_value():
            raise ValueError("WEDSYNC_SMS_AUTH_TOKEN is empty")
        return self
