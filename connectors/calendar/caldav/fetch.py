"""CalDAV's inbound feed: one round of one collection, by sync-collection (RFC 6578) or, where
the server lacks it, by CTag/ETag (`fetch_etag`).

`fetch_round` with `mode`:

    "sync"   REPORT sync-collection only: send the stored sync token (none on a first or full
             sync), follow a truncated answer (507) with the token it returned until the server
             has said everything, read the data of changed members the answer did not carry
             with calendar-multiget (75 hrefs a request), and return the round with the new
             token. A server without sync-collection is FetchFailed.
    "etag"   the CTag/ETag path only (`fetch_etag.etag_round`): for servers the caller knows
             to be fragile (python-caldav's table: DAViCal, SOGo, Synology, Bedework).
    "auto"   (the default) sync-collection, falling back to a full CTag/ETag round when the
             REPORT answers unsupported (405/501, or 403 naming DAV:supported-report:
             Posteo, GMX); an etag cursor (the server was found lacking before) stays on the
             CTag/ETag path until a full round (cursor None) probes again.

The cursor tells the paths apart by itself (`etag_wire.is_cursor`); a cursor of the other
kind (the server or the mode changed) means a full round, never an error. The caller stores
the returned cursor once the round's records are written.

Failures raise `connectors.calendar.feed_errors`: the token refused (DAV:valid-sync-token,
or iCloud's bare 403 to a token-bearing REPORT) -> FullResyncRequired; 401 -> ReauthRequired
(an iCloud app-specific password revoked); 404 -> CalendarGone; 429/503 -> Throttled; a
transport failure, an unreadable answer or another status -> FetchFailed.
"""

from __future__ import annotations

from typing import Literal

import httpx
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason

from connectors.calendar.caldav import etag_wire, fetch_io, fetch_wire
from connectors.calendar.caldav.fetch_etag import etag_round
from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.rounds import RoundBuilder

Mode = Literal["auto", "sync", "etag"]
MAX_CONTINUATIONS = 200
MULTIGET_BATCH = fetch_io.MULTIGET_BATCH


async def fetch_round(
    http: httpx.AsyncClient,
    auth: httpx.Auth,
    calendar: CalendarRef,
    cursor: str | None,
    window: tuple[int, int],
    reason: Reason,
    *,
    mode: Mode = "auto",
) -> FetchRound:
    if mode == "etag" or (mode == "auto" and etag_wire.is_cursor(cursor)):
        return await etag_round(http, auth, calendar, cursor, window, reason)
    token = None if etag_wire.is_cursor(cursor) else cursor
    url = calendar.calendar_id
    builder = RoundBuilder(calendar, full=token is None, reason=reason)
    for _ in range(MAX_CONTINUATIONS):
        response = await fetch_io.send(
            http, auth, "REPORT", url, fetch_wire.sync_body(token), depth="0"
        )
        if response.status_code != 207:
            if fetch_wire.report_unsupported(response.status_code, response.content):
                if mode == "auto":
                    return await etag_round(http, auth, calendar, None, window, reason)
                raise FetchFailed(f"caldav.{response.status_code}: no sync-collection here")
            raise fetch_io.refusal(response, had_token=token is not None)
        try:
            answer = fetch_wire.parse_multistatus(response.content, url)
        except ValueError as exc:
            raise FetchFailed(f"caldav sync-collection: {exc}") from None
        missing = []
        for member in answer.members:
            resource = fetch_wire.resource_id(member.href)
            if member.status == 404:
                builder.add(resource, None)
            elif member.calendar_data is not None:
                fetch_io.observe(builder, resource, member.calendar_data, calendar, window)
            else:
                missing.append(member.href)
        for start in range(0, len(missing), MULTIGET_BATCH):
            batch = missing[start : start + MULTIGET_BATCH]
            await fetch_io.multiget(http, auth, url, batch, builder, window)
        if answer.token is None:
            raise FetchFailed("caldav sync-collection: the answer carries no sync-token")
        token = answer.token
        if not answer.truncated:
            return builder.build(token)
    raise FetchFailed(f"caldav sync-collection: still truncated after {MAX_CONTINUATIONS} rounds")
