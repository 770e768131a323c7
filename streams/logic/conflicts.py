"""Double-booking detection: per vendor, the booked intervals; an overlapping booking for the
same vendor yields `booking.conflict_detected`, addressed to the vendor and the couple(s).

Intervals are half-open [start, end) in epoch milliseconds, UTC, so back-to-back bookings
(one ends when the next starts) do not conflict, and bookings in different time zones are
compared on one timeline. Local times are given with an IANA zone and converted with
zoneinfo (DST-aware); ISO strings with an offset are taken as they are.

State per vendor (the agent keeps it in a table keyed by supplier id) is a plain
`dict[booking_id, BookedInterval]`. `apply_booking` is the reducer: current bookings and one
booking.changed event in, (new bookings, conflict events) out. Nothing is mutated. State is
bounded: every write drops the vendor's bookings that ended before the event (or an injected
clock), and cancelled or deleted bookings are never stored. A conflict's event id is derived
from the vendor, the pair of bookings and their overlap (`conflict_id`): a resend of either
booking does not report it again; a changed overlap is a new conflict with a new id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.models import DomainEvent, PayloadValue, SourceRef


class BookedInterval(TypedDict):
    booking_id: str
    start_ms: int
    end_ms: int
    wedding_id: str | None
    client_id: str | None
    version: int
    event_id: NotRequired[str]  # the booking.changed that stored it (absent in older state)
    # what a notice names (absent in older state): wall-clock times in the booking's zone
    # ('2027-06-12T14:00'), the couple as the CRM named them
    starts_at: NotRequired[str | None]
    ends_at: NotRequired[str | None]
    client_name: NotRequired[str | None]
    # an interval of the vendor's own calendar (`streams.logic.calendar.detect`): absent or
    # 'platform' for a booking; 'external' with its busy class and whether it is all-day
    origin: NotRequired[str]
    busy: NotRequired[str]
    all_day: NotRequired[bool]
    epoch: NotRequired[int]  # external: the version at which its times last changed
    time_zone: NotRequired[str | None]  # a booking's zone: how a notice shows other times


VendorBookings = dict[str, BookedInterval]

_CANCELLED_STATUSES = frozenset({"cancelled", "canceled", "deleted"})


def to_epoch_ms(value: PayloadValue, time_zone: str | None) -> int | None:
    """Epoch ms of `value`: epoch ms as an int, an ISO string with an offset, or a naive ISO
    local time in `time_zone` (IANA). None when it cannot be read (or the zone is unknown)."""
    if isinstance(value, bool) or value is None or isinstance(value, list | float):
        return None
    if isinstance(value, int):
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if not time_zone:
            return None
        try:
            parsed = parsed.replace(tzinfo=ZoneInfo(time_zone))
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return int(parsed.timestamp() * 1000)


def wall_clock(value: PayloadValue, time_zone: str | None) -> str | None:
    """`value` as the wall clock of the booking's zone ('2027-06-12T14:00'): a naive ISO
    time as given; epoch ms or an ISO time with an offset converted to `time_zone`, or kept
    at its own offset when no zone is known. None when it cannot be read."""
    if isinstance(value, bool) or value is None or isinstance(value, list | float):
        return None
    zone = None
    if time_zone:
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    if isinstance(value, int):
        if zone is None:
            return None
        parsed = datetime.fromtimestamp(value / 1000, zone)
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is not None and zone is not None:
            parsed = parsed.astimezone(zone)
    return f"{parsed:%Y-%m-%dT%H:%M}"


def overlaps(a: BookedInterval, b: BookedInterval) -> bool:
    """True when the half-open intervals share time; touching ends do not overlap."""
    return a["start_ms"] < b["end_ms"] and b["start_ms"] < a["end_ms"]


def booking_interval(event: DomainEvent) -> BookedInterval | None:
    """The interval a booking.changed event books; None when it has no valid interval."""
    p = event["payload"]
    zone = p.get("time_zone")
    zone_name = zone if isinstance(zone, str) else None
    start = to_epoch_ms(p.get("starts_at"), zone_name)
    end = to_epoch_ms(p.get("ends_at"), zone_name)
    if start is None or end is None or end <= start:
        return None
    wedding, client, name = p.get("wedding_id"), p.get("client_id"), p.get("client_name")
    return BookedInterval(
        booking_id=str(p.get("booking_id")),
        start_ms=start,
        end_ms=end,
        wedding_id=wedding if isinstance(wedding, str) else None,
        client_id=client if isinstance(client, str) else None,
        version=event["aggregate_version"],
        event_id=event["event_id"],
        starts_at=wall_clock(p.get("starts_at"), zone_name),
        ends_at=wall_clock(p.get("ends_at"), zone_name),
        client_name=name if isinstance(name, str) and name else None,
        time_zone=zone_name,
    )


def is_external(interval: BookedInterval) -> bool:
    """True for an interval of the vendor's own calendar, not a platform booking."""
    return interval.get("origin") == "external"


