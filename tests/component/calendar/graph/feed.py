"""Shared pieces of the Graph feed's component tests: the calendar, window and mailbox they
use, event bodies as the vendor writes them in Outlook, and a tiny notification receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web
from connectors.calendar.graph import channel_wire, channels
from connectors.calendar.graph.fetch import fetch_round
from streams.dev.fakes.graph import GraphFake
from streams.logic.calendar.rounds import CalendarRef, FetchRound

from tests.component.calendar.sinks import GRAPH_REFRESH, GRAPH_SECRET

REFRESH, CLIENT_SECRET = GRAPH_REFRESH, GRAPH_SECRET  # the sink's tests' mailbox and app
OWNER = GraphFake.owner_of(REFRESH)
CAL = CalendarRef("graph", "int-9", "sup-1", "primary", time_zone="Europe/London")
WINDOW = (
    int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2028, 1, 1, tzinfo=UTC).timestamp() * 1000),
)


def event(day: int, hour: int = 10, **fields: Any) -> dict[str, Any]:
    return {
        "subject": "Private thing",
        "start": {"dateTime": f"2027-06-{day:02d}T{hour:02d}:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2027-06-{day:02d}T{hour + 1:02d}:00:00", "timeZone": "UTC"},
        **fields,
    }


async def full(http: httpx.AsyncClient, base: str, token: str, **kw: Any) -> FetchRound:
    return await fetch_round(http, base, token, CAL, None, WINDOW, "full_resync", **kw)


def ids(result: FetchRound) -> dict[str, Any]:
    return {c.resource_id: c.instances for c in result.changes}


class Receiver:
    """A tiny notification endpoint: echoes validation tokens, queues what Graph posts."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.validations = 0
        self.posts: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            self.validations += 1
            return web.Response(text=token if self.echo else "nope", content_type="text/plain")
        await self.posts.put((request.path, await request.json()))
        return web.Response(status=202)

    async def next(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self.posts.get(), 10)


def receiver_app(receiver: Receiver) -> web.Application:
    """The receiver's app: every path is one of its endpoints (`serving` runs it)."""
    app = web.Application()
    app.router.add_post("/{kind}", receiver.handle)
    return app


async def subscribe(
    http: httpx.AsyncClient, base: str, token: str, receiver: Receiver
) -> channel_wire.Subscription:
    return await channels.create_subscription(
        http, base, token, CAL, notification_url=receiver.url + "/notify",
        lifecycle_url=receiver.url + "/lifecycle", client_state="v1.int-9.mac",
    )  # fmt: skip
