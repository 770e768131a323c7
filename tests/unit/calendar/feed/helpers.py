"""Builders for the calendar feed's pure tests."""

from __future__ import annotations

from streams.logic.calendar.differ import Horizon
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Observed, ResourceChange

H = 3_600_000
DAY = 24 * H
T0 = 1_812_000_000_000  # 2027-06-02T...Z: the tests' "now"
CAL = CalendarRef("google", "int-1", "sup-1", "primary", "Europe/London")
HORIZON = Horizon(T0 - DAY, T0 + 540 * DAY)


def busy(
    start_h: float,
    end_h: float,
    *,
    cls: str = "busy",
    instance: str = "",
    ours: str | None = None,
    all_day: bool = False,
) -> Observed:
    return Observed(
        start_ms=T0 + int(start_h * H),
        end_ms=T0 + int(end_h * H),
        busy=cls,  # type: ignore[arg-type]
        all_day=all_day,
        instance=instance,
        ours=ours,
    )


def round_of(*changes: tuple[str, tuple[Observed, ...] | None], full: bool = False) -> FetchRound:
    return FetchRound(
        calendar=CAL,
        changes=tuple(ResourceChange(r, i) for r, i in changes),
        cursor="c",
        full=full,
        reason="full_resync" if full else "push",
    )


def platform(booking_id: str, start_h: float, end_h: float, *, client: str = "c-1"):  # type: ignore[no-untyped-def]
    """A platform booking.changed for vendor sup-1, times in hours after T0."""
    from tests.unit.logic.factories import event

    ev = event(
        "booking.changed",
        {
            "booking_id": booking_id,
            "supplier_id": CAL.supplier_id,
            "wedding_id": f"w-{booking_id}",
            "client_id": client,
            "starts_at": T0 + int(start_h * H),
            "ends_at": T0 + int(end_h * H),
            "time_zone": "Europe/London",
            "cancelled": False,
        },
        aggregate_id=booking_id,
        event_id=f"ev-{booking_id}",
    )
    ev["occurred_at_ms"] = T0
    return ev
