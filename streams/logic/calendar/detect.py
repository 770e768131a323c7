"""The double-booking detector's side of the calendar feed: fold one busy-interval record
into a vendor's bookings (the same table `streams.logic.conflicts.apply_booking` keeps).

An interval of the vendor's own calendar is stored beside the platform bookings under
`ext:<interval id>`, marked `origin: external`. Against platform bookings only (two of the
vendor's own events overlapping is the vendor's business):

- a busy overlap is `booking.conflict_detected`, to the vendor and the couple (the couple
  learns that their vendor has a conflict at their booking's time, nothing of the event);
- a tentative overlap, or an all-day event marked free, is `booking.conflict_possible`, to
  the vendor only;
- when the vendor moves or deletes the event and a hard conflict it caused is gone, the
  conflict is cleared: `booking.conflict_resolved`, to both.

Resending an interval (a resync, a redelivery) reports nothing again: conflict ids derive
from the pair and the overlap (`conflict_id`), and an overlap the stored interval already
had was reported when it was stored. An older version than the stored one is ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.notices import feed_source
from streams.logic.conflicts import (
    BookedInterval,
    VendorBookings,
    conflict_event,
    conflict_id,
    find_conflicts,
    is_soft,
    prune,
    wall_clock,
)
from streams.models import DomainEvent, PayloadValue

EXTERNAL_PREFIX = "ext:"


def stored_id(record: BusyRecord) -> str:
    return EXTERNAL_PREFIX + record["interval_id"]


def external_interval(record: BusyRecord) -> BookedInterval:
    zone = record["time_zone"] or "UTC"
    return BookedInterval(
        booking_id=stored_id(record),
        start_ms=record["start_ms"],
        end_ms=record["end_ms"],
        wedding_id=None,
        client_id=None,
        version=record["version"],
        event_id=record["event_id"],
        starts_at=wall_clock(record["start_ms"], zone),
        ends_at=wall_clock(record["end_ms"], zone),
        client_name=None,
        origin="external",
        busy=record["busy"],
        all_day=record["all_day"],
    )


def apply_busy(
    bookings: Mapping[str, BookedInterval] | None,
    record: BusyRecord,
    *,
    supplier_id: str,
    now_ms: int | None = None,
) -> tuple[VendorBookings, list[DomainEvent]]:
    """Fold one busy-interval record into vendor `supplier_id`'s bookings (module docstring)."""
    now = record["observed_at_ms"] if now_ms is None else now_ms
    current = prune(bookings or {}, now)
    key = stored_id(record)
    stored = current.get(key)
    if stored is not None and stored["version"] > record["version"]:
        return current, []
    cause = cause_event(record)
    before = (
        {conflict_id(supplier_id, stored, o): o for o in find_conflicts(current, stored)}
        if stored
        else {}
    )
    interval: BookedInterval | None = None
    if (
        record["state"] == "active"
        and record["supplier_id"] == supplier_id
        and record["end_ms"] > now
    ):
        interval = external_interval(record)
        same = stored is not None and (stored["start_ms"], stored["end_ms"]) == (
            interval["start_ms"],
            interval["end_ms"],
        )
        interval["epoch"] = (
            stored.get("epoch", record["version"]) if same and stored else record["version"]
        )
        current[key] = interval
    else:
        current.pop(key, None)
    events: list[DomainEvent] = []
    after: set[str] = set()
    if interval is not None:
        for other in find_conflicts(current, interval):
            cid = conflict_id(supplier_id, interval, other)
            after.add(cid)
            if cid not in before:
                events.append(conflict_event(cause, supplier_id, other, interval))
    for cid, other in before.items():
        if cid not in after and stored is not None and not is_soft(other, stored):
            events.append(resolved_event(cause, supplier_id, cid, other))
    return current, events


def resolved_event(
    cause: DomainEvent, supplier_id: str, cleared: str, booking: BookedInterval
) -> DomainEvent:
    """booking.conflict_resolved: the event in the vendor's own calendar that collided with
    `booking` moved or went; the conflict `cleared` no longer holds."""
    clients = [booking["client_id"]] if booking["client_id"] else []
    payload: dict[str, PayloadValue] = {
        "supplier_id": supplier_id,
        "booking_id": booking["booking_id"],
        "wedding_id": booking["wedding_id"],
        "client_id": booking["client_id"],
        "client_ids": clients,
        "client_name": booking.get("client_name"),
        "starts_at": booking.get("starts_at"),
        "ends_at": booking.get("ends_at"),
        "resolved_conflict_id": cleared,
        "conflicting_origin": "external",
    }
    key = f"{cleared}|resolved".encode()
    return {
        **cause,
        "event_id": hashlib.blake2b(key, digest_size=16).hexdigest(),
        "event_type": "booking.conflict_resolved",
        "payload": payload,
    }


def cause_event(record: BusyRecord) -> DomainEvent:
    """The busy record as the cause of the detector's notices (their version, times and
    correlation come from it)."""
    return DomainEvent(
        event_id=record["event_id"],
        event_type="calendar.busy_changed",
        aggregate_type="vendor",
        aggregate_id=record["supplier_id"],
        aggregate_version=record["version"],
        occurred_at_ms=record["observed_at_ms"],
        correlation_id=record["interval_id"],
        source_ts_ms=record["source_ts_ms"],
        source=feed_source(),
        payload={},
        organization_id=None,
    )
