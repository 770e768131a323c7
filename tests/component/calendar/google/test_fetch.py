"""The Google feed's fetch rounds against the Google fake's events.list over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from connectors.calendar.feed_errors import FullResyncRequired, ReauthRequired, Throttled
from connectors.calendar.google.fetch import fetch_round
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.kit import FakeServer
from streams.logic.calendar.rounds import CalendarRef, FetchRound

from tests.component.calendar.sinks import refresh_grant

CAL = CalendarRef("google", "int-1", "sup-1", "primary", "Europe/London")
JUNE = 1_812_412_800_000  # 2027-06-08T00:00:00Z
WINDOW = (JUNE - 30 * 86_400_000, JUNE + 400 * 86_400_000)


@pytest.fixture
def fake() -> Iterator[tuple[GoogleCalendarFake, str]]:
    provider = GoogleCalendarFake()
    with FakeServer(provider) as server:
        yield provider, server.url


@pytest.fixture
async def client(
    fake: tuple[GoogleCalendarFake, str],
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    _, base = fake
    async with httpx.AsyncClient(base_url=base) as http:
        token = (await http.post("/token", data=refresh_grant("r-1"))).json()["access_token"]
        yield http, token


async def vendor(
    client: tuple[httpx.AsyncClient, str],
    method: str,
    path: str = "",
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An edit the vendor makes in Google Calendar (the same account, another client)."""
    http, token = client
    answer = await http.request(
        method,
        "/calendar/v3/calendars/primary/events" + path,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else {}


async def create(
    client: tuple[httpx.AsyncClient, str], start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """The vendor creates an event in Google Calendar (`event` with these times)."""
    return await vendor(client, "POST", body=event(start, end, **extra))


def event(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "summary": "Private shoot",
        "start": {"dateTime": start},
        "end": {"dateTime": end},
        **extra,
    }


async def run(client: tuple[httpx.AsyncClient, str], base: str, cursor: str | None) -> FetchRound:
    http, token = client
    return await fetch_round(http, base, token, CAL, cursor, WINDOW, "push")


def spans(round_: FetchRound) -> dict[str, Any]:
    return {
        c.resource_id: None
        if c.instances is None
        else [(o.start_ms, o.end_ms, o.busy) for o in c.instances]
        for c in round_.changes
    }


async def test_a_full_sync_lists_the_calendar_and_returns_a_sync_token(
    fake: Any, client: Any
) -> None:
    made = await create(client, "2027-06-12T14:00:00+01:00", "2027-06-12T18:00:00+01:00")
    first = await run(client, fake[1], None)
    assert first.full and first.cursor
    assert spans(first) == {
        made["id"]: [
            (JUNE + 4 * 86_400_000 + 13 * 3_600_000, JUNE + 4 * 86_400_000 + 17 * 3_600_000, "busy")
        ]
    }


async def test_an_incremental_round_returns_only_what_changed(fake: Any, client: Any) -> None:
    await create(client, "2027-06-12T14:00:00Z", "2027-06-12T15:00:00Z")
    first = await run(client, fake[1], None)
    moved = await create(client, "2027-06-13T14:00:00Z", "2027-06-13T15:00:00Z")
    second = await run(client, fake[1], first.cursor)
    assert not second.full and list(spans(second)) == [moved["id"]]


async def test_an_unchanged_calendar_gives_an_empty_round(fake: Any, client: Any) -> None:
    await create(client, "2027-06-12T14:00:00Z", "2027-06-12T15:00:00Z")
    first = await run(client, fake[1], None)
    assert (await run(client, fake[1], first.cursor)).changes == ()


async def test_a_deleted_event_is_a_removed_resource(fake: Any, client: Any) -> None:
    made = await create(client, "2027-06-12T14:00:00Z", "2027-06-12T15:00:00Z")
    first = await run(client, fake[1], None)
    await vendor(client, "DELETE", f"/{made['id']}")
    assert spans(await run(client, fake[1], first.cursor)) == {made["id"]: None}


async def test_every_page_of_a_round_is_read(fake: Any, client: Any) -> None:
    for day in range(1, 8):
        await create(client, f"2027-07-0{day}T09:00:00Z", f"2027-07-0{day}T10:00:00Z")
    provider, base = fake
    import connectors.calendar.google.fetch_wire as wire

    original = wire.PAGE_SIZE
    wire.PAGE_SIZE = 3
    try:
        first = await run(client, base, None)
    finally:
        wire.PAGE_SIZE = original
    assert len(first.changes) == 7 and provider.counters["events_listed"] == 3


async def test_an_invalidated_sync_token_asks_for_a_full_resync(fake: Any, client: Any) -> None:
    first = await run(client, fake[1], None)
    fake[0].sync.invalidate_sync_tokens()
    with pytest.raises(FullResyncRequired):
        await run(client, fake[1], first.cursor)


async def test_a_series_comes_as_instances_with_exdate_and_exception(
    fake: Any, client: Any
) -> None:
    series = await create(
        client,
        "2027-06-14T09:00:00+00:00",
        "2027-06-14T10:00:00+00:00",
        recurrence=["RRULE:FREQ=DAILY;COUNT=4", "EXDATE:20270615T090000Z"],
    )
    exception_id = f"{series['id']}_20270616T090000Z"
    moved = {
        "start": {"dateTime": "2027-06-16T11:00:00Z"},
        "end": {"dateTime": "2027-06-16T12:00:00Z"},
    }
    await vendor(client, "PATCH", f"/{exception_id}", moved)
    got = spans(await run(client, fake[1], None))
    hours = sorted((s - JUNE) // 3_600_000 for v in got.values() if v for s, _, _ in v)
    assert hours == [6 * 24 + 9, 8 * 24 + 11, 9 * 24 + 9]  # the 14th, the moved 16th, the 17th


async def test_a_transparent_event_is_free_and_a_declined_one_too(fake: Any, client: Any) -> None:
    free = await create(
        client, "2027-06-12T09:00:00Z", "2027-06-12T10:00:00Z", transparency="transparent"
    )
    declined = await create(
        client,
        "2027-06-12T11:00:00Z",
        "2027-06-12T12:00:00Z",
        attendees=[{"email": "v@x", "self": True, "responseStatus": "declined"}],
    )
    got = spans(await run(client, fake[1], None))
    assert got[free["id"]][0][2] == "free" and got[declined["id"]][0][2] == "free"


async def test_an_all_day_event_starts_at_midnight_in_the_calendar_zone(
    fake: Any, client: Any
) -> None:
    made = await vendor(
        client,
        "POST",
        body={
            "summary": "Holiday",
            "start": {"date": "2027-06-12"},
            "end": {"date": "2027-06-13"},
            "transparency": "transparent",
        },
    )
    (only,) = (await run(client, fake[1], None)).changes
    assert only.resource_id == made["id"] and only.instances is not None
    day = only.instances[0]
    assert (day.all_day, day.start_ms, day.end_ms - day.start_ms) == (
        True,
        JUNE + 4 * 86_400_000 - 3_600_000,
        86_400_000,
    )


async def test_our_own_event_carries_its_external_id(fake: Any, client: Any) -> None:
    await create(
        client,
        "2027-06-12T09:00:00Z",
        "2027-06-12T10:00:00Z",
        extendedProperties={"private": {"wedsyncExternalId": "ext-9"}},
    )
    (only,) = (await run(client, fake[1], None)).changes
    assert only.instances is not None and only.instances[0].ours == "ext-9"


async def test_no_private_text_reaches_the_round(fake: Any, client: Any) -> None:
    await create(
        client,
        "2027-06-12T09:00:00Z",
        "2027-06-12T10:00:00Z",
        description="Dr. appointment",
        location="Clinic",
    )
    text = repr(await run(client, fake[1], None))
    assert "Private shoot" not in text and "Clinic" not in text and "Dr." not in text


async def test_an_expired_access_token_is_reauth_when_the_refresh_is_refused(
    fake: Any, client: Any
) -> None:
    provider, base = fake
    provider.switches.expire_tokens = True
    provider.switches.revoke_refresh = True
    http, token = client
    with pytest.raises(ReauthRequired):
        await fetch_round(http, base, token, CAL, None, WINDOW, "push")


async def test_throttling_carries_the_retry_after(fake: Any, client: Any) -> None:
    provider, base = fake
    provider.switches.throttle_next = 1
    provider.switches.retry_after_s = 7
    with pytest.raises(Throttled) as caught:
        await run(client, base, None)
    assert caught.value.retry_after_s == 7
