"""Fixtures of the Google and Graph sinks' component tests, for the `provider` a module names
(`tests.component.calendar.sinks.GOOGLE` or `GRAPH`, or both in turn): its fake over loopback,
its connector against the fake, and the integration's refresh token in a credential store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest
from connectors.sinks.credentials import MemoryCredentialStore
from streams.dev.fakes.calendar_kit import CalendarFake
from streams.dev.fakes.kit import FakeServer

from tests.component.calendar.sinks import Provider


@pytest.fixture
def fake(provider: Provider) -> Iterator[CalendarFake]:
    made = provider.fake()
    with FakeServer(made):
        yield made


@pytest.fixture
async def sink(provider: Provider, fake: CalendarFake) -> AsyncIterator[Any]:
    async with aclosing(provider.connector(fake)) as connector:
        yield connector


@pytest.fixture
def store(provider: Provider) -> MemoryCredentialStore:
    return provider.store()
