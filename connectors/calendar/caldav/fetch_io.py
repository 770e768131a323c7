"""The requests and answer reading both CalDAV feed paths share (`fetch`, `fetch_etag`).

`send` makes one WebDAV request (a transport failure is FetchFailed); `refusal` turns a
non-207 answer into the feed error that says what to do next (module docstring of `fetch`);
`multiget` reads the calendar data of up to `MULTIGET_BATCH` hrefs into the round and says
which resources it read; `observe` expands one resource's data into the round.
"""

from __future__ import annotations

import httpx
from streams.logic.calendar.rounds import CalendarRef

from connectors.calendar.caldav import fetch_wire
from connectors.calendar.feed_errors import (
    CalendarGone,
    FetchFailed,
    FullResyncRequired,
    ReauthRequired,
    Throttled,
)
from connectors.calendar.rounds import RoundBuilder
from connectors.sinks.answer import parse_retry_after

MULTIGET_BATCH = 75
XML = {"Content-Type": "application/xml; charset=utf-8"}


async def send(
    http: httpx.AsyncClient, auth: httpx.Auth, method: str, url: str, body: bytes, *, depth: str
) -> httpx.Response:
    try:
        return await http.request(
            method, url, content=body, headers={**XML, "Depth": depth}, auth=auth
        )
    except httpx.HTTPError as exc:
        raise FetchFailed(f"caldav {method}: {type(exc).__name__}") from None


def refusal(response: httpx.Response, *, had_token: bool) -> Exception:
    status, body = response.status_code, response.content
    if fetch_wire.token_refused(status, body, had_token):
        return FullResyncRequired(f"caldav.{status}: the sync token is no longer valid")
    if status == 401:
        return ReauthRequired("caldav.401: the server refuses the credentials")
    if status in (404, 410):
        return CalendarGone(f"caldav.{status}: no such collection")
    if status in (429, 503):
        wait = parse_retry_after(response.headers.get("Retry-After"))
        return Throttled(f"caldav.{status}", wait if wait is not None else 60.0)
    return FetchFailed(f"caldav.{status}")


def observe(
    builder: RoundBuilder, resource: str, data: str, calendar: CalendarRef, window: tuple[int, int]
) -> None:
    try:
        occurrences = fetch_wire.observe_ics(data, calendar, window)
    except ValueError:
        occurrences = []  # unreadable: no busy time from it (and counted by the caller's notes)
    if not occurrences:
        builder.add(resource, None)  # nothing in the horizon: no intervals
        return
    for observed in occurrences:
        builder.add(resource, observed)


async def multiget(
    http: httpx.AsyncClient,
    auth: httpx.Auth,
    url: str,
    hrefs: list[str],
    builder: RoundBuilder,
    window: tuple[int, int],
) -> set[str]:
    """One calendar-multiget of `hrefs` into `builder`; the resource ids whose data it read
    (a 404 member or one without data is a removed resource, and not among them)."""
    response = await send(http, auth, "REPORT", url, fetch_wire.multiget_body(hrefs), depth="1")
    if response.status_code != 207:
        raise refusal(response, had_token=False)
    try:
        answer = fetch_wire.parse_multistatus(response.content, url)
    except ValueError as exc:
        raise FetchFailed(f"caldav calendar-multiget: {exc}") from None
    read: set[str] = set()
    for member in answer.members:
        resource = fetch_wire.resource_id(member.href)
        if member.status == 404 or member.calendar_data is None:
            builder.add(resource, None)
        else:
            observe(builder, resource, member.calendar_data, builder.calendar, window)
            read.add(resource)
    return read
