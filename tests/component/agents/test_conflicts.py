"""The conflicts agent in Faust's test context: booking.changed events (as the route engine
forwards them to the bookings-by-supplier topic, Avro-encoded and keyed by supplier) in,
`booking.conflict_detected` on wedsync.events out, per-vendor bookings in the `bookings` table.

Double-booking and no-false-positive tests at the agent level; the interval arithmetic is
covered in `tests/unit/logic/test_conflicts.py`. See `harness` for the fake producer and
how `settle` knows every record has been processed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from streams import topics
from streams.agents import Agents
from streams.kafka import deadletter
from streams.kafka.codec import TopicCodecs
from streams.models import DomainEvent

from tests.component.agents.harness import Driver, Wire, booking_changed, driving, events_sent

DAY = "2027-06-12"
AFTER_DAY_MS = 1_813_050_000_000  # 2027-06-15T09:00Z: the DAY's bookings have ended


@pytest.fixture
async def conflicts(agents: Agents, wire: Wire) -> AsyncIterator[Driver]:
    async with driving(agents.conflicts["agent"], wire) as driver:
        yield driver


async def put_booking(driver: Driver, codecs: TopicCodecs, event: DomainEvent) -> None:
    key = str(event["payload"]["supplier_id"]).encode()
    await driver.put(codecs[topics.EVENTS].encode(event), key)


async def book(driver: Driver, codecs: TopicCodecs, *events: DomainEvent) -> None:
    for event in events:
        await put_booking(driver, codecs, event)
    await driver.settle()


def overlapping_pair() -> list[DomainEvent]:
    """b1 10:00-14:00, then b2 13:00-17:00, at s-photo: one hour double-booked."""
    return [
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"),
        booking_changed("b2", f"{DAY}T13:00", f"{DAY}T17:00"),
    ]


def detected(wire: Wire, codecs: TopicCodecs) -> list[tuple[bytes | None, DomainEvent]]:
    return [
        (key, e)
        for key, e in events_sent(wire, codecs)
        if e["event_type"] == "booking.conflict_detected"
    ]


async def test_overlapping_bookings_of_one_vendor_emit_one_conflict(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(conflicts, codecs, *overlapping_pair())
    ((key, event),) = detected(wire, codecs)
    assert key == b"s-photo"
    assert event["payload"]["booking_id"] == "b2"
    assert event["payload"]["conflicting_booking_id"] == "b1"


async def test_conflict_is_addressed_to_the_vendor_and_both_couples(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", client="c-alex"),
        booking_changed("b2", f"{DAY}T13:00", f"{DAY}T17:00", client="c-sam"),
    )  # fmt: skip
    ((_, event),) = detected(wire, codecs)
    assert (event["aggregate_type"], event["aggregate_id"]) == ("vendor", "s-photo")
    assert event["payload"]["supplier_id"] == "s-photo"
    assert event["payload"]["client_ids"] == ["c-sam", "c-alex"]
    assert (event["payload"]["wedding_id"], event["payload"]["conflicting_wedding_id"]) == (
        "w-b2",
        "w-b1",
    )


async def test_back_to_back_bookings_emit_nothing(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"),
        booking_changed("b2", f"{DAY}T14:00", f"{DAY}T18:00"),
    )  # fmt: skip
    assert detected(wire, codecs) == []


async def test_overlapping_bookings_of_different_vendors_emit_nothing(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", supplier="s-photo"),
        booking_changed("b2", f"{DAY}T10:00", f"{DAY}T14:00", supplier="s-florist"),
    )  # fmt: skip
    assert detected(wire, codecs) == []


async def test_same_wall_clock_in_zones_that_do_not_overlap_emits_nothing(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", zone="Europe/London"),
        booking_changed("b2", f"{DAY}T10:00", f"{DAY}T14:00", zone="America/New_York"),
    )  # fmt: skip
    assert detected(wire, codecs) == []


async def test_different_wall_clocks_that_meet_in_utc_are_a_conflict(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T15:00", f"{DAY}T19:00", zone="Europe/London"),
        booking_changed("b2", f"{DAY}T10:00", f"{DAY}T14:00", zone="America/New_York"),
    )  # fmt: skip
    assert len(detected(wire, codecs)) == 1


async def test_booking_moved_out_of_the_overlap_no_longer_conflicts(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        *overlapping_pair(),
        booking_changed("b2", f"{DAY}T15:00", f"{DAY}T19:00", version=2),
        booking_changed("b1", f"{DAY}T09:00", f"{DAY}T14:00", version=2),
    )  # fmt: skip
    assert [e["payload"]["booking_id"] for _, e in detected(wire, codecs)] == ["b2"]


async def test_cancelled_booking_frees_its_slot(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs, agents: Agents
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"),
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", version=2, cancelled=True),
        booking_changed("b2", f"{DAY}T10:00", f"{DAY}T14:00"),
    )  # fmt: skip
    assert detected(wire, codecs) == []
    assert set(agents.conflicts["bookings"]["s-photo"]) == {"b2"}


async def test_bookings_table_holds_each_vendors_intervals(
    conflicts: Driver, codecs: TopicCodecs, agents: Agents
) -> None:
    await book(
        conflicts, codecs,
        booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", supplier="s-photo"),
        booking_changed("b2", f"{DAY}T10:00", f"{DAY}T14:00", supplier="s-florist"),
    )  # fmt: skip
    bookings = agents.conflicts["bookings"]
    assert set(bookings["s-photo"]) == {"b1"}
    assert set(bookings["s-florist"]) == {"b2"}
    assert bookings["s-photo"]["b1"]["end_ms"] - bookings["s-photo"]["b1"]["start_ms"] == (
        4 * 3600 * 1000
    )


async def test_bad_record_is_dead_lettered_and_the_next_booking_processed(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await conflicts.put(b"garbage", b"s-photo")
    await book(conflicts, codecs, *overlapping_pair())
    ((dead,),) = [wire.to(topics.EVENTS_DLQ.name)]
    assert (dead.key, dead.value) == (b"s-photo", b"garbage")
    assert dead.headers[deadletter.H_STAGE] == "conflicts"
    assert dead.headers[deadletter.H_ERROR_CLASS] == "DecodeError"
    assert len(detected(wire, codecs)) == 1


async def test_bookings_without_a_vendor_are_not_conflicts_of_one_vendor(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs, agents: Agents
) -> None:
    """The route engine forwards a booking.changed whose payload names no supplier (a CRM
    webhook without vendor_id) keyed 'None'; two such bookings are not one vendor's."""
    for booking_id in ("b1", "b2"):
        event = booking_changed(booking_id, f"{DAY}T10:00", f"{DAY}T14:00", supplier=None)
        await conflicts.put(codecs[topics.EVENTS].encode(event), b"None")
    await conflicts.settle()
    assert wire.to(topics.EVENTS.name) == []
    assert "None" not in agents.conflicts["bookings"]


