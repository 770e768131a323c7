"""Fixtures of the channel manager's component tests: the Google and Graph fakes over
loopback (the Google fake on the test's clock), a `CalendarFeed` with an in-memory writer,
`ProviderFetchers` with refresh tokens in a MemoryCredentialStore, the gateway stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiohttp import web
from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.feed.channels import ChannelManager
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.graph.config import GraphConfig
from connectors.sinks.credentials import MemoryCredentialStore
from pydantic import SecretStr
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake
from streams.dev.fakes.kit import FakeServer

from tests.component.calendar.feed.support import (
    GOOGLE_INTEGRATION,
    GOOGLE_REFRESH,
    GRAPH_INTEGRATION,
    GRAPH_REFRESH,
    GRAPH_SECRET,
    WAIT_S,
    Clock,
    Gateway,
    MemoryWriter,
    make_manager,
)
from tests.component.calendar.loopback import serving


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    found = Gateway()
    app = web.Application()
    app.router.add_post("/webhooks/gcal", found.google)
    app.router.add_post("/webhooks/graph", found.graph)
    async with serving(app) as url:
        found.url = f"{url}/webhooks"
        yield found


@pytest.fixture
def google(clock: Clock, gateway: Gateway) -> Iterator[GoogleCalendarFake]:
    """Started after (so stopped before) the gateway: no push is left on its way."""
    provider = GoogleCalendarFake(client_id="google-app", client_secret="google-SECRET")
    provider.channels.now_ms = clock.now_ms
    with FakeServer(provider):
        yield provider


@pytest.fixture
def graph(gateway: Gateway) -> Iterator[GraphFake]:
    provider = GraphFake(client_id="graph-app", client_secret=GRAPH_SECRET)
    with FakeServer(provider):
        yield provider


@pytest.fixture
def credentials() -> MemoryCredentialStore:
    return MemoryCredentialStore(
        {
            ("integration", GOOGLE_INTEGRATION): {"api_key": GOOGLE_REFRESH},
            ("integration", GRAPH_INTEGRATION): {"api_key": GRAPH_REFRESH},
        }
    )


@pytest.fixture
async def fetchers(
    google: GoogleCalendarFake, graph: GraphFake, credentials: MemoryCredentialStore
) -> AsyncIterator[ProviderFetchers]:
    gbase, mbase = google.base_url, graph.base_url
    made = ProviderFetchers(
        httpx.AsyncClient(timeout=WAIT_S),
        credentials,
        google=GoogleConfig(client_id="google-app", client_secret=SecretStr("google-SECRET"),
                            token_url=f"{gbase}/token", api_base_url=gbase),
        graph=GraphConfig(client_id="graph-app", client_secret=SecretStr(GRAPH_SECRET),
                          token_url=f"{mbase}/common/oauth2/v2.0/token", api_base_url=mbase),
        caldav=CalDavConfig(default_home_url=None),
    )  # fmt: skip
    yield made
    await made.aclose()


@pytest.fixture
def writer() -> MemoryWriter:
    return MemoryWriter()


@pytest.fixture
def feed(fetchers: ProviderFetchers, writer: MemoryWriter, clock: Clock) -> CalendarFeed:
    return CalendarFeed(fetchers.fetch, writer, clock=clock.now_s)


@pytest.fixture
def manager(
    feed: CalendarFeed, fetchers: ProviderFetchers, gateway: Gateway, clock: Clock
) -> ChannelManager:
    return make_manager(feed, fetchers, gateway, clock)
