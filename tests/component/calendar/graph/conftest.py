"""Fixtures of the Graph feed's component tests: the fake over loopback, a client, an
access token from the fake's token endpoint, a notification receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from streams.dev.fakes.graph import GraphFake
from streams.dev.fakes.kit import FakeServer

from tests.component.calendar.graph.feed import CLIENT_SECRET, REFRESH, Receiver, receiver_app
from tests.component.calendar.loopback import serving
from tests.component.calendar.sinks import GRAPH_TOKEN_PATH, refresh_grant


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    provider = GraphFake(client_id="app-id", client_secret=CLIENT_SECRET)
    with FakeServer(provider):
        yield provider


@pytest.fixture
def base(fake: GraphFake) -> str:
    return fake.base_url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def token(http: httpx.AsyncClient, base: str) -> str:
    answer = await http.post(base + GRAPH_TOKEN_PATH, data=refresh_grant(REFRESH, CLIENT_SECRET))
    return str(answer.json()["access_token"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serving(receiver_app(found)) as url:
        found.url = url
        yield found
