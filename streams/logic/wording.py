"""How messages name dates, times, couples and bookings for the people who read them. Pure.

The platform stores a wedding's date and times as wall-clock values in the wedding's own
zone; they are shown as stored ("Saturday 12 June 2027", "14:00"), never converted. A
booking's times arrive as the vendor's CRM sent them and are kept as wall-clock values in
the booking's zone (`streams.logic.conflicts`). A value that cannot be read is shown as
given, or left out: never an internal id in its place.
"""

from __future__ import annotations

from datetime import date, datetime, time

from streams.models import PayloadValue

DOUBLE_BOOKING_ACTION = (
    "Please contact the couples to rearrange, or arrange cover for one of the weddings."
)


def field_names(value: PayloadValue) -> str:
    """Profile columns as words: ['phone', 'partner2_name'] -> 'phone, partner 2 name'."""
    names = value if isinstance(value, list) else [] if value is None else [str(value)]
    words = []
    for name in names:
        spaced = "".join(f" {c}" if c.isdigit() and i and not name[i - 1].isdigit() else c
                         for i, c in enumerate(name))  # fmt: skip
        words.append(spaced.replace("_", " ").strip())
    return ", ".join(words)


def long_date(value: PayloadValue) -> str:
    """'2027-06-12' (or an ISO timestamp) -> 'Saturday 12 June 2027'; other text as given."""
    if value is None or isinstance(value, bool | list):
        return ""
    text = str(value)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{day:%A} {day.day} {day:%B %Y}"


def clock(value: PayloadValue) -> str:
    """'14:00:00', '14:00:00+01' or '2027-06-12T14:00' -> '14:00'; other text as given."""
    if value is None or isinstance(value, bool | list):
        return ""
    text = str(value)
    moment = _wall(text)
    if moment is not None:
        return f"{moment:%H:%M}"
    try:
        return f"{time.fromisoformat(text):%H:%M}"
    except ValueError:
        return text


def _wall(text: str) -> datetime | None:
    """A timestamp's wall clock as written (its offset, if any, ignored)."""
    if len(text) < 16 or text[10] not in "T ":
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def when(starts_at: PayloadValue, ends_at: PayloadValue) -> str:
    """'Saturday 12 June 2027, 14:00-22:00' for two wall-clock timestamps; an end on a later
    day says so ('Saturday 12 June 2027, 20:00 to Sunday 13 June 2027, 02:00'); '' when
    the start cannot be read."""
    start = _wall(str(starts_at)) if isinstance(starts_at, str) else None
    if start is None:
        return ""
    day = long_date(start.date().isoformat())
    end = _wall(str(ends_at)) if isinstance(ends_at, str) else None
    if end is None:
        return f"{day}, from {start:%H:%M}"
    if end.date() != start.date():
        return f"{day}, {start:%H:%M} to {long_date(end.date().isoformat())}, {end:%H:%M}"
    return f"{day}, {start:%H:%M}-{end:%H:%M}"


def booking_phrase(name: PayloadValue, starts_at: PayloadValue, ends_at: PayloadValue,
                   unnamed: str) -> str:  # fmt: skip
    """'Alex & Sam on Saturday 12 June 2027, 14:00-22:00'; without a couple's name
    '<unnamed> on ...' ('another booking on ...')."""
    span = when(starts_at, ends_at)
    who = str(name) if isinstance(name, str) and name.strip() else unnamed
    return f"{who} on {span}" if span else who


def double_booking_for_vendor(p: dict[str, PayloadValue]) -> str:
    """The vendor's notice: both bookings, with their couples and times, and what to do."""
    first = booking_phrase(p.get("client_name"), p.get("starts_at"), p.get("ends_at"),
                           "a booking")  # fmt: skip
    if p.get("conflicting_origin") == "external":
        return calendar_conflict_for_vendor(p, first)
    second = booking_phrase(
        p.get("conflicting_client_name"),
        p.get("conflicting_starts_at"),
        p.get("conflicting_ends_at"),
        "another booking",
    )
    return f"Double booking: {first} overlaps {second}. {DOUBLE_BOOKING_ACTION}"


def calendar_conflict_for_vendor(p: dict[str, PayloadValue], booking: str) -> str:
    """A booking against an event of the vendor's own calendar: hard (busy) or soft
    (tentative, or an all-day event marked free)."""
    span = when(p.get("conflicting_starts_at"), p.get("conflicting_ends_at"))
    at = f" on {span}" if span else ""
    if p.get("severity") == "soft":
        return (
            f"Possible double booking: {booking} overlaps a tentative or free event in your "
            f"own calendar{at}. Please check that you are available."
        )
    return (
        f"Double booking: {booking} overlaps an event in your own calendar{at}. "
        "Please free the time or arrange cover for the wedding."
    )


def conflict_resolved(p: dict[str, PayloadValue]) -> str:
    """The event in the vendor's own calendar that collided with a booking moved or went."""
    booking = booking_phrase(p.get("client_name"), p.get("starts_at"), p.get("ends_at"),
                             "a booking")  # fmt: skip
    return f"Resolved: {booking} no longer overlaps an event in the vendor's own calendar."


def drift_detected(p: dict[str, PayloadValue]) -> str:
    """A vendor moved or deleted, in their own calendar, an event the platform put there."""
    platform = when(p.get("platform_starts_at"), p.get("platform_ends_at"))
    if p.get("deleted") is True:
        return (
            f"An event we keep in your calendar ({platform or 'a wedding'}) was deleted there. "
            "The booking stands: change it on the platform if it moved."
        )
    moved = when(p.get("calendar_starts_at"), p.get("calendar_ends_at"))
    return (
        f"An event we keep in your calendar was moved there to {moved or 'another time'}; "
        f"the platform still has {platform or 'the original time'}. Change the booking on "
        "the platform if it moved; your calendar will follow."
    )


def protection_degraded(p: dict[str, PayloadValue]) -> str:
    """A vendor with a wedding soon whose calendar the feed cannot read."""
    why = {
        "reauth_required": "needs you to reconnect it",
        "stale": "has not answered for a while",
        "disabled": "is no longer shared with us",
    }.get(str(p.get("status")), "cannot be read")
    return (
        f"Your {p.get('provider_name') or 'calendar'} {why}: double-booking protection is "
        "degraded until it syncs again."
    )


def double_booking_for_couple(vendor: str | None, starts_at: PayloadValue,
                              ends_at: PayloadValue) -> str:  # fmt: skip
    """A couple's notice: their vendor has a conflict at their booking's time; nothing about
    the vendor's other booking."""
    who = vendor or "One of your vendors"
    span = when(starts_at, ends_at)
    at = f" for your booking on {span}" if span else " on your wedding day"
    return (
        f"{who} has a scheduling conflict{at}. They have been told and will be in touch "
        "to sort it out."
    )


def booking_changed(p: dict[str, PayloadValue]) -> str:
    """A vendor's notice of a booking their CRM changed (booking.updated): whose, and when
    it is now, from when it was; a new or cancelled one says so."""
    name = p.get("client_name")
    who = f" for {name}" if isinstance(name, str) and name.strip() else ""
    now = when(p.get("starts_at"), p.get("ends_at"))
    if p.get("cancelled") is True:
        return f"Booking{who} cancelled" + (f" (was {now})" if now else "")
    if p.get("new") is True:
        return f"New booking{who}" + (f" on {now}" if now else "")
    before = when(p.get("previous_starts_at"), p.get("previous_ends_at"))
    if before and now and before != now:
        return f"Booking{who} moved from {before} to {now}"
    return f"Booking{who} changed: now {now}" if now else f"Booking{who} changed"
