"""The conflicts agent reading the calendar feed's busy intervals beside platform bookings:
a vendor's private event over a booking is a conflict for vendor and couple; deleting it
resolves it; an interval keyed for another vendor is ignored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from streams import topics
from streams.agents import Agents
from streams.kafka.codec import TopicCodecs
from streams.logic.calendar import busy
from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.rounds import CalendarRef, Observed

from tests.component.agents.harness import Driver, Wire, booking_changed, driving, events_sent

DAY = "2027-06-12"
START = 1_812_798_000_000  # 2027-06-12T11:00:00Z = 12:00 in London
CAL = CalendarRef("google", "int-g", "s-photo", "primary", "Europe/London")


@pytest.fixture
async def conflicts(agents: Agents, wire: Wire) -> AsyncIterator[Driver]:
    async with driving(agents.conflicts["agent"], wire) as driver:
        yield driver


def interval(start_ms: int, end_ms: int, *, version: int = 1) -> BusyRecord:
    observed = Observed(start_ms=start_ms, end_ms=end_ms, busy="busy")
    return busy.active(
        CAL, "evt-1", observed, version=version, reason="push", now_ms=START - 86_400_000
    )


async def put_busy(
    driver: Driver, codecs: TopicCodecs, record: BusyRecord, key: str = "s-photo"
) -> None:
    await driver.put_on(
        topics.CALENDAR_BUSY.name, codecs[topics.CALENDAR_BUSY].encode(record), key.encode()
    )


async def put_booking(driver: Driver, codecs: TopicCodecs) -> None:
    event = booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", client="c-1")
    await driver.put(codecs[topics.EVENTS].encode(event), b"s-photo")


def types(wire: Wire, codecs: TopicCodecs) -> list[str]:
    return [
        e["event_type"]
        for _, e in events_sent(wire, codecs)
        if e["event_type"].startswith("booking.conflict")
    ]


async def test_a_private_event_over_a_booking_is_a_conflict(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_booking(conflicts, codecs)
    await put_busy(conflicts, codecs, interval(START, START + 3_600_000))
    await conflicts.settle()
    assert types(wire, codecs) == ["booking.conflict_detected"]
    (event,) = [
        e for _, e in events_sent(wire, codecs) if e["event_type"] == "booking.conflict_detected"
    ]
    assert (event["payload"]["booking_id"], event["payload"]["client_ids"]) == ("b1", ["c-1"])


async def test_deleting_the_private_event_resolves_the_conflict(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_booking(conflicts, codecs)
    await put_busy(conflicts, codecs, interval(START, START + 3_600_000))
    gone = busy.tombstone(
        CAL,
        "evt-1",
        interval(START, START + 1)["interval_id"],
        version=2,
        reason="push",
        now_ms=START - 86_400_000,
    )
    await put_busy(conflicts, codecs, gone)
    await conflicts.settle()
    assert types(wire, codecs) == ["booking.conflict_detected", "booking.conflict_resolved"]


async def test_an_interval_keyed_for_another_vendor_is_ignored(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await put_booking(conflicts, codecs)
    await put_busy(conflicts, codecs, interval(START, START + 3_600_000), key="s-other")
    await conflicts.settle()
    assert types(wire, codecs) == []
