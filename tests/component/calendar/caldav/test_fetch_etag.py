"""The CalDAV feed's CTag/ETag path against a real Radicale over loopback: the initial round,
the one-request unchanged round, new, changed and deleted events, the two cursor kinds, and
multiget batches (its refusals are in test_fetch.py, on both paths)."""

from __future__ import annotations

import httpx
import pytest
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.caldav.feed import (
    D,
    H,
    by_name,
    ics,
    kinds,
    put,
    run,
)


async def test_an_initial_etag_round_lists_every_event(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a", 12))
    await put(vendor_app, calendar, "b c.ics", ics("b", 13))
    first = await run(http, calendar, None)
    assert first.full and first.cursor.startswith("etag:")
    assert by_name(first) == {
        "a.ics": [(4 * D + 13 * H, "busy")],
        "b c.ics": [(5 * D + 13 * H, "busy")],
    }


@pytest.mark.parametrize("mode", ["etag", "auto"], ids=["etag", "auto-keeps-the-etag-path"])
async def test_an_unchanged_calendar_costs_one_request(
    http: httpx.AsyncClient,
    vendor_app: httpx.AsyncClient,
    calendar: CalendarRef,
    sent: list[httpx.Request],
    mode: str,
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    first = await run(http, calendar, None)
    sent.clear()
    second = await run(http, calendar, first.cursor, mode=mode)
    assert kinds(sent) == ["PROPFIND/0"]
    assert (second.full, second.changes, second.cursor) == (False, (), first.cursor)


async def test_a_new_event_is_the_only_change(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    first = await run(http, calendar, None)
    await put(vendor_app, calendar, "b.ics", ics("b", 14))
    second = await run(http, calendar, first.cursor)
    assert not second.full and by_name(second) == {"b.ics": [(6 * D + 13 * H, "busy")]}


async def test_a_changed_event_is_the_only_change(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    await put(vendor_app, calendar, "b.ics", ics("b", 14))
    first = await run(http, calendar, None)
    await put(vendor_app, calendar, "a.ics", ics("a", 12, 9))
    assert by_name(await run(http, calendar, first.cursor)) == {"a.ics": [(4 * D + 9 * H, "busy")]}


async def test_a_deleted_event_is_a_removed_resource(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    await put(vendor_app, calendar, "b.ics", ics("b", 14))
    first = await run(http, calendar, None)
    assert (await vendor_app.delete(calendar.calendar_id + "a.ics")).status_code in (200, 204)
    second = await run(http, calendar, first.cursor)
    assert by_name(second) == {"a.ics": None}
    assert by_name(await run(http, calendar, second.cursor)) == {}


SYNC_TOKEN, ETAG_CURSOR = "http://radicale.org/ns/sync/", "etag:"


@pytest.mark.parametrize(
    ("first_mode", "made", "then_mode", "kept"),
    [("sync", SYNC_TOKEN, "etag", ETAG_CURSOR), ("etag", ETAG_CURSOR, "sync", SYNC_TOKEN)],
    ids=["a-sync-token-given-to-the-etag-path", "an-etag-cursor-given-to-the-sync-path"],
)
async def test_the_other_paths_cursor_is_a_full_round(
    http: httpx.AsyncClient,
    vendor_app: httpx.AsyncClient,
    calendar: CalendarRef,
    first_mode: str,
    made: str,
    then_mode: str,
    kept: str,
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    first = await run(http, calendar, None, mode=first_mode)
    assert first.cursor.startswith(made)
    again = await run(http, calendar, first.cursor, mode=then_mode)
    assert again.full and list(by_name(again)) == ["a.ics"] and again.cursor.startswith(kept)


async def test_a_malformed_etag_cursor_is_a_full_round(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    again = await run(http, calendar, "etag:{not json")
    assert again.full and list(by_name(again)) == ["a.ics"]


async def test_auto_mode_uses_sync_collection_where_the_server_has_it(
    http: httpx.AsyncClient,
    vendor_app: httpx.AsyncClient,
    calendar: CalendarRef,
    sent: list[httpx.Request],
) -> None:
    await put(vendor_app, calendar, "a.ics", ics("a"))
    first = await run(http, calendar, None, mode="auto")
    assert first.cursor.startswith("http://radicale.org/ns/sync/")
    assert kinds(sent) == ["REPORT/0/sync-collection"]


async def test_changed_events_are_read_75_to_a_multiget(
    http: httpx.AsyncClient,
    vendor_app: httpx.AsyncClient,
    calendar: CalendarRef,
    sent: list[httpx.Request],
) -> None:
    for n in range(80):
        await put(vendor_app, calendar, f"e{n}.ics", ics(f"e{n}", 1 + n % 28, 8 + n % 10))
    first = await run(http, calendar, None)
    assert len(first.changes) == 80
    assert kinds(sent) == ["PROPFIND/0", "PROPFIND/1", "REPORT/1/multiget", "REPORT/1/multiget"]
    assert [r.content.count(b"<d:href>") for r in sent[2:]] == [75, 5]
