"""Shared pieces of the channel manager's component tests: the integrations and calendars,
one hand-moved clock, an in-memory round writer, and a tiny gateway stand-in that answers
Graph's handshake, records every push and routes it through a `PushRouter` into the manager
(as the feed process does)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
from aiohttp import web
from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.feed.channels import ChannelManager
from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.gate import RequestGate
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.calendar.feed.pushes import PushRouter
from connectors.calendar.feed.sync_state import CalendarSync
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.graph.config import GraphConfig
from connectors.sinks.credentials import CredentialStore
from pydantic import SecretStr
from streams.dev.fakes.kit import FakeProvider, FakeServer
from streams.logic.calendar.rounds import CalendarRef

P = TypeVar("P", bound=FakeProvider)

KEYS = [b"channel-key-for-tests-0123456789"]
GOOGLE_REFRESH = "1//vendor-refresh-token"
GRAPH_REFRESH = "M.R3_refresh-token-SECRET"
GRAPH_SECRET = "graph-client-SECRET"
GOOGLE_INTEGRATION = "8c1d7f0e-5b8a-4d2e-9a7c-3f1e2d4c5b6a"
GRAPH_INTEGRATION = "4f7a2b9c-1d3e-4a5b-8c6d-7e8f9a0b1c2d"
GOOGLE_CAL = CalendarRef("google", GOOGLE_INTEGRATION, "supplier-1", "vendor@example.com")
GRAPH_CAL = CalendarRef("graph", GRAPH_INTEGRATION, "supplier-2", "primary")
WAIT_S = 10.0


class Clock:
    """The one clock of the Google fake, the feed and the manager, moved by hand."""

    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)

    def now_ms(self) -> int:
        return self.ms

    def now_s(self) -> float:
        return self.ms / 1000


class MemoryWriter:
    """A RoundWriter that records every write and keeps the last state per calendar."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, CalendarSync | None]] = []
        self.states: dict[str, CalendarSync] = {}
        self.fail_next = 0  # the next N writes fail (a Kafka transaction that aborts)

    async def write(
        self, records: list[Any], events: list[Any], state: CalendarSync | None, key: str
    ) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RuntimeError("write failed")
        self.writes.append((key, state))
        if state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = state


class Gateway:
    """Stands in for the ingest gateway: echoes Graph's validationToken, queues every push
    (by Google channel id, or Graph subscription id), hands each to `router` first."""

    def __init__(self) -> None:
        self.router: PushRouter | None = None
        self.echo = True
        self.validations = 0
        self.pushes: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.url = ""

    async def google(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.router is not None:
            self.router.route({"verification": "google_channel", "headers": headers})
        self.pushes[headers.get("x-goog-channel-id", "")].put_nowait(headers)
        return web.Response(status=200)

    async def graph(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            self.validations += 1
            return web.Response(text=token if self.echo else "no", content_type="text/plain")
        body = await request.read()
        if self.router is not None:
            self.router.route({"verification": "graph_client_state", "body": body})
        for item in json.loads(body)["value"]:
            self.pushes[item["subscriptionId"]].put_nowait(item)
        return web.Response(status=202)

    async def next(self, channel_id: str) -> dict[str, Any]:
        """The next push of a channel (headers, or a Graph item), within WAIT_S."""
        return await asyncio.wait_for(self.pushes[channel_id].get(), WAIT_S)


def make_manager(
    feed: CalendarFeed, fetchers: ProviderFetchers, gateway: Gateway, clock: Clock, **kw: Any
) -> ChannelManager:
    manager = ChannelManager(
        feed, fetchers, keys=KEYS, google_push_url=gateway.url + "/gcal",
        graph_push_url=gateway.url + "/graph", clock=clock.now_s, **kw,
    )  # fmt: skip
    manager.load()
    gateway.router = PushRouter(feed, manager.on_lifecycle)
    return manager


async def connect(feed: CalendarFeed, *calendars: CalendarRef) -> None:
    await feed.connect({c.key: Connected(c, None) for c in calendars})


@contextlib.contextmanager
def served(provider: P) -> Iterator[P]:
    """`provider` over loopback, its URL as `base_url`, until the block ends."""
    with FakeServer(provider) as server:
        provider.base_url = server.url  # type: ignore[attr-defined]
        yield provider


def fetchers_for(
    google: FakeProvider,
    graph: FakeProvider,
    credentials: CredentialStore,
    *,
    http: httpx.AsyncClient | None = None,
    gate: RequestGate | None = None,
) -> ProviderFetchers:
    """`ProviderFetchers` for the served Google and Graph fakes (their apps' clients)."""
    gbase, mbase = google.base_url, graph.base_url  # type: ignore[attr-defined]
    return ProviderFetchers(
        http or httpx.AsyncClient(timeout=WAIT_S),
        credentials,
        google=GoogleConfig(client_id="google-app", client_secret=SecretStr("google-SECRET"),
                            token_url=f"{gbase}/token", api_base_url=gbase),
        graph=GraphConfig(client_id="graph-app", client_secret=SecretStr(GRAPH_SECRET),
                          token_url=f"{mbase}/common/oauth2/v2.0/token", api_base_url=mbase),
        caldav=CalDavConfig(default_home_url=None),
        gate=gate,
    )  # fmt: skip
