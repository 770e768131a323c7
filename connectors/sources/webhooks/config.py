"""Gateway configuration: which sources exist and how each one is authenticated.

Parsed once, at the edge, before any I/O: `load_gateway_config()` reads a TOML or JSON file
(or inline JSON in `WEDSYNC_INGEST_CONFIG`) and validates it into frozen models. Secrets are
`SecretStr`, so they never print; a string of the form `${NAME}` is replaced by the
environment variable NAME before validation, so files need not hold secrets at all.

Failure means `ConfigurationError` naming the bad field; the gateway does not start.

Example (TOML)::

    [sources.billing]
    method = "standard_webhooks"
    secrets = ["${BILLING_WHSEC}"]

    [sources.crm]
    method = "hmac_sha256"
    secrets = ["${CRM_SECRET}"]
    signature_header = "x-signature"
    prefix = "sha256="

    [sources.supabase]
    method = "bearer"
    tokens = ["${SUPABASE_HOOK_TOKEN}"]
    payload = "supabase"            # served on POST /changes/supabase
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from streams.errors import ConfigurationError

DEFAULT_MAX_BODY = 256 * 1024
Payload = Literal["raw", "supabase", "debezium"]
ENV_CONFIG = "WEDSYNC_INGEST_CONFIG"


class _Source(BaseModel):
    """What every source shares: limits, payload kind, where a delivery id comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payload: Payload = Field(
        default="raw",
        description="raw: stored as an InboundWebhook (POST /webhooks/{name}); supabase or "
        "debezium: converted to a ChangeEvent (POST /changes/{name}).",
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, gt=0)
    rate_per_second: float = Field(default=100.0, gt=0, description="sustained requests per second")
    burst: int = Field(default=200, gt=0, description="requests allowed at once above the rate")
    json_body: bool = Field(default=True, description="reject a body that is not JSON with 400")
    delivery_id_header: str | None = Field(
        default=None,
        description="header holding the provider's delivery id, deduplicated on within the "
        "window (without one: webhooks dedupe on a body hash; changes on Debezium's source "
        "position, else not at all)",
    )
    database: str = Field(
        default="wedsync", description="db name for change payloads that lack one"
    )
    unavailable_value_placeholder: str = Field(
        default="__debezium_unavailable_value",
        min_length=1,
        description="Debezium's unavailable.value.placeholder: a column with it is unchanged",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_primary_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "primary_keys" in data:
            raise ValueError(
                "primary_keys is no longer read: the source contract declares each table's "
                "key (streams/logic/contract.py), the same on every path; remove it"
            )
        return data

    @field_validator("delivery_id_header")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class StandardWebhooksSource(_Source):
    method: Literal["standard_webhooks"]
    secrets: tuple[SecretStr, ...] = Field(min_length=1, description="whsec_... ; several rotate")
    tolerance_seconds: int = Field(default=300, gt=0)

    @field_validator("secrets")
    @classmethod
    def _decodable(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for secret in secrets:
            decode_whsec(secret)  # raises ValueError without echoing the secret
        return secrets


class HmacSource(_Source):
    method: Literal["hmac_sha256"]
    secrets: tuple[SecretStr, ...] = Field(min_length=1)
    signature_header: str = "x-signature"
    prefix: str = Field(default="", description="e.g. 'sha256=' in front of the digest")
    encoding: Literal["hex", "base64"] = "hex"
    timestamp_header: str | None = Field(
        default=None, description="when set, the signed bytes are '<timestamp>.<body>'"
    )
    tolerance_seconds: int = Field(default=300, gt=0)

    @field_validator("signature_header", "timestamp_header")
    @classmethod
    def _lower_header(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class JwtSource(_Source):
    method: Literal["jwt"]
    algorithms: tuple[Literal["HS256", "RS256"], ...] = ("HS256",)
    secret: SecretStr | None = Field(default=None, description="shared key for HS256")
    public_key: str | None = Field(default=None, description="PEM public key for RS256")
    issuer: str
    audience: str
    leeway_seconds: int = Field(default=30, ge=0)
    header: str = "authorization"

    @field_validator("header")
    @classmethod
    def _lower_header(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _keys_present(self) -> JwtSource:
        if "HS256" in self.algorithms and self.secret is None:
            raise ValueError("HS256 needs `secret`")
        if "RS256" in self.algorithms and not self.public_key:
            raise ValueError("RS256 needs `public_key`")
        return self


class BearerSource(_Source):
    method: Literal["bearer"]
    tokens: tuple[SecretStr, ...] = Field(min_length=1)


class BasicSource(_Source):
    method: Literal["basic"]
    username: str
    password: SecretStr


_KEYS_HELP = (
    "channel token keys (streams/logic/calendar/channels.py): the current one first, then "
    "the previous one while keys rotate; any channel whose token carries a valid MAC is "
    "accepted (no registry)"
)


class GoogleChannelSource(_Source):
    """Google push channels: a static `channels` map (id -> token), or `channel_keys` for
    channels whose tokens are MACs (thousands of rotating channels), or both."""

    method: Literal["google_channel"]
    channels: dict[str, SecretStr] = Field(
        default_factory=dict, description="registered channel id -> its X-Goog-Channel-Token"
    )
    channel_keys: tuple[SecretStr, ...] = Field(default=(), description=_KEYS_HELP)
    json_body: bool = False  # Google push notifications carry no body

    @model_validator(mode="after")
    def _some_channels(self) -> GoogleChannelSource:
        if not self.channels and not self.channel_keys:
            raise ValueError("google_channel needs `channels` (id -> token) or `channel_keys`")
        _keys_not_empty(self.channel_keys)
        return self


class GraphSource(_Source):
    """Graph change notifications: a shared `client_states` list (a batch with one wrong
    item is refused whole), or `channel_keys` for per-subscription MAC clientStates
    (verified item by item), or both."""

    method: Literal["graph_client_state"]
    client_states: tuple[SecretStr, ...] = ()
    channel_keys: tuple[SecretStr, ...] = Field(default=(), description=_KEYS_HELP)

    @model_validator(mode="after")
    def _some_states(self) -> GraphSource:
        if not self.client_states and not self.channel_keys:
            raise ValueError("graph_client_state needs `client_states` or `channel_keys`")
        _keys_not_empty(self.channel_keys)
        return self


def _keys_not_empty(keys: tuple[SecretStr, ...]) -> None:
    if any(not key.get_secret_value() for key in keys):
        raise ValueError("a channel key is empty")


class NoVerificationSource(_Source):
    """Accept anything. Only for local development; the record says `none`."""

    method: Literal["none"]


SourceConfig = Annotated[
    StandardWebhooksSource
    | HmacSource
    | JwtSource
    | BearerSource
    | BasicSource
    | GoogleChannelSource
    | GraphSource
    | NoVerificationSource,
    Field(discriminator="method"),
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class GatewayConfig(BaseModel):
    """The whole gateway: where it listens, its sources, and the ack/dedupe policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    dedupe_window_seconds: float = Field(default=3600.0, gt=0)
    dedupe_max_entries: int = Field(default=1_000_000, gt=0)
    ack_timeout_seconds: float = Field(
        default=5.0, gt=0, description="wait this long for Kafka's ack"
    )
    retry_after_seconds: int = Field(default=5, gt=0, description="Retry-After when Kafka is down")

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: dict[str, Any]) -> dict[str, Any]:
        for name in sources:
            if not _NAME.match(name):
                raise ValueError(f"source name {name!r}: use lower-case letters, digits, _ . -")
        return sources


def decode_whsec(secret: SecretStr) -> bytes:
    """Key bytes of a Standard Webhooks secret (`whsec_` + base64); ValueError if invalid."""
    raw = secret.get_secret_value().removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a standard_webhooks secret is not base64 (whsec_...)") from None
    if not key:
        raise ValueError("a standard_webhooks secret is empty")
    return key


_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _expand_env(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, environ) for v in value]
    if isinstance(value, str) and (match := _ENV_REF.match(value)):
        name = match.group(1)
        if name not in environ:
            raise ConfigurationError(f"ingest config refers to ${{{name}}}, which is not set")
        return environ[name]
    return value


def parse_gateway_config(data: dict[str, Any], environ: Mapping[str, str]) -> GatewayConfig:
    """Validate a config mapping, `${NAME}`s taken from `environ`; ConfigurationError says
    which field is wrong (no values)."""
    expanded = _expand_env(data, environ)
    try:
        return GatewayConfig.model_validate(expanded)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"ingest config is invalid: {problems}") from None


def load_gateway_config(path: str | Path | None, environ: Mapping[str, str]) -> GatewayConfig:
    """Read the config from `path` (.toml or .json), else from WEDSYNC_INGEST_CONFIG in
    `environ` (a path or inline JSON); `${NAME}`s are taken from `environ` too.
    ConfigurationError when nothing is configured or it does not validate."""
    source = str(path) if path is not None else environ.get(ENV_CONFIG, "")
    if not source:
        raise ConfigurationError(f"no ingest config: pass --config or set {ENV_CONFIG}")
    if source.lstrip().startswith("{"):
        text, suffix = source, ".json"
    else:
        file = Path(source)
        try:
            text, suffix = file.read_text(), file.suffix.lower()
        except OSError as exc:
            raise ConfigurationError(f"cannot read ingest config {file}: {exc}") from exc
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"ingest config is not valid {suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError("ingest config must be a table/object at the top level")
    return parse_gateway_config(data, environ)
