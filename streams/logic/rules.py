"""The routing rules file (streams/routing.toml): parsed with tomllib and validated by frozen
pydantic models once, at load, then compiled to plain frozen dataclasses for the hot path.

An invalid file raises `ConfigurationError` naming the file and the bad rule (its number and
name) and what is wrong with it. See streams/routing.toml for the meaning of each key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.errors import ConfigurationError

DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "routing.toml"

Channel = Literal["email", "slack", "sms", "inapp"]
IntegrationKind = Literal["photography_crm", "venue_booking", "calendar", "email_marketing"]
Recipients = Literal["supplier", "wedding_vendors", "vendor_and_couple", "none"]


class RuleModel(BaseModel):
    """One `[[rules]]` table of the rules file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    event_type: str = Field(pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
    recipients: Recipients = "supplier"
    default_channels: tuple[Channel, ...] = ()
    allowed_channels: tuple[Channel, ...] = ()
    integrations: tuple[IntegrationKind, ...] = ()
    webhooks: bool = False
    urgent: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> RuleModel:
        extra = set(self.default_channels) - set(self.allowed_channels)
        if extra:
            raise ValueError(f"default_channels {sorted(extra)} are not in allowed_channels")
        if self.recipients == "none" and (self.allowed_channels or self.integrations):
            raise ValueError("recipients = 'none' cannot have channels or integrations")
        return self


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule, compiled to plain values for the hot path."""

    name: str
    event_type: str
    recipients: str
    default_channels: tuple[str, ...]
    allowed_channels: frozenset[str]
    integrations: frozenset[str]
    webhooks: bool
    urgent: bool


@dataclass(frozen=True, slots=True)
class RoutingRules:
    by_event_type: Mapping[str, Rule]
    # the zone of a calendar event when neither the wedding, the calendar nor the
    # integration names one (WEDSYNC_ROUTE_DEFAULT_TIME_ZONE)
    default_time_zone: str | None = None


def parse_rules(text: str, origin: str = "<rules>") -> RoutingRules:
    """Validate a rules document; ConfigurationError names the file and the bad rule."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{origin}: not valid TOML: {exc}") from None
    unknown = set(document) - {"rules"}
    if unknown:
        raise ConfigurationError(f"{origin}: unknown top-level keys {sorted(unknown)}")
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigurationError(f"{origin}: needs at least one [[rules]] table")
    compiled: dict[str, Rule] = {}
    names: set[str] = set()
    for index, raw in enumerate(raw_rules, start=1):
        label = f"rule #{index} {raw.get('name')!r}" if isinstance(raw, dict) else f"#{index}"
        try:
            model = RuleModel.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"{origin}: {label}: {problems}") from None
        if model.name in names:
            raise ConfigurationError(f"{origin}: {label}: duplicate rule name")
        if model.event_type in compiled:
            raise ConfigurationError(
                f"{origin}: {label}: event_type {model.event_type!r} already routed by "
                f"rule {compiled[model.event_type].name!r}"
            )
        names.add(model.name)
        compiled[model.event_type] = Rule(
            name=model.name,
            event_type=model.event_type,
            recipients=model.recipients,
            default_channels=model.default_channels,
            allowed_channels=frozenset(model.allowed_channels),
            integrations=frozenset(model.integrations),
            webhooks=model.webhooks,
            urgent=model.urgent,
        )
    return RoutingRules(by_event_type=compiled)


def load_rules(path: Path = DEFAULT_RULES_PATH) -> RoutingRules:
    """Read and validate the rules file; ConfigurationError when missing or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"routing rules {path}: cannot read: {exc}") from None
    return parse_rules(text, str(path))