async def test_a_vendors_bookings_that_ended_are_dropped_when_it_is_written(
    conflicts: Driver, codecs: TopicCodecs, agents: Agents
) -> None:
    later = booking_changed("b2", "2027-07-03T10:00", "2027-07-03T14:00")
    later["occurred_at_ms"] = AFTER_DAY_MS
    await book(conflicts, codecs, booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"), later)
    assert set(agents.conflicts["bookings"]["s-photo"]) == {"b2"}


async def test_a_vendor_whose_bookings_all_ended_has_no_table_entry(
    conflicts: Driver, codecs: TopicCodecs, agents: Agents
) -> None:
    resent_later = booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", version=2)
    resent_later["occurred_at_ms"] = AFTER_DAY_MS
    await book(conflicts, codecs, booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"))
    await book(conflicts, codecs, resent_later)
    assert "s-photo" not in agents.conflicts["bookings"]


async def test_a_booking_moved_to_another_vendor_leaves_the_old_one(
    conflicts: Driver, codecs: TopicCodecs, agents: Agents
) -> None:
    await book(conflicts, codecs, booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"))
    move = booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00", supplier="s-dj", version=2)
    move["payload"]["previous_supplier_id"] = "s-photo"
    encoded = codecs[topics.EVENTS].encode(move)
    for key in (b"s-dj", b"s-photo"):  # the route engine forwards it to both vendors
        await conflicts.put(encoded, key)
    await conflicts.settle()
    bookings = agents.conflicts["bookings"]
    assert "s-photo" not in bookings
    assert set(bookings["s-dj"]) == {"b1"}


async def test_a_resent_overlapping_booking_alerts_once(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(
        conflicts, codecs,
        *overlapping_pair(),
        booking_changed("b2", f"{DAY}T13:00", f"{DAY}T17:00", version=2),
    )  # fmt: skip
    assert len(detected(wire, codecs)) == 1


async def test_a_moved_booking_is_noticed_with_its_old_and_new_times(
    conflicts: Driver, wire: Wire, codecs: TopicCodecs
) -> None:
    await book(conflicts, codecs, booking_changed("b1", f"{DAY}T10:00", f"{DAY}T14:00"),
               booking_changed("b1", f"{DAY}T11:00", f"{DAY}T15:00", version=2))  # fmt: skip
    notices = [e for _, e in events_sent(wire, codecs) if e["event_type"] == "booking.updated"]
    assert [(n["payload"]["previous_starts_at"], n["payload"]["starts_at"]) for n in notices] == [
        (None, f"{DAY}T10:00"),
        (f"{DAY}T10:00", f"{DAY}T11:00"),
    ]
