"""CalDAV's inbound feed: one sync-collection round of one collection (RFC 6578).

`fetch_round` sends the stored sync token (none on a first or full sync), follows a
truncated answer (507) with the token it returned until the server has said everything,
reads the data of changed members the answer did not carry with calendar-multiget (75 hrefs
a request), and returns the round with the new token, stored by the caller once the round's
records are written. Failures raise `connectors.calendar.feed_errors`: the token refused
(DAV:valid-sync-token) -> FullResyncRequired; 401 -> ReauthRequired (an iCloud
app-specific password revoked); 404 -> CalendarGone; 429/503 -> Throttled; else FetchFailed.
"""

from __future__ import annotations

import httpx
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason

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

MAX_CONTINUATIONS = 200
MULTIGET_BATCH = 75
XML = {"Content-Type": "application/xml; charset=utf-8"}


async def fetch_round(
    http: httpx.AsyncClient,
    auth: httpx.Auth,
    calendar: CalendarRef,
    cursor: str | None,
    window: tuple[int, int],
    reason: Reason,
) -> FetchRound:
    url = calendar.calendar_id
    builder = RoundBuilder(calendar, full=cursor is None, reason=reason)
    token = cursor
    for _ in range(MAX_CONTINUATIONS):
        response = await _report(http, auth, url, fetch_wire.sync_body(token), depth="0")
        body = response.content
        if response.status_code != 207:
            raise _refusal(response, had_token=token is not None)
        try:
            answer = fetch_wire.parse_multistatus(body, url)
        except ValueError as exc:
            raise FetchFailed(f"caldav sync-collection: {exc}") from None
        missing = []
        for member in answer.members:
            resource = fetch_wire.resource_id(member.href)
            if member.status == 404:
                builder.add(resource, None)
            elif member.calendar_data is not None:
                _observe(builder, resource, member.calendar_data, calendar, window)
            else:
                missing.append(member.href)
        for start in range(0, len(missing), MULTIGET_BATCH):
            await _multiget(
                http, auth, url, missing[start : start + MULTIGET_BATCH], builder, window
            )
        if answer.token is None:
            raise FetchFailed("caldav sync-collection: the answer carries no sync-token")
        token = answer.token
        if not answer.truncated:
            return builder.build(token)
    raise FetchFailed(f"caldav sync-collection: still truncated after {MAX_CONTINUATIONS} rounds")


def _observe(
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


async def _multiget(
    http: httpx.AsyncClient,
    auth: httpx.Auth,
    url: str,
    hrefs: list[str],
    builder: RoundBuilder,
    window: tuple[int, int],
) -> None:
    response = await _report(http, auth, url, fetch_wire.multiget_body(hrefs), depth="1")
    if response.status_code != 207:
        raise _refusal(response, had_token=False)
    try:
        answer = fetch_wire.parse_multistatus(response.content, url)
    except ValueError as exc:
        raise FetchFailed(f"caldav calendar-multiget: {exc}") from None
    for member in answer.members:
        resource = fetch_wire.resource_id(member.href)
        if member.status == 404 or member.calendar_data is None:
            builder.add(resource, None)
        else:
            _observe(builder, resource, member.calendar_data, builder.calendar, window)


async def _report(
    http: httpx.AsyncClient, auth: httpx.Auth, url: str, body: bytes, *, depth: str
) -> httpx.Response:
    try:
        return await http.request(
            "REPORT", url, content=body, headers={**XML, "Depth": depth}, auth=auth
        )
    except httpx.HTTPError as exc:
        raise FetchFailed(f"caldav REPORT: {type(exc).__name__}") from None


def _refusal(response: httpx.Response, *, had_token: bool) -> Exception:
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
