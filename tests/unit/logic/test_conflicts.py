"""Double-booking detection."""

from __future__ import annotations

import pytest
from streams.logic.conflicts import (
    VendorBookings,
    apply_booking,
    booking_keys,
    prune,
    to_epoch_ms,
)
from streams.models import DomainEvent, PayloadValue

from tests.unit.logic.factories import event


def booking(
    booking_id: str,
    start: str,
    end: str,
    *,
    supplier: str | None = "s-photo",
    zone: str | None = "Europe/London",
    client: str = "c-1",
    version: int = 1,
    at: str | None = None,
    **extra: PayloadValue,
) -> DomainEvent:
    ev = event(
        "booking.changed",
        {
            "booking_id": booking_id,
            "supplier_id": supplier,
            "wedding_id": f"w-{booking_id}",
            "client_id": client,
            "starts_at": start,
            "ends_at": end,
            "time_zone": zone,
            "cancelled": False,
            **extra,
        },
        aggregate_id=booking_id,
        event_id=f"ev-{booking_id}-{version}",
    )
    ev["aggregate_version"] = version
    if at is not None:
        ev["occurred_at_ms"] = ms(at)
    return ev


def ms(utc: str) -> int:
    """Epoch ms of an ISO time with an offset."""
    return to_epoch_ms(utc, None) or 0


def fold(*events: DomainEvent) -> tuple[VendorBookings, list[DomainEvent]]:
    """Each event folded into the bookings of the vendor it names."""
    state: VendorBookings = {}
    conflicts: list[DomainEvent] = []
    for ev in events:
        state, found = apply_booking(state, ev, supplier_id=str(ev["payload"]["supplier_id"]))
        conflicts.extend(found)
    return state, conflicts


def test_overlapping_bookings_for_one_vendor_are_a_double_booking() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00"),
    )
    assert len(conflicts) == 1
    assert conflicts[0]["event_type"] == "booking.conflict_detected"
    assert conflicts[0]["payload"]["conflicting_booking_id"] == "b1"


def test_conflict_is_addressed_to_vendor_and_both_couples() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", client="c-1"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00", client="c-2"),
    )
    assert conflicts[0]["aggregate_id"] == "s-photo"
    assert conflicts[0]["payload"]["client_ids"] == ["c-2", "c-1"]


def test_conflict_reports_the_overlap() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00"),
    )
    p = conflicts[0]["payload"]
    assert p["overlap_end_ms"] - p["overlap_start_ms"] == 2 * 3_600_000


def test_back_to_back_bookings_are_not_a_conflict() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T10:00", "2027-06-12T14:00"),
        booking("b2", "2027-06-12T14:00", "2027-06-12T18:00"),
    )
    assert conflicts == []


def test_overlapping_bookings_of_different_vendors_are_not_a_conflict() -> None:
    _state_a, a = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-a"))
    _, b = fold(booking("b2", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-b"))
    assert a == [] and b == []


def test_same_wall_clock_in_different_zones_is_not_a_conflict() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T10:00", "2027-06-12T14:00", zone="Europe/London"),
        booking("b2", "2027-06-12T10:00", "2027-06-12T14:00", zone="America/New_York"),
    )
    assert conflicts == []


def test_different_wall_clocks_that_meet_in_utc_are_a_conflict() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T15:00", "2027-06-12T19:00", zone="Europe/London"),
        booking("b2", "2027-06-12T12:00", "2027-06-12T16:00", zone="America/New_York"),
    )
    assert len(conflicts) == 1


def test_offsets_in_iso_strings_win_over_the_zone() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T10:00:00+00:00", "2027-06-12T12:00:00+00:00", zone=None),
        booking("b2", "2027-06-12T12:00:00+01:00", "2027-06-12T14:00:00+01:00", zone=None),
    )
    assert len(conflicts) == 1


def test_local_time_follows_daylight_saving() -> None:
    summer = to_epoch_ms("2027-06-12T12:00", "Europe/London")
    winter = to_epoch_ms("2027-01-12T12:00", "Europe/London")
    assert summer == to_epoch_ms("2027-06-12T11:00:00Z", None)
    assert winter == to_epoch_ms("2027-01-12T12:00:00Z", None)


def test_moving_a_booking_does_not_conflict_with_itself() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", version=1),
        booking("b1", "2027-06-12T13:00", "2027-06-12T21:00", version=2),
    )
    assert conflicts == []


def test_cancelled_booking_frees_the_slot() -> None:
    state, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", version=1),
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", version=2, cancelled=True),
        booking("b2", "2027-06-12T12:00", "2027-06-12T20:00"),
    )
    assert conflicts == [] and set(state) == {"b2"}


def test_stale_update_is_ignored() -> None:
    state, _ = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", version=5),
        booking("b1", "2027-06-13T12:00", "2027-06-13T20:00", version=3),
    )
    assert state["b1"]["version"] == 5


def test_booking_without_valid_interval_is_ignored() -> None:
    state, conflicts = fold(booking("b1", "2027-06-12T20:00", "2027-06-12T12:00"))
    assert state == {} and conflicts == []


def test_conflict_event_ids_are_deterministic() -> None:
    events = (
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00"),
    )
    assert fold(*events)[1][0]["event_id"] == fold(*events)[1][0]["event_id"]