def find_conflicts(
    bookings: Mapping[str, BookedInterval], candidate: BookedInterval
) -> list[BookedInterval]:
    """The vendor's other bookings that overlap `candidate`, earliest first. Two intervals of
    the vendor's own calendar overlapping each other are not our business: an external
    candidate is compared with platform bookings only."""
    external = is_external(candidate)
    found = [
        b
        for b in bookings.values()
        if b["booking_id"] != candidate["booking_id"]
        and overlaps(b, candidate)
        and not (external and is_external(b))
    ]
    return sorted(found, key=lambda b: (b["start_ms"], b["booking_id"]))


def is_cancelled(payload: Mapping[str, PayloadValue]) -> bool:
    """True when the booking is cancelled or deleted: the flag, or the status says so."""
    status = payload.get("status")
    return payload.get("cancelled") is True or (
        isinstance(status, str) and status.lower() in _CANCELLED_STATUSES
    )


def booking_keys(event: DomainEvent) -> list[str]:
    """The vendors (supplier ids) whose bookings a booking.changed event updates: the one it
    names, and the one it names as previous when the booking moved; [] when it names none.
    The route engine forwards the event to the bookings topic under each of these keys."""
    p = event["payload"]
    named = (p.get("supplier_id"), p.get("previous_supplier_id"))
    return list(dict.fromkeys(str(s) for s in named if s is not None and s != ""))


def apply_booking(
    bookings: Mapping[str, BookedInterval] | None,
    event: DomainEvent,
    *,
    supplier_id: str,
    now_ms: int | None = None,
) -> tuple[VendorBookings, list[DomainEvent]]:
    """Fold one booking.changed event into the bookings of vendor `supplier_id`.

    Bookings that ended by `now_ms` (default: the event's time) are dropped first, so a
    vendor's state holds only what is still to come and a booking that has already ended
    is not stored. An update older than the stored version is ignored. A booking that is
    cancelled or deleted, or no longer this vendor's (it moved to another one), is removed.
    A booking without a valid interval (missing times, end not after start) leaves the
    bookings unchanged. Each overlap with another booking yields one conflict event, whose
    id is `conflict_id`, unless the booking's stored interval already overlapped the other
    one the same way: that conflict was reported when the later of the two was written, so
    a resend alerts nobody again. The same event read again (at-least-once redelivery)
    yields its conflicts again, with the same ids, for the router to drop as duplicates.
    """
    now = event["occurred_at_ms"] if now_ms is None else now_ms
    current = prune(bookings or {}, now)
    p = event["payload"]
    booking_id = str(p.get("booking_id"))
    stored = current.get(booking_id)
    if stored is not None and stored["version"] > event["aggregate_version"]:
        return current, []
    if is_cancelled(p) or str(p.get("supplier_id")) != supplier_id:
        current.pop(booking_id, None)
        return current, []
    interval = booking_interval(event)
    if interval is None:
        return current, []
    if interval["end_ms"] <= now:
        current.pop(booking_id, None)
        return current, []
    current[booking_id] = interval
    found = find_conflicts(current, interval)
    if stored is not None and stored.get("event_id") != event["event_id"]:
        reported = {conflict_id(supplier_id, stored, o) for o in find_conflicts(current, stored)}
        found = [o for o in found if conflict_id(supplier_id, interval, o) not in reported]
    return current, [conflict_event(event, supplier_id, interval, other) for other in found]


def _shown(other: BookedInterval, ms: str, text: str, booking: BookedInterval) -> str | None:
    """`other`'s time as the notice shows it: an event of the vendor's own calendar on the
    booking's wall clock (the calendar's zone may not be the wedding's), else as stored."""
    zone = booking.get("time_zone")
    if is_external(other) and zone:
        return wall_clock(other[ms], zone)  # type: ignore[literal-required]
    value = other.get(text)
    return value if isinstance(value, str) else None


def conflict_id(supplier_id: str, booking: BookedInterval, other: BookedInterval) -> str:
    """The stable id of the conflict between two bookings of one vendor: the same whichever
    booking came second and however often either is resent; a new one when the overlap
    changes, or when it turns from soft to hard or back (a tentative event the vendor then
    accepts is the double booking the couple must hear of)."""
    first, second = sorted((booking["booking_id"], other["booking_id"]))
    start = max(booking["start_ms"], other["start_ms"])
    end = min(booking["end_ms"], other["end_ms"])
    key = f"{supplier_id}|{first}|{second}|{start}|{end}".encode()
    epochs = [str(side["epoch"]) for side in (booking, other) if "epoch" in side]
    if epochs:  # an external event moved away and back is a new conflict, not a resend
        key += b"|" + "|".join(epochs).encode()
    if is_soft(booking, other):  # hard ones keep the ids they always had
        key += b"|soft"
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def is_soft(booking: BookedInterval, other: BookedInterval) -> bool:
    """A softer overlap: one side is a tentative event, or an all-day event marked free,
    of the vendor's own calendar (the vendor is told; the couple is not)."""
    return any(
        is_external(side) and (side.get("busy") == "tentative" or side.get("busy") == "free")
        for side in (booking, other)
    )


