"""Fixtures of the CalDAV feed's component tests: Radicale (one per module) with the vendor's
account, a fresh calendar per test, the vendor's own calendar app, and the fetcher's client
that records what it sends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from streams.dev.fakes.caldav import RadicaleServer
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.caldav.feed import AUTH, PASSWORD, USER, recording_client


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    with RadicaleServer(users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def calendar(radicale: RadicaleServer, unique_id: str) -> CalendarRef:
    url = radicale.make_calendar(USER, f"cal-{unique_id}")
    return CalendarRef("caldav", "int-dav", "sup-1", url, "Europe/London")


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request the fetcher sends (the test's own PUTs and DELETEs go around it)."""
    return []


@pytest.fixture
async def http(sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    async with recording_client(sent) as client:
        yield client


@pytest.fixture
async def vendor_app() -> AsyncIterator[httpx.AsyncClient]:
    """The vendor's own calendar app."""
    async with httpx.AsyncClient(timeout=10, auth=AUTH) as client:
        yield client
