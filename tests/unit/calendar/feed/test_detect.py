"""The detector folds busy intervals of a vendor's own calendar beside platform bookings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.detect import apply_busy
from streams.logic.calendar.differ import Known, diff
from streams.logic.calendar.echo import OwnedIndex
from streams.logic.conflicts import VendorBookings, apply_booking
from streams.models import DomainEvent

from tests.unit.calendar.feed.helpers import CAL, HORIZON, T0, H, busy, platform, round_of

SUP = CAL.supplier_id


def records(*changes, known: Known | None = None) -> tuple[Known, list[BusyRecord]]:  # type: ignore[no-untyped-def]
    out = diff(
        known or Known(), round_of(*changes), OwnedIndex(), version=1, now_ms=T0, horizon=HORIZON
    )
    return out.known, out.records


def fold(state: VendorBookings, items: Sequence[Any]) -> tuple[VendorBookings, list[DomainEvent]]:
    found: list[DomainEvent] = []
    for item in items:
        if "interval_id" in item:
            state, more = apply_busy(state, item, supplier_id=SUP, now_ms=T0)
        else:
            state, more = apply_booking(state, item, supplier_id=SUP, now_ms=T0)
        found += more
    return state, found


def types(events: list[DomainEvent]) -> list[str]:
    return [e["event_type"] for e in events]


def test_a_busy_event_over_a_booking_is_a_conflict_for_vendor_and_couple() -> None:
    _, recs = records(("e1", (busy(11, 13),)))
    _, found = fold({}, [platform("b1", 10, 14), *recs])
    assert types(found) == ["booking.conflict_detected"]
    p = found[0]["payload"]
    assert (p["booking_id"], p["client_ids"], p["conflicting_origin"]) == (
        "b1",
        ["c-1"],
        "external",
    )


def test_a_booking_made_over_a_busy_event_is_a_conflict() -> None:
    _, recs = records(("e1", (busy(11, 13),)))
    _, found = fold({}, [*recs, platform("b1", 10, 14)])
    assert types(found) == ["booking.conflict_detected"]
    assert found[0]["payload"]["booking_id"] == "b1"


def test_the_conflict_names_no_detail_of_the_private_event() -> None:
    _, recs = records(("e1", (busy(11, 13),)))
    _, found = fold({}, [platform("b1", 10, 14), *recs])
    p = found[0]["payload"]
    assert (
        p["conflicting_client_name"],
        p["conflicting_wedding_id"],
        p["conflicting_client_id"],
    ) == (None, None, None)


def test_two_private_events_overlapping_are_not_a_conflict() -> None:
    _, recs = records(("e1", (busy(11, 13),)), ("e2", (busy(12, 14),)))
    assert fold({}, recs)[1] == []


def test_a_tentative_overlap_is_a_possible_conflict() -> None:
    _, recs = records(("e1", (busy(11, 13, cls="tentative"),)))
    _, found = fold({}, [platform("b1", 10, 14), *recs])
    assert types(found) == ["booking.conflict_possible"]


def test_an_all_day_free_event_is_only_a_possible_conflict() -> None:
    _, recs = records(("e1", (busy(0, 24, cls="free", all_day=True),)))
    _, found = fold({}, [platform("b1", 10, 14), *recs])
    assert types(found) == ["booking.conflict_possible"]


def test_deleting_the_private_event_resolves_the_conflict() -> None:
    known, recs = records(("e1", (busy(11, 13),)))
    state, _ = fold({}, [platform("b1", 10, 14), *recs])
    _, gone = records(("e1", None), known=known)
    state, found = fold(state, gone)
    assert types(found) == ["booking.conflict_resolved"]
    assert not any(k.startswith("ext:") for k in state)


def test_moving_the_private_event_away_resolves_the_conflict() -> None:
    known, recs = records(("e1", (busy(11, 13),)))
    state, _ = fold({}, [platform("b1", 10, 14), *recs])
    _, moved = records(("e1", (busy(20, 21),)), known=known)
    assert types(fold(state, moved)[1]) == ["booking.conflict_resolved"]


def test_the_same_interval_again_raises_no_new_alert() -> None:
    _, recs = records(("e1", (busy(11, 13),)))
    state, _ = fold({}, [platform("b1", 10, 14), *recs])
    assert fold(state, recs)[1] == []


def test_an_older_version_of_an_interval_is_ignored() -> None:
    _, recs = records(("e1", (busy(11, 13),)))
    newer = [{**r, "version": 5} for r in recs]
    state, _ = fold({}, [platform("b1", 10, 14), *newer])
    older = [{**r, "version": 4, "start_ms": T0} for r in recs]
    assert fold(state, older)[1] == []


def test_an_event_moved_away_and_back_alerts_again_with_a_new_id() -> None:
    known, first = records(("e1", (busy(11, 13),)))
    state, alerts = fold({}, [platform("b1", 10, 14), *first])
    known, away = records(("e1", (busy(20, 21),)), known=known)
    state, more = fold(state, [{**r, "version": 2} for r in away])
    alerts += more
    _, back = records(("e1", (busy(11, 13),)), known=known)
    state, more = fold(state, [{**r, "version": 3} for r in back])
    alerts += more
    assert types(alerts) == [
        "booking.conflict_detected",
        "booking.conflict_resolved",
        "booking.conflict_detected",
    ]
    assert alerts[0]["event_id"] != alerts[2]["event_id"]


def test_the_private_event_is_shown_on_the_bookings_wall_clock() -> None:
    _, recs = records(("e1", (busy(11, 13),)))
    utc_zone = [{**r, "time_zone": "UTC"} for r in recs]  # a calendar set to UTC
    _, found = fold({}, [platform("b1", 10, 14), *utc_zone])
    p = found[0]["payload"]
    from streams.logic.conflicts import wall_clock

    assert p["conflicting_starts_at"] == wall_clock(T0 + 11 * H, "Europe/London")


def test_a_tentative_event_turned_busy_is_then_a_conflict_for_vendor_and_couple() -> None:
    known, recs = records(("e1", (busy(11, 13, cls="tentative"),)))
    state, _ = fold({}, [platform("b1", 10, 14), *recs])
    _, accepted = records(("e1", (busy(11, 13),)), known=known)
    assert types(fold(state, accepted)[1]) == ["booking.conflict_detected"]


def test_an_all_day_free_event_turned_busy_is_then_a_conflict() -> None:
    known, recs = records(("e1", (busy(0, 24, cls="free", all_day=True),)))
    state, _ = fold({}, [platform("b1", 10, 14), *recs])
    _, busy_day = records(("e1", (busy(0, 24, all_day=True),)), known=known)
    assert types(fold(state, busy_day)[1]) == ["booking.conflict_detected"]


def test_a_busy_event_turned_tentative_clears_the_conflict_and_leaves_a_possible_one() -> None:
    known, recs = records(("e1", (busy(11, 13),)))
    state, _ = fold({}, [platform("b1", 10, 14), *recs])
    _, softened = records(("e1", (busy(11, 13, cls="tentative"),)), known=known)
    assert sorted(types(fold(state, softened)[1])) == [
        "booking.conflict_possible",
        "booking.conflict_resolved",
    ]
