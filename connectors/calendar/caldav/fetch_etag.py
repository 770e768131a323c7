"""CalDAV's inbound feed by CTag/ETag: one round of one collection on a server without a
working sync-collection (CALENDAR_SYNC.md §5.3 step 4; the wire is `etag_wire`).

`etag_round` reads the collection's version (`PROPFIND Depth:0`, `CS:getctag` else
`D:sync-token`). With an etag cursor holding the same version the round is empty and costs
that one request. Otherwise it lists the members (`PROPFIND Depth:1`), diffs their etags
against the cursor's, reads new and changed members with calendar-multiget (75 hrefs a
request) and reports vanished ones as deleted resources. Without a usable etag cursor (None,
a sync token, malformed) the round is full: every member is read.

The returned cursor keeps the version read first (a change made while the round runs shows
as a new version next round) and the etag of every member except those the multiget did not
read; when there are such members it keeps no version, so the next round lists the members
again and reads them (a multiget that omits an href, or answers it 404 while the listing
still shows it). Failures raise `connectors.calendar.feed_errors` as
`fetch` documents: 401 -> ReauthRequired, 404 -> CalendarGone, 429/503 -> Throttled, else
FetchFailed.
"""

from __future__ import annotations

import httpx
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason

from connectors.calendar.caldav import etag_wire, fetch_io
from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.rounds import RoundBuilder


async def etag_round(
    http: httpx.AsyncClient,
    auth: httpx.Auth,
    calendar: CalendarRef,
    cursor: str | None,
    window: tuple[int, int],
    reason: Reason,
) -> FetchRound:
    url = calendar.calendar_id
    state = etag_wire.read_cursor(cursor)
    builder = RoundBuilder(calendar, full=state is None, reason=reason)
    head = await _listing(http, auth, url, depth="0")
    if state is not None and head.version is not None and head.version == state.version:
        return builder.build(etag_wire.cursor(state))
    listing = await _listing(http, auth, url, depth="1")
    changed, gone = etag_wire.changes(state.etags if state else {}, listing)
    for resource in gone:
        builder.add(resource, None)
    read: set[str] = set()
    for start in range(0, len(changed), fetch_io.MULTIGET_BATCH):
        hrefs = [listing.hrefs[r] for r in changed[start : start + fetch_io.MULTIGET_BATCH]]
        read |= await fetch_io.multiget(http, auth, url, hrefs, builder, window)
    unread = set(changed) - read
    etags = {r: tag for r, tag in listing.etags.items() if r not in unread}
    version = None if unread else head.version  # unread members: list again next round
    return builder.build(etag_wire.cursor(etag_wire.EtagState(version, etags)))


async def _listing(
    http: httpx.AsyncClient, auth: httpx.Auth, url: str, *, depth: str
) -> etag_wire.Listing:
    response = await fetch_io.send(
        http, auth, "PROPFIND", url, etag_wire.propfind_body(), depth=depth
    )
    if response.status_code != 207:
        raise fetch_io.refusal(response, had_token=False)
    try:
        return etag_wire.parse_listing(response.content, url)
    except ValueError as exc:
        raise FetchFailed(f"caldav PROPFIND: {exc}") from None
