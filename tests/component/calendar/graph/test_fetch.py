"""The Graph fetch round (calendarView delta) against GraphFake over loopback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from connectors.calendar.feed_errors import (
    FetchFailed,
    FullResyncRequired,
    ReauthRequired,
    Throttled,
)
from connectors.calendar.graph.fetch import fetch_round
from streams.dev.fakes.graph import GraphFake
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.graph.feed import CAL, OWNER, WINDOW, event, full, ids


def series_of(kind: str, count: int) -> dict[str, Any]:
    """A series from June 1st as Outlook stores it: `count` occurrences, daily or weekly."""
    span = {"type": "numbered", "numberOfOccurrences": count}
    return event(1, recurrence={"pattern": {"type": kind, "interval": 1}, "range": span})


# ---- delta rounds ---------------------------------------------------------------------------
async def test_full_sync_follows_every_page(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    made = {fake.vendor_upsert(OWNER, "primary", event(day)) for day in range(1, 8)}
    result = await full(http, base, token, page_size=3)
    assert set(ids(result)) == made and result.full
    assert fake.counters["delta_pages"] == 3
    assert "$deltatoken=" in result.cursor and "$skiptoken" not in result.cursor


async def test_full_sync_leaves_out_events_outside_the_window(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    inside = fake.vendor_upsert(OWNER, "primary", event(3))
    late = event(3)
    late["start"]["dateTime"] = "2029-06-03T10:00:00"
    late["end"]["dateTime"] = "2029-06-03T11:00:00"
    fake.vendor_upsert(OWNER, "primary", late)
    assert set(ids(await full(http, base, token))) == {inside}


async def test_full_sync_reads_the_busy_class(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    free = fake.vendor_upsert(OWNER, "primary", event(4, showAs="free"))
    oof = fake.vendor_upsert(OWNER, "primary", event(5, showAs="oof"))
    found = ids(await full(http, base, token))
    assert (found[free][0].busy, found[oof][0].busy) == ("free", "busy")
    assert found[oof][0].start_ms == int(datetime(2027, 6, 5, 10, tzinfo=UTC).timestamp() * 1000)


async def test_incremental_round_returns_only_the_changes(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    kept = fake.vendor_upsert(OWNER, "primary", event(1))
    moved = fake.vendor_upsert(OWNER, "primary", event(2))
    gone = fake.vendor_upsert(OWNER, "primary", event(3))
    first = await full(http, base, token)
    fake.vendor_upsert(OWNER, "primary", {**event(9, hour=15), "id": moved})
    fake.vendor_delete(OWNER, "primary", gone)
    second = await fetch_round(http, base, token, CAL, first.cursor, WINDOW, "push")
    found = ids(second)
    assert set(found) == {moved, gone} and kept not in found and not second.full
    assert found[gone] is None
    assert found[moved][0].start_ms == int(datetime(2027, 6, 9, 15, tzinfo=UTC).timestamp() * 1000)


async def test_incremental_round_with_nothing_new_is_empty(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    fake.vendor_upsert(OWNER, "primary", event(1))
    first = await full(http, base, token)
    second = await fetch_round(http, base, token, CAL, first.cursor, WINDOW, "poll")
    assert second.changes == () and second.cursor != first.cursor


async def test_other_calendar_reads_only_its_events(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    fake.vendor_upsert(OWNER, "primary", event(1))
    theirs = fake.vendor_upsert(OWNER, "AAMkwork", event(2))
    work = CalendarRef("graph", "int-9", "sup-1", "AAMkwork")
    result = await fetch_round(http, base, token, work, None, WINDOW, "full_resync")
    assert set(ids(result)) == {theirs}


@pytest.mark.parametrize(
    "knob", ["expire_delta_tokens", "forget_sync_state"], ids=["expired-410", "forgotten-400"]
)
async def test_an_expired_or_forgotten_delta_token_means_full_resync(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str, knob: str
) -> None:
    first = await full(http, base, token)
    getattr(fake, knob)()
    with pytest.raises(FullResyncRequired):
        await fetch_round(http, base, token, CAL, first.cursor, WINDOW, "poll")


async def test_expired_delta_token_answers_gone_with_a_fresh_location(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    first = await full(http, base, token)
    fake.expire_delta_tokens()
    answer = await http.get(first.cursor, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 410
    assert answer.headers["Location"].endswith("$deltatoken=")


async def test_recurring_series_shows_its_occurrences_with_the_moved_one(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    series = fake.vendor_upsert(OWNER, "primary", series_of("daily", 4))
    moved = fake.delta.vendor_move_occurrence(
        OWNER, series, 1,
        {"dateTime": "2027-06-02T16:00:00", "timeZone": "UTC"},
        {"dateTime": "2027-06-02T17:00:00", "timeZone": "UTC"},
    )  # fmt: skip
    found = ids(await full(http, base, token))
    assert series not in found and len(found) == 4
    assert found[moved][0].start_ms == int(datetime(2027, 6, 2, 16, tzinfo=UTC).timestamp() * 1000)


async def test_cancelled_occurrence_is_removed_incrementally(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    series = fake.vendor_upsert(OWNER, "primary", series_of("weekly", 3))
    first = await full(http, base, token)
    cancelled = fake.delta.vendor_cancel_occurrence(OWNER, series, 2)
    second = ids(await fetch_round(http, base, token, CAL, first.cursor, WINDOW, "push"))
    assert second[cancelled] is None
    assert sum(1 for v in second.values() if v is not None) == 2  # the series' others, again


async def test_cancelled_but_kept_occurrence_is_free(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    series = fake.vendor_upsert(OWNER, "primary", series_of("daily", 2))
    flagged = fake.delta.vendor_cancel_occurrence(OWNER, series, 0, keep=True)
    found = ids(await full(http, base, token))
    assert found[flagged][0].busy == "free"


async def test_throttled_round_carries_retry_after(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    fake.switches.throttle_next, fake.switches.retry_after_s = 1, 9
    with pytest.raises(Throttled) as raised:
        await full(http, base, token)
    assert raised.value.retry_after_s == 9


async def test_mailbox_concurrency_is_throttling(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    fake.mailbox_concurrency = 0
    with pytest.raises(Throttled):
        await full(http, base, token)


async def test_server_error_is_a_transient_failure(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    fake.switches.fail_next, fake.switches.fail_status = 1, 500
    with pytest.raises(FetchFailed):
        await full(http, base, token)


async def test_refused_token_means_reauth(http: httpx.AsyncClient, base: str) -> None:
    with pytest.raises(ReauthRequired):
        await full(http, base, "not-a-token")


async def test_link_to_another_origin_is_refused(
    http: httpx.AsyncClient, base: str, token: str
) -> None:
    with pytest.raises(FetchFailed):
        await fetch_round(http, base, token, CAL, "https://evil.example/d", WINDOW, "poll")


# ---- round integrity ------------------------------------------------------------------------
async def test_first_delta_call_without_a_window_is_refused(
    http: httpx.AsyncClient, base: str, token: str
) -> None:
    answer = await http.get(base + "/v1.0/me/calendarView/delta",
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 400


async def test_round_failing_mid_way_can_be_repeated_from_the_same_cursor(
    fake: GraphFake, base: str, token: str
) -> None:
    made = {fake.vendor_upsert(OWNER, "primary", event(day)) for day in range(1, 5)}

    async def fail_after_first_page(response: httpx.Response) -> None:
        if response.status_code == 200 and fake.counters["delta_pages"] == 1:
            fake.switches.fail_next = 1

    hooks: dict[str, list[Any]] = {"response": [fail_after_first_page]}
    async with httpx.AsyncClient(timeout=10, event_hooks=hooks) as failing:
        with pytest.raises(Throttled):  # 503 with Retry-After
            await full(failing, base, token, page_size=2)
    async with httpx.AsyncClient(timeout=10) as http:
        assert set(ids(await full(http, base, token, page_size=2))) == made


async def test_last_item_of_an_id_wins_within_a_round(base: str) -> None:
    pages = {
        "/v1.0/me/calendarView/delta": {
            "value": [{"id": "X", "showAs": "busy", "isAllDay": False,
                       "start": {"dateTime": "2027-06-01T10:00:00", "timeZone": "UTC"},
                       "end": {"dateTime": "2027-06-01T11:00:00", "timeZone": "UTC"}}],
            "@odata.nextLink": "http://graph.test/v1.0/next",
        },
        "/v1.0/next": {
            "value": [{"id": "X", "@removed": {"reason": "deleted"}}],
            "@odata.deltaLink": "http://graph.test/v1.0/delta?$deltatoken=t",
        },
    }  # fmt: skip
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=pages[r.url.path]))
    async with httpx.AsyncClient(transport=transport) as mock:
        result = await full(mock, "http://graph.test", "t")
    assert ids(result) == {"X": None}
    assert result.cursor == "http://graph.test/v1.0/delta?$deltatoken=t"


async def test_all_day_event_lands_on_the_days_of_its_original_zone(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    day = fake.vendor_upsert(OWNER, "primary", {
        "isAllDay": True, "showAs": "free", "originalStartTimeZone": "Pacific Standard Time",
        "start": {"dateTime": "2027-06-12T00:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2027-06-13T00:00:00", "timeZone": "Pacific Standard Time"},
    })  # fmt: skip
    (observed,) = ids(await full(http, base, token))[day]
    zone = ZoneInfo("America/Los_Angeles")
    assert observed.all_day and observed.busy == "free"
    assert observed.start_ms == int(datetime(2027, 6, 12, tzinfo=zone).timestamp() * 1000)
    assert observed.end_ms == int(datetime(2027, 6, 13, tzinfo=zone).timestamp() * 1000)


async def test_event_our_sink_wrote_shows_under_its_provider_id(
    fake: GraphFake, http: httpx.AsyncClient, base: str, token: str
) -> None:
    first = await full(http, base, token)
    made = await http.post(
        base + "/v1.0/me/events", headers={"Authorization": f"Bearer {token}"},
        json={"subject": "Wedding", "transactionId": "t-1",
              "start": {"dateTime": "2027-07-01T12:00:00", "timeZone": "UTC"},
              "end": {"dateTime": "2027-07-01T18:00:00", "timeZone": "UTC"}},
    )  # fmt: skip
    second = await fetch_round(http, base, token, CAL, first.cursor, WINDOW, "push")
    assert set(ids(second)) == {made.json()["id"]}
    assert second.changes[0].instances is not None
    assert second.changes[0].instances[0].ours is None  # delta cannot read our markers
