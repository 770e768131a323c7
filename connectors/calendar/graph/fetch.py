"""One fetch round of a Microsoft Graph calendar (I/O; the mapping is `fetch_wire`).

`fetch_round` is called by the feed for one calendar with a fresh access token: cursor None
is a full sync of `window` (the first delta call); otherwise the cursor is the deltaLink the
previous round ended with. Every ``@odata.nextLink`` is followed (cal.com read only the first
page); the new cursor is the round's final ``@odata.deltaLink``, never a mid-round nextLink, so
a round that fails part-way leaves the stored cursor as it was and the next round repeats it.
Within a round the last item of an id wins; a full round's `changes` holds every resource seen
(the owner diffs it against what it knows).

Failures are `feed_errors` (via `fetch_wire.classify_error`): FullResyncRequired (410, or
``syncStateNotFound``: the caller runs a full round), ReauthRequired, CalendarGone, Throttled,
FetchFailed (5xx, transport errors, an unreadable page, a link to another origin: the bearer
token is only ever sent to `base_url`).
"""

from __future__ import annotations

from typing import Any

import httpx
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Observed, Reason, ResourceChange

from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.graph import fetch_wire

MAX_PAGES = 10_000  # a round longer than this is a provider loop, not a calendar


async def _get(
    http: httpx.AsyncClient, url: str, token: str, page_size: int, params: dict[str, str]
) -> Any:
    headers = {"Authorization": f"Bearer {token}", **fetch_wire.prefer_headers(page_size)}
    try:
        answer = await http.get(url, params=params or None, headers=headers)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"Graph delta call failed: {type(exc).__name__}") from None
    if not answer.is_success:
        try:
            body = answer.json()
        except ValueError:
            body = None
        raise fetch_wire.classify_error(answer.status_code, body, answer.headers.get("Retry-After"))
    try:
        return answer.json()
    except ValueError:
        raise FetchFailed("Graph answered a delta page that is not JSON") from None


async def fetch_round(
    http: httpx.AsyncClient,
    base_url: str,
    token: str,
    calendar: CalendarRef,
    cursor: str | None,
    window: tuple[int, int],
    reason: Reason,
    *,
    page_size: int = fetch_wire.PAGE_SIZE,
) -> FetchRound:
    """Read `calendar`'s changes since `cursor` (everything in `window` when None)."""
    base = base_url.rstrip("/")
    full = cursor is None
    if cursor is None:
        first = fetch_wire.first_request(calendar, window, page_size)
        url, params = base + first.path, first.params
    else:
        url, params = cursor, {}
    changes: dict[str, tuple[Observed, ...] | None] = {}
    notes: list[str] = []
    for _ in range(MAX_PAGES):
        if not (url == base or url.startswith(base + "/")):
            raise FetchFailed("Graph linked a delta page outside the API base URL")
        try:
            page = fetch_wire.parse_page(await _get(http, url, token, page_size, params))
        except ValueError:
            raise FetchFailed("Graph answered something that is not a delta page") from None
        for item in page.items:
            try:
                seen = fetch_wire.observe(item, calendar, window, full=full)
            except ValueError:
                notes.append(f"unreadable times on item {str(item.get('id'))[:16]}…: skipped")
                continue
            if seen is not None:
                resource_id, observed = seen
                changes.pop(resource_id, None)  # last wins, in the order last seen
                changes[resource_id] = None if observed is None else (observed,)
        if page.delta_link is not None:
            return FetchRound(
                calendar=calendar,
                changes=tuple(ResourceChange(rid, inst) for rid, inst in changes.items()),
                cursor=page.delta_link,
                full=full,
                reason=reason,
                notes=tuple(notes),
            )
        if page.next_link is None:
            raise FetchFailed("Graph ended a delta round without a deltaLink")
        url, params = page.next_link, {}
    raise FetchFailed(f"Graph delta round longer than {MAX_PAGES} pages")
