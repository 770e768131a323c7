"""The CalDAV feed's sync-collection rounds against a real Radicale over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
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
from streams.dev.fakes.caldav import RadicaleServer
from streams.logic.calendar.limits import CALDAV_ACCOUNT, Limit, Limiter
from streams.logic.calendar.rounds import CalendarRef, FetchRound

USER, PASSWORD = "vendor", "app-pw-5511"
JUNE = 1_812_412_800_000  # 2027-06-08T00:00:00Z
H = 3_600_000
D = 24 * H
WINDOW = (JUNE - 30 * D, JUNE + 400 * D)


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    with RadicaleServer(users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def calendar(radicale: RadicaleServer, unique_id: str) -> CalendarRef:
    url = radicale.make_calendar(USER, f"own-{unique_id}")
    return CalendarRef("caldav", "int-dav", "sup-1", url, "Europe/London")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


AUTH = httpx.BasicAuth(USER, PASSWORD)


def ics(uid: str, *lines: str) -> str:
    body = "\r\n".join(lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Private\r\n{body}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def put(http: httpx.AsyncClient, calendar: CalendarRef, name: str, text: str) -> None:
    """The vendor's own calendar app writes an event."""
    answer = await http.put(
        calendar.calendar_id + name,
        content=text,
        auth=AUTH,
        headers={"Content-Type": "text/calendar"},
    )
    assert answer.status_code in (201, 204), answer.text


async def run(http: httpx.AsyncClient, calendar: CalendarRef, cursor: str | None) -> FetchRound:
    return await fetch_round(http, AUTH, calendar, cursor, WINDOW, "poll")


def by_name(round_: FetchRound) -> dict[str, Any]:
    return {
        c.resource_id.rsplit("/", 1)[-1]: None
        if c.instances is None
        else sorted((o.start_ms - JUNE, o.end_ms - JUNE, o.busy) for o in c.instances)
        for c in round_.changes
    }


async def test_an_initial_sync_reads_every_event_and_a_token(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(
        http, calendar, "a.ics", ics("a", "DTSTART:20270612T130000Z", "DTEND:20270612T170000Z")
    )
    first = await run(http, calendar, None)
    assert first.full and first.cursor.startswith("http://radicale.org/ns/sync/")
    assert by_name(first) == {"a.ics": [(4 * D + 13 * H, 4 * D + 17 * H, "busy")]}


async def test_an_incremental_sync_reads_only_the_change(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(
        http, calendar, "a.ics", ics("a", "DTSTART:20270612T130000Z", "DTEND:20270612T170000Z")
    )
    first = await run(http, calendar, None)
    await put(
        http, calendar, "b.ics", ics("b", "DTSTART:20270613T130000Z", "DTEND:20270613T140000Z")
    )
    second = await run(http, calendar, first.cursor)
    assert not second.full and list(by_name(second)) == ["b.ics"]


async def test_a_deleted_event_is_a_removed_resource(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(
        http, calendar, "a.ics", ics("a", "DTSTART:20270612T130000Z", "DTEND:20270612T170000Z")
    )
    first = await run(http, calendar, None)
    assert (await http.delete(calendar.calendar_id + "a.ics", auth=AUTH)).status_code in (200, 204)
    assert by_name(await run(http, calendar, first.cursor)) == {"a.ics": None}


async def test_an_unknown_sync_token_asks_for_a_full_resync(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await run(http, calendar, None)
    with pytest.raises(FullResyncRequired):
        await run(http, calendar, "http://radicale.org/ns/sync/" + "0" * 64)


async def test_a_series_expands_with_exdate_and_a_moved_occurrence(
    http: httpx.AsyncClient, calendar: CalendarRef
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
    await put(http, calendar, "s.ics", series)
    got = by_name(await run(http, calendar, None))["s.ics"]
    assert [s // H for s, _, _ in got] == [6 * 24 + 8, 8 * 24 + 10, 9 * 24 + 8]  # BST: UTC+1


async def test_an_all_day_free_event_is_placed_in_the_calendar_zone(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(
        http,
        calendar,
        "h.ics",
        ics("h", "DTSTART;VALUE=DATE:20270612", "DTEND;VALUE=DATE:20270613", "TRANSP:TRANSPARENT"),
    )
    (only,) = (await run(http, calendar, None)).changes
    assert only.instances is not None
    day = only.instances[0]
    assert (day.all_day, day.busy, day.start_ms - JUNE) == (True, "free", 4 * D - H)


async def test_a_floating_time_is_in_the_calendar_zone(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(http, calendar, "f.ics", ics("f", "DTSTART:20270612T140000", "DTEND:20270612T150000"))
    assert by_name(await run(http, calendar, None))["f.ics"] == [
        (4 * D + 13 * H, 4 * D + 14 * H, "busy")
    ]


async def test_a_cancelled_event_is_no_busy_time(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(
        http,
        calendar,
        "c.ics",
        ics("c", "DTSTART:20270612T140000Z", "DTEND:20270612T150000Z", "STATUS:CANCELLED"),
    )
    assert by_name(await run(http, calendar, None)) == {"c.ics": None}


async def test_a_tentative_event_is_tentative(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    await put(
        http,
        calendar,
        "t.ics",
        ics("t", "DTSTART:20270612T140000Z", "DTEND:20270612T150000Z", "STATUS:TENTATIVE"),
    )
    assert by_name(await run(http, calendar, None))["t.ics"][0][2] == "tentative"


async def test_our_own_event_is_marked_ours(http: httpx.AsyncClient, calendar: CalendarRef) -> None:
    await put(
        http,
        calendar,
        "ext-7.ics",
        ics("ext-7", "DTSTART:20270612T140000Z", "DTEND:20270612T150000Z", "X-WEDSYNC-VERSION:3"),
    )
    (only,) = (await run(http, calendar, None)).changes
    assert only.instances is not None and only.instances[0].ours == "ext-7"


async def test_a_wrong_password_is_reauth(http: httpx.AsyncClient, calendar: CalendarRef) -> None:
    with pytest.raises(ReauthRequired):
        await fetch_round(http, httpx.BasicAuth(USER, "revoked"), calendar, None, WINDOW, "poll")


async def test_a_missing_collection_is_gone(http: httpx.AsyncClient, calendar: CalendarRef) -> None:
    gone = CalendarRef("caldav", "int-dav", "sup-1", calendar.calendar_id + "nope/", "UTC")
    with pytest.raises(CalendarGone):
        await run(http, gone, None)


async def test_a_round_through_the_feeds_gate_keeps_the_auth_and_spends_a_token_a_request(
    http: httpx.AsyncClient, calendar: CalendarRef
) -> None:
    cursor = (await run(http, calendar, None)).cursor  # an empty calendar's token
    one_an_hour = RequestGate(Limiter({CALDAV_ACCOUNT: Limit(1 / 3600, 1)}), max_wait_s=0)
    api = one_an_hour.client(http, "caldav", "int-dav")
    assert (await run(api, calendar, cursor)).changes == ()  # one REPORT, authorised
    with pytest.raises(Throttled):  # the token is spent: the next round sends nothing
        await run(api, calendar, cursor)
