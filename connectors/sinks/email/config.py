"""Settings of the email sink, read once from WEDSYNC_EMAIL_* environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmailConfig(BaseSettings):
    """The platform's SMTP relay and the sender identity.

    `starttls` upgrades a plain connection (port 587); `use_tls` is implicit TLS (port 465);
    both off means plain SMTP (loopback tests, a local relay). `username`/`password` turn on
    AUTH. `rate_per_s` limits the whole relay (key ``email:relay``); None means unlimited."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_EMAIL_", frozen=True, extra="ignore")

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    use_tls: bool = False
    validate_certs: bool = True
    from_address: str = "notifications@wedsync.invalid"
    from_name: str = "WedSync"
    timeout_s: float = Field(default=15.0, gt=0)
    message_id_domain: str = "wedsync.invalid"
    rate_per_s: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    # open SMTP sessions kept to the relay and reused (`pool.RelayPool`): at most this many
    # at once, each for up to `messages_per_connection` messages, closed when idle longer
    # than `idle_close_s` (relays drop idle sessions; a reused one they dropped is reopened)
    pool_size: int = Field(default=20, ge=1)
    messages_per_connection: int = Field(default=100, ge=1)
    idle_close_s: float = Field(default=30.0, gt=0)