def test_prune_drops_bookings_that_ended() -> None:
    state, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"))
    assert prune(state, ms("2027-06-13T00:00:00Z")) == {}


def test_writing_a_vendor_drops_its_bookings_that_ended_before_the_event() -> None:
    state, _ = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"),
        booking("b2", "2027-07-03T12:00", "2027-07-03T20:00", at="2027-06-20T09:00:00Z"),
    )
    assert set(state) == {"b2"}


def test_booking_that_ended_before_the_event_is_not_stored() -> None:
    state, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", at="2027-06-13T00:00Z"))
    assert state == {}


@pytest.mark.parametrize("status", ["cancelled", "canceled", "deleted"])
def test_booking_with_a_cancellation_status_is_not_stored(status: str) -> None:
    state, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", status=status))
    assert state == {}


def test_pruning_can_use_an_injected_clock() -> None:
    state, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"))
    later = booking("b2", "2027-07-03T12:00", "2027-07-03T20:00")
    updated, _ = apply_booking(state, later, supplier_id="s-photo", now_ms=ms("2027-06-20T09:00Z"))
    assert set(updated) == {"b2"}


def moved(booking_id: str, *, to: str | None, from_: str, version: int = 2) -> DomainEvent:
    """booking.changed: `booking_id` now belongs to `to` (None: no vendor), before `from_`."""
    return booking(
        booking_id,
        "2027-06-12T12:00",
        "2027-06-12T20:00",
        supplier=to,
        version=version,
        previous_supplier_id=from_,
    )


def test_a_moved_booking_is_forwarded_to_its_new_and_its_old_vendor() -> None:
    assert booking_keys(moved("b1", to="s-b", from_="s-a")) == ["s-b", "s-a"]


def test_a_booking_whose_vendor_did_not_change_is_forwarded_once() -> None:
    assert booking_keys(moved("b1", to="s-a", from_="s-a")) == ["s-a"]


def test_a_booking_without_a_vendor_is_forwarded_to_nobody() -> None:
    assert booking_keys(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="")) == []


def test_a_booking_moved_to_another_vendor_leaves_the_old_one() -> None:
    old, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-a"))
    updated, _ = apply_booking(old, moved("b1", to="s-b", from_="s-a"), supplier_id="s-a")
    assert updated == {}


def test_a_booking_moved_to_another_vendor_is_booked_with_the_new_one() -> None:
    updated, _ = apply_booking({}, moved("b1", to="s-b", from_="s-a"), supplier_id="s-b")
    assert set(updated) == {"b1"}


def test_a_booking_taken_off_its_vendor_leaves_it() -> None:
    old, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-a"))
    updated, _ = apply_booking(old, moved("b1", to=None, from_="s-a"), supplier_id="s-a")
    assert updated == {}


def test_a_stale_move_leaves_the_booking_with_its_vendor() -> None:
    old, _ = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-a", version=5))
    updated, _ = apply_booking(
        old, moved("b1", to="s-b", from_="s-a", version=3), supplier_id="s-a"
    )
    assert set(updated) == {"b1"}


@pytest.mark.parametrize(
    "new_end",
    ["2027-06-12T23:00", "2027-06-13T01:00"],
    ids=["resent_as_it_was", "moved_but_the_overlap_unchanged"],
)
def test_a_booking_change_that_keeps_the_overlap_raises_no_new_conflict(new_end: str) -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00", version=1),
        booking("b2", "2027-06-12T18:00", new_end, version=2),
    )
    assert len(conflicts) == 1


def test_a_conflict_has_one_id_whichever_booking_came_second() -> None:
    first = booking("b1", "2027-06-12T12:00", "2027-06-12T20:00")
    second = booking("b2", "2027-06-12T18:00", "2027-06-12T23:00")
    assert fold(first, second)[1][0]["event_id"] == fold(second, first)[1][0]["event_id"]


def test_the_same_overlap_at_another_vendor_is_another_conflict() -> None:
    at_a = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-a"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00", supplier="s-a"),
    )[1]
    at_b = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00", supplier="s-b"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00", supplier="s-b"),
    )[1]
    assert at_a[0]["event_id"] != at_b[0]["event_id"]


def test_a_changed_overlap_is_reported_again_with_a_new_id() -> None:
    _, conflicts = fold(
        booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"),
        booking("b2", "2027-06-12T18:00", "2027-06-12T23:00", version=1),
        booking("b2", "2027-06-12T17:00", "2027-06-12T23:00", version=2),
    )
    assert [c["payload"]["overlap_start_ms"] for c in conflicts] == [
        ms("2027-06-12T17:00Z"),
        ms("2027-06-12T16:00Z"),
    ]
    assert conflicts[0]["event_id"] != conflicts[1]["event_id"]


def test_a_redelivered_event_reports_its_conflict_again_with_the_same_id() -> None:
    """At-least-once: the table may hold the booking when its record is read again after a
    crash, before the conflict was sent; the router drops the copy by event id."""
    second = booking("b2", "2027-06-12T18:00", "2027-06-12T23:00")
    state, (sent,) = fold(booking("b1", "2027-06-12T12:00", "2027-06-12T20:00"), second)
    _, again = apply_booking(state, second, supplier_id="s-photo")
    assert [c["event_id"] for c in again] == [sent["event_id"]]
