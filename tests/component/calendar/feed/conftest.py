"""Fixtures of the channel manager's component tests: the Google and Graph fakes over
loopback (the Google fake on the test's clock), a `CalendarFeed` with an in-memory writer,
`ProviderFetchers` with refresh tokens in a MemoryCredentialStore, the gateway stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from connectors.calendar.feed.channels import ChannelManager
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.sinks.credentials import MemoryCredentialStore
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake

from tests.component.calendar.feed.support import (
    GOOGLE_INTEGRATION,
    GOOGLE_REFRESH,
    GRAPH_INTEGRATION,
    GRAPH_REFRESH,
    GRAPH_SECRET,
    Clock,
    Gateway,
    MemoryWriter,
    fetchers_for,
    make_manager,
    served,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    found = Gateway()
    app = web.Application()
    app.router.add_post("/webhooks/gcal", found.google)
    app.router.add_post("/webhooks/graph", found.graph)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/webhooks"
    yield found
    await runner.cleanup()


@pytest.fixture
def google(clock: Clock, gateway: Gateway) -> Iterator[GoogleCalendarFake]:
    """Started after (so stopped before) the gateway: no push is left on its way."""
    provider = GoogleCalendarFake(client_id="google-app", client_secret="google-SECRET")
    provider.channels.now_ms = clock.now_ms
    with served(provider):
        yield provider


@pytest.fixture
def graph(gateway: Gateway) -> Iterator[GraphFake]:
    with served(GraphFake(client_id="graph-app", client_secret=GRAPH_SECRET)) as provider:
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
    made = fetchers_for(google, graph, credentials)
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
