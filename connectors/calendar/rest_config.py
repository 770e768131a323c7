"""What the settings of the JSON calendar sinks (Google, Graph) share: the platform's OAuth
client, its token endpoint, where the API is, and how early an access token is refreshed.
Each provider's `config.py` subclasses `OAuthApiConfig` with its own environment prefix,
its endpoints' defaults and its limits."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class OAuthApiConfig(BaseSettings):
    """The platform app's OAuth client and the API's base URL (loopback for tests and
    fakes); subclasses set `model_config` (their ``WEDSYNC_<PROVIDER>_`` prefix) and the
    defaults of `token_url` and `api_base_url`."""

    client_id: str = Field(default="", description="The platform app's OAuth client id.")
    client_secret: SecretStr = Field(
        default=SecretStr(""), description="The platform app's OAuth client secret."
    )
    token_url: str = Field(default="", description="OAuth token endpoint (refresh-token grant).")
    api_base_url: str = Field(default="", description="Base of the API.")
    token_skew_s: float = Field(
        default=60.0, ge=0, description="Refresh an access token this long before it expires."
    )
