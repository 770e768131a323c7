"""The CalDAV feed's sync-collection rounds against a real Radicale over loopback, and its
refusals (a wrong password, a missing collection) on both paths, sync-collection and CTag/ETag."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from connectors.calendar.caldav.fetch import fetch_round
from connectors.calendar.feed.gate import RequestGate
from connectors.calendar.feed_errors import (
    CalendarGone,
    FullResyncRequired,
    ReauthRequired,
    Throttled,
)
from streams.logic.calendar.limits import CALDAV_ACCOUNT, Limit, Limiter
from streams.logic.calendar.rounds import CalendarRef, FetchRound

from tests.component.calendar.caldav import feed
from tests.component.calendar.caldav.feed import JUNE, USER, WINDOW, D, H, put


def vevent(uid: str, *lines: str) -> str:
    """One event `uid` with these lines (its times, status...) as the vendor's app writes it."""
    body = "\r\n".join(lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Private\r\n{body}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def put_event(app: httpx.AsyncClient, calendar: CalendarRef, uid: str, *lines: str) -> None:
    """The vendor's own calendar app writes event `uid` as `<uid>.ics`."""
    await put(app, calendar, f"{uid}.ics", vevent(uid, *lines))


async def run(
    http: httpx.AsyncClient, calendar: CalendarRef, cursor: str | None, mode: Any = "auto"
) -> FetchRound:
    """A round in `mode` (auto: sync-collection, as Radicale has it)."""
    return await feed.run(http, calendar, cursor, mode)


def by_name(round_: FetchRound) -> dict[str, Any]:
    return feed.by_name(round_, ends=True)


A_TIMES = ("DTSTART:20270612T130000Z", "DTEND:20270612T170000Z")
AFTERNOON = ("DTSTART:20270612T140000Z", "DTEND:20270612T150000Z")


async def test_an_initial_sync_reads_every_event_and_a_token(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put_event(vendor_app, calendar, "a", *A_TIMES)
    first = await run(http, calendar, None)
    assert first.full and first.cursor.startswith("http://radicale.org/ns/sync/")
    assert by_name(first) == {"a.ics": [(4 * D + 13 * H, 4 * D + 17 * H, "busy")]}


async def test_an_incremental_sync_reads_only_the_change(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put_event(vendor_app, calendar, "a", *A_TIMES)
    first = await run(http, calendar, None)
    await put_event(vendor_app, calendar, "b", "DTSTART:20270613T130000Z", "DTEND:20270613T140000Z")
    second = await run(http, calendar, first.cursor)
    assert not second.full and list(by_name(second)) == ["b.ics"]


async def test_a_deleted_event_is_a_removed_resource(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put_event(vendor_app, calendar, "a", *A_TIMES)
    first = await run(http, calendar, None)
    assert (await vendor_app.delete(calendar.calendar_id + "a.ics")).status_code in (200, 204)
    assert by_name(await run(http, calendar, first.cursor)) == {"a.ics": None}


async def test_an_unknown_sync_token_asks_for_a_full_resync(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await run(http, calendar, None)
    with pytest.raises(FullResyncRequired):
        await run(http, calendar, "http://radicale.org/ns/sync/" + "0" * 64)


async def test_a_series_expands_with_exdate_and_a_moved_occurrence(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    series = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor//EN\r\n"
        "BEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART;TZID=Europe/London:20270614T090000\r\nDTEND;TZID=Europe/London:20270614T100000\r\n"
        "RRULE:FREQ=DAILY;COUNT=4\r\nEXDATE;TZID=Europe/London:20270615T090000\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20270101T000000Z\r\nRECURRENCE-ID;TZID=Europe/London:20270616T090000\r\n"
        "DTSTART;TZID=Europe/London:20270616T110000\r\nDTEND;TZID=Europe/London:20270616T120000\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    await put(vendor_app, calendar, "s.ics", series)
    got = by_name(await run(http, calendar, None))["s.ics"]
    assert [s // H for s, _, _ in got] == [6 * 24 + 8, 8 * 24 + 10, 9 * 24 + 8]  # BST: UTC+1


async def test_an_all_day_free_event_is_placed_in_the_calendar_zone(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    day_off = ("DTSTART;VALUE=DATE:20270612", "DTEND;VALUE=DATE:20270613", "TRANSP:TRANSPARENT")
    await put_event(vendor_app, calendar, "h", *day_off)
    (only,) = (await run(http, calendar, None)).changes
    assert only.instances is not None
    day = only.instances[0]
    assert (day.all_day, day.busy, day.start_ms - JUNE) == (True, "free", 4 * D - H)


async def test_a_floating_time_is_in_the_calendar_zone(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put_event(vendor_app, calendar, "f", "DTSTART:20270612T140000", "DTEND:20270612T150000")
    assert by_name(await run(http, calendar, None))["f.ics"] == [
        (4 * D + 13 * H, 4 * D + 14 * H, "busy")
    ]


@pytest.mark.parametrize(
    ("status", "seen"),
    [("CANCELLED", None), ("TENTATIVE", [(4 * D + 14 * H, 4 * D + 15 * H, "tentative")])],
    ids=["cancelled-is-no-busy-time", "tentative-is-tentative"],
)
async def test_the_events_status_decides_its_busy_time(
    http: httpx.AsyncClient,
    vendor_app: httpx.AsyncClient,
    calendar: CalendarRef,
    status: str,
    seen: Any,
) -> None:
    await put_event(vendor_app, calendar, "e", *AFTERNOON, f"STATUS:{status}")
    assert by_name(await run(http, calendar, None)) == {"e.ics": seen}


async def test_our_own_event_is_marked_ours(
    http: httpx.AsyncClient, vendor_app: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put_event(vendor_app, calendar, "ext-7", *AFTERNOON, "X-WEDSYNC-VERSION:3")
    (only,) = (await run(http, calendar, None)).changes
    assert only.instances is not None and only.instances[0].ours == "ext-7"


# ---- failures, on both paths (sync-collection where the server has it; CTag/ETag) -----------
@pytest.mark.parametrize("mode", ["auto", "etag"])
async def test_a_wrong_password_is_reauth(
    http: httpx.AsyncClient, calendar: CalendarRef, mode: Any
) -> None:
    revoked = httpx.BasicAuth(USER, "revoked")
    with pytest.raises(ReauthRequired):
        await fetch_round(http, revoked, calendar, None, WINDOW, "poll", mode=mode)


@pytest.mark.parametrize("mode", ["auto", "etag"])
async def test_a_missing_collection_is_gone(
    http: httpx.AsyncClient, calendar: CalendarRef, mode: str
) -> None:
    gone = CalendarRef("caldav", "int-dav", "sup-1", calendar.calendar_id + "nope/", "UTC")
    with pytest.raises(CalendarGone):
        await run(http, gone, None, mode=mode)


async def test_a_round_through_the_feeds_gate_keeps_the_auth_and_spends_a_token_a_request(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    cursor = (await run(http, calendar, None)).cursor  # an empty calendar's token
    one_an_hour = RequestGate(Limiter({CALDAV_ACCOUNT: Limit(1 / 3600, 1)}), max_wait_s=0)
    api = one_an_hour.client(http, "caldav", "int-dav")
    assert (await run(api, calendar, cursor)).changes == ()  # one REPORT, authorised
    with pytest.raises(Throttled):  # the token is spent: the next round sends nothing
        await run(api, calendar, cursor)
