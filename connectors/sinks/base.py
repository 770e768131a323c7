"""The shape every sink connector has, and what the runtime gives it.

A connector is three small pieces (STYLE.md): `config.py` (a frozen pydantic settings model,
secrets as SecretStr), `wire.py` (pure: record -> request, provider answer -> `Answer`) and
`sink.py` (the I/O: a class satisfying `Connector`). The runtime (`runtime.py`) owns
consuming, commits, retries, rate limits, breakers, credentials refresh and dead letters; a
connector only turns one record into calls and their answer into an `Answer`.

Contract of `Connector.deliver`:
- called once per attempt, concurrently for different records; must not raise for an
  answer the provider gave (classify it). Exceptions it does raise are translated by the
  runtime: `streams.errors.FatalError` -> dead letter, `RetryableError` -> retry,
  `BackpressureError` -> retry after, `httpx.TransportError`/`OSError`/timeouts -> retry;
- `ctx.idempotency_key` is stable across retries and processes (the delivery id): pass it to
  the provider's idempotency hook when it has one;
- `ctx.refresh` is True on the one extra call the runtime makes after a REAUTH answer, and
  on the probe of a paused integration: invalidate the cached credential row
  (`ctx.credentials.invalidate`), drop any cached access token and obtain a fresh one from
  the stored credential first. A second REAUTH pauses the integration (`credential_key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic_settings import BaseSettings
from streams.topics import Destination

from connectors.sinks.answer import Answer
from connectors.sinks.credentials import CredentialStore
from connectors.sinks.outbound import OutboundPolicy


@dataclass(frozen=True)
class Limits:
    """Per limit-key limits: a token bucket (`rate_per_s`, `burst`) and a concurrency cap.
    None means unlimited."""

    rate_per_s: float | None = None
    burst: int = 1
    concurrency: int | None = None


@dataclass(frozen=True)
class DeliveryContext:
    credentials: CredentialStore
    idempotency_key: str
    attempt: int
    refresh: bool = False


S = TypeVar("S", bound=BaseSettings)


class SettingsReader(Protocol):
    """Reads a settings model from where the application keeps its configuration."""

    def __call__(self, model: type[S]) -> S: ...


@dataclass(frozen=True)
class SinkEnv:
    """What a connector factory receives: the outbound policy, the credential store and
    `settings`, which reads a connector's own settings model (`WEDSYNC_<KIND>_*`) where the
    application keeps its configuration (the environment): the connector names the model,
    the application's edge reads it (`streams.app.sinks.read_settings`)."""

    policy: OutboundPolicy
    credentials: CredentialStore
    settings: SettingsReader


class Connector(Protocol):
    destination: Destination

    def target(self, record: dict[str, Any]) -> str:
        """The delivery target as an id (no PII, no secrets): the ledger's `target`, the
        breaker key and the staleness key, e.g. ``slack:C024BE91L``,
        ``calendar:<integration id>``, ``webhook:<endpoint id>``."""
        ...

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """The rate-limit key of the record and the limits for it (e.g. one Slack channel:
        1 message/s; one Graph mailbox: 4 concurrent requests)."""
        ...

    def credential_key(self, record: dict[str, Any]) -> str | None:
        """The integration (or endpoint) whose credential this delivery uses, or None when
        it uses the platform's own (SMTP relay, Twilio account): the unit of pausing."""
        ...

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """Make the calls for one attempt and classify the answer. See the module docstring."""
        ...

    async def aclose(self) -> None:
        """Release clients. Called once when the sink stops."""
        ...