def conflict_event(
    cause: DomainEvent, supplier_id: str, booking: BookedInterval, other: BookedInterval
) -> DomainEvent:
    """booking.conflict_detected for `booking` overlapping `other` at one vendor;
    booking.conflict_possible when the overlap is soft (`is_soft`). An interval of the
    vendor's own calendar is named by its times only: no title, couple or wedding."""
    clients = [c for c in dict.fromkeys((booking["client_id"], other["client_id"])) if c]
    payload: dict[str, PayloadValue] = {
        "supplier_id": supplier_id,
        "booking_id": booking["booking_id"],
        "conflicting_booking_id": other["booking_id"],
        "wedding_id": booking["wedding_id"],
        "conflicting_wedding_id": other["wedding_id"],
        "client_ids": clients,
        "client_id": booking["client_id"],
        "conflicting_client_id": other["client_id"],
        "client_name": booking.get("client_name"),
        "conflicting_client_name": other.get("client_name"),
        "starts_at": booking.get("starts_at"),
        "ends_at": booking.get("ends_at"),
        "conflicting_starts_at": _shown(other, "start_ms", "starts_at", booking),
        "conflicting_ends_at": _shown(other, "end_ms", "ends_at", booking),
        "starts_at_ms": booking["start_ms"],
        "ends_at_ms": booking["end_ms"],
        "overlap_start_ms": max(booking["start_ms"], other["start_ms"]),
        "overlap_end_ms": min(booking["end_ms"], other["end_ms"]),
        "conflicting_origin": "external" if is_external(other) else "platform",
        "severity": "soft" if is_soft(booking, other) else "hard",
    }
    source = SourceRef(**{**cause["source"], "kind": "internal"})
    soft = is_soft(booking, other)
    return DomainEvent(
        event_id=conflict_id(supplier_id, booking, other),
        event_type="booking.conflict_possible" if soft else "booking.conflict_detected",
        aggregate_type="vendor",
        aggregate_id=supplier_id,
        aggregate_version=cause["aggregate_version"],
        occurred_at_ms=cause["occurred_at_ms"],
        correlation_id=cause["correlation_id"],
        source_ts_ms=cause["source_ts_ms"],
        source=source,
        payload=payload,
        organization_id=cause["organization_id"],
    )


def prune(bookings: Mapping[str, BookedInterval], before_ms: int) -> VendorBookings:
    """The bookings that end after `before_ms` (drop the past to bound state)."""
    return {k: b for k, b in bookings.items() if b["end_ms"] > before_ms}


def booking_notice(
    stored: BookedInterval | None, event: DomainEvent, *, supplier_id: str
) -> DomainEvent | None:
    """booking.updated: what one booking.changed means to vendor `supplier_id`, from what
    the detector kept of the booking before (`stored`, as `apply_booking` found it): a new
    booking, one moved from its old times to its new ones, or one cancelled. None when
    there is nothing to tell: an older update, a booking that is not (or no longer) this
    vendor's, a resend with the same times. Its id derives from the cause's, so a
    redelivered booking.changed yields the same notice for the router to drop."""
    p = event["payload"]
    if str(p.get("supplier_id")) != supplier_id:
        return None
    if stored is not None and stored["version"] > event["aggregate_version"]:
        return None
    interval = booking_interval(event)
    cancelled = is_cancelled(p)
    same = (
        stored is not None
        and interval is not None
        and (stored["start_ms"], stored["end_ms"]) == (interval["start_ms"], interval["end_ms"])
    )
    if same and not cancelled:
        return None
    shown = interval if interval is not None else stored
    name = p.get("client_name") or (None if stored is None else stored.get("client_name"))
    payload: dict[str, PayloadValue] = {
        "supplier_id": supplier_id,
        "booking_id": str(p.get("booking_id")),
        "wedding_id": p.get("wedding_id"),
        "client_id": p.get("client_id"),
        "client_name": name if isinstance(name, str) else None,
        "starts_at": None if shown is None else shown.get("starts_at"),
        "ends_at": None if shown is None else shown.get("ends_at"),
        "previous_starts_at": None if stored is None else stored.get("starts_at"),
        "previous_ends_at": None if stored is None else stored.get("ends_at"),
        "cancelled": cancelled,
        "new": stored is None and not cancelled,
    }
    key = f"{event['event_id']}|booking.updated".encode()
    return DomainEvent(
        event_id=hashlib.blake2b(key, digest_size=16).hexdigest(),
        event_type="booking.updated",
        aggregate_type="booking",
        aggregate_id=str(p.get("booking_id")),
        aggregate_version=event["aggregate_version"],
        occurred_at_ms=event["occurred_at_ms"],
        correlation_id=event["correlation_id"],
        source_ts_ms=event["source_ts_ms"],
        source=SourceRef(**{**event["source"], "kind": "internal"}),
        payload=payload,
        organization_id=event["organization_id"],
    )
