"""Shared pieces of the Google and Graph sinks' component tests: the app's credentials and
the integrations' refresh tokens, the delivery record and context, connectors against a
served fake, and `Provider`, what a test run against both sinks needs to know of each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.google.sink import GoogleCalendarConnector
from connectors.calendar.graph.config import GraphConfig
from connectors.calendar.graph.sink import GraphCalendarConnector
from connectors.sinks.base import DeliveryContext, SinkEnv
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy
from pydantic import SecretStr
from streams.app.sinks import read_settings
from streams.dev.fakes.calendar_kit import CalendarFake
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake

from tests.calendar_records import ONE_HOUR_IN_LONDON

CLIENT_ID = "app-id"
GOOGLE_REFRESH = "1//refresh-token-SECRET-value"
GOOGLE_SECRET = "client-secret-SECRET"
GOOGLE_EXTERNAL = "0123456789abcdefghijklmnopqrstuv"
GRAPH_REFRESH = "M.R3_refresh-token-SECRET"
GRAPH_SECRET = "graph-client-SECRET"
GRAPH_TOKEN_PATH = "/common/oauth2/v2.0/token"
WALL_CLOCK: dict[str, Any] = {  # a wedding whose zone routing did not know (none stored)
    "starts_at_ms": None,
    "ends_at_ms": None,
    "time_zone": None,
    "local_start": "2027-06-12T14:00:00",
    "local_end": "2027-06-12T22:00:00",
}


def delivery(defaults: dict[str, Any], /, **overrides: Any) -> dict[str, Any]:
    """A sink's delivery record: a one-hour wedding in London, `defaults` (the provider's
    fields) and then `overrides` over it."""
    base: dict[str, Any] = {
        **ONE_HOUR_IN_LONDON,
        "delivery_id": "d-1",
        "aggregate_version": 1,
        "title": "Wedding: Ana & Ben",
        "description": "Ceremony",
        "location": "Old Mill",
    }
    return {**base, **defaults, **overrides}


def google_record(**overrides: Any) -> dict[str, Any]:
    defaults = {"provider": "google", "external_event_id": GOOGLE_EXTERNAL,
                "integration_id": "int-1"}  # fmt: skip
    return delivery(defaults, **overrides)


def graph_record(**overrides: Any) -> dict[str, Any]:
    defaults = {"provider": "graph", "external_event_id": "wedding-42-vendor-7",
                "integration_id": "int-9"}  # fmt: skip
    return delivery(defaults, **overrides)


def ctx(
    store: MemoryCredentialStore, *, refresh: bool = False, key: str = "d-1"
) -> DeliveryContext:
    return DeliveryContext(credentials=store, idempotency_key=key, attempt=0, refresh=refresh)


def stored(fake: CalendarFake) -> list[dict[str, Any]]:
    """The fake's events as its stats list them."""
    return list(fake.stats()["events"])


def refresh_grant(refresh: str, secret: str | None = None) -> dict[str, str]:
    """The token endpoint's form for a refresh-token grant (with the app's credentials when
    a `secret` is given)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    if secret is not None:
        form.update(client_id=CLIENT_ID, client_secret=secret)
    return form


def environment() -> SinkEnv:
    """What a sink's `build` gets: loopback policy, no credentials, settings read from the
    environment (a test sets them with monkeypatch)."""
    return SinkEnv(policy=OutboundPolicy.loopback_for_tests(), credentials=MemoryCredentialStore(),
                   settings=read_settings)  # fmt: skip


def google_connector(fake: CalendarFake, secret: str = GOOGLE_SECRET) -> GoogleCalendarConnector:
    base = fake.base_url
    config = GoogleConfig(client_id=CLIENT_ID, client_secret=SecretStr(secret),
                          token_url=f"{base}/token", api_base_url=base)  # fmt: skip
    return GoogleCalendarConnector(OutboundPolicy.loopback_for_tests(base), config)


def graph_connector(fake: CalendarFake, secret: str = GRAPH_SECRET) -> GraphCalendarConnector:
    base = fake.base_url
    config = GraphConfig(client_id=CLIENT_ID, client_secret=SecretStr(secret),
                         token_url=base + GRAPH_TOKEN_PATH, api_base_url=base)  # fmt: skip
    return GraphCalendarConnector(OutboundPolicy.loopback_for_tests(base), config)


@dataclass(frozen=True)
class Provider:
    """What a test run against both sinks needs of one of them."""

    name: str  # also the prefix of its error classes
    fake: Callable[[], CalendarFake]
    connector: Callable[..., Any]  # (fake, secret=the app's) -> a connector
    record: Callable[..., dict[str, Any]]
    integration: str
    refresh: str
    title: str  # the event field the title is written to
    zone_read: str  # the counter of the fake's reads of the calendar's (mailbox's) zone
    codes: dict[str, str]  # the provider's error code of: auth, throttle, conflict
    details: tuple[str, ...] = ()  # what our own logs and answers must not tell

    def store(self) -> MemoryCredentialStore:
        return MemoryCredentialStore({("integration", self.integration): {"api_key": self.refresh}})


GOOGLE = Provider(
    "google", lambda: GoogleCalendarFake(client_id=CLIENT_ID, client_secret=GOOGLE_SECRET),
    google_connector, google_record, "int-1", GOOGLE_REFRESH, "summary", "calendars_read",
    {"auth": "authError", "throttle": "rateLimitExceeded", "conflict": "conditionNotMet"},
)  # fmt: skip
GRAPH = Provider(
    "graph", lambda: GraphFake(client_id=CLIENT_ID, client_secret=GRAPH_SECRET),
    graph_connector, graph_record, "int-9", GRAPH_REFRESH, "subject", "mailbox_settings_read",
    {"auth": "InvalidAuthenticationToken", "throttle": "ApplicationThrottled",
     "conflict": "PreconditionFailed"},
    details=("wedding-42-vendor-7", "filter", "/v1.0/"),
)  # fmt: skip
