"""Google Calendar's inbound feed: one fetch round of one calendar (the I/O of fetch_wire).

`fetch_round` lists the calendar's changes since `cursor` (its last nextSyncToken), every
page of them, or the whole horizon window when `cursor` is None; it returns the round with
the new sync token, which the caller stores only once the round's records are written (a
crash repeats the round from the old token; a mid-round page token is never a cursor).
Failures raise `connectors.calendar.feed_errors` (410 -> FullResyncRequired: call again
with `cursor=None`).
"""

from __future__ import annotations

from typing import Any

import httpx
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason

from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.google import fetch_wire
from connectors.calendar.rounds import RoundBuilder

MAX_PAGES = 400  # 1 million items at 2,500 a page: a loop beyond it is a provider bug


async def fetch_round(
    http: httpx.AsyncClient,
    base_url: str,
    access_token: str,
    calendar: CalendarRef,
    cursor: str | None,
    window: tuple[int, int],
    reason: Reason,
) -> FetchRound:
    builder = RoundBuilder(calendar, full=cursor is None, reason=reason)
    url = base_url.rstrip("/") + fetch_wire.list_path(calendar)
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    page: str | None = None
    for _ in range(MAX_PAGES):
        params = fetch_wire.list_params(cursor, window, page)
        try:
            response = await http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"google events.list: {type(exc).__name__}") from None
        body = _json(response)
        if response.status_code != 200:
            raise fetch_wire.refusal(
                response.status_code, body, response.headers.get("Retry-After")
            )
        try:
            items, page, sync = fetch_wire.parse_page(body)
        except ValueError:
            raise FetchFailed("google events.list: the answer is not an events list") from None
        builder.add_all(fetch_wire.observe(item, calendar) for item in items)
        if page is None:
            if sync is None:
                raise FetchFailed("google events.list: the last page carries no nextSyncToken")
            return builder.build(sync)
    raise FetchFailed(f"google events.list: more than {MAX_PAGES} pages in one round")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
