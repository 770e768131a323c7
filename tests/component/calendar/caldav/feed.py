"""Shared pieces of the CalDAV feed's component tests of the CTag/ETag path: the account,
window and event bodies, a client that records what the fetcher sends, and readings of a
round (changes by file name, requests by kind)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from connectors.calendar.caldav.fetch import fetch_round
from streams.logic.calendar.rounds import CalendarRef, FetchRound

USER, PASSWORD = "vendor", "app-pw-6622"
AUTH = httpx.BasicAuth(USER, PASSWORD)
JUNE = 1_812_412_800_000  # 2027-06-08T00:00:00Z
H = 3_600_000
D = 24 * H
WINDOW = (JUNE - 30 * D, JUNE + 400 * D)


@asynccontextmanager
async def recording_client(sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that appends every request it sends to `sent`."""

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as client:
        yield client


def ics(uid: str, day: int = 12, hour: int = 13) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Private\r\n"
        f"DTSTART:202706{day:02d}T{hour:02d}0000Z\r\nDTEND:202706{day:02d}T{hour + 1:02d}0000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def put(app: httpx.AsyncClient, calendar: CalendarRef, name: str, text: str) -> None:
    answer = await app.put(
        calendar.calendar_id + name, content=text, headers={"Content-Type": "text/calendar"}
    )
    assert answer.status_code in (201, 204), answer.text


async def run(
    http: httpx.AsyncClient, calendar: CalendarRef, cursor: str | None, mode: Any = "etag"
) -> FetchRound:
    return await fetch_round(http, AUTH, calendar, cursor, WINDOW, "poll", mode=mode)


def by_name(round_: FetchRound, *, ends: bool = False) -> dict[str, Any]:
    """The round's changes by file name: None (removed) or its instances, each (start after
    JUNE, busy), or (start, end, busy) with `ends`."""
    return {
        c.resource_id.rsplit("/", 1)[-1]: None
        if c.instances is None
        else sorted(
            (o.start_ms - JUNE, o.end_ms - JUNE, o.busy) if ends else (o.start_ms - JUNE, o.busy)
            for o in c.instances
        )
        for c in round_.changes
    }


def kinds(requests: list[httpx.Request]) -> list[str]:
    """Each request as METHOD/Depth/REPORT kind, e.g. 'PROPFIND/0' or 'REPORT/1/multiget'."""
    out = []
    for r in requests:
        kind = re.search(rb"<\w+:(sync-collection|calendar-multiget)", r.content)
        tail = "/" + kind.group(1).decode().removeprefix("calendar-") if kind else ""
        out.append(f"{r.method}/{r.headers.get('Depth')}{tail}")
    return out
