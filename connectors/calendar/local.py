"""A wedding's wall-clock times in a calendar record, as every calendar wire reads them.
Pure.

Routing places an event on the timeline (`starts_at_ms`) only when the wedding names its
zone; otherwise the record carries `local_start`/`local_end` (the platform's wall clock) and
the sink places them in the calendar's own zone, else the record's `fallback_time_zone`
(`streams.logic.transform.calendar_fields`). Failures are `LocalTimesRefused`, which each
wire turns into its own bad-record error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any


class LocalTimesRefused(ValueError):
    """The record's local times cannot be read, or no zone is known to read them in."""


NO_ZONE = (
    "no time zone for the wedding's wall-clock times: neither the wedding, the calendar "
    "(or mailbox) nor the integration names one; set the integration's time_zone or "
    "WEDSYNC_ROUTE_DEFAULT_TIME_ZONE"
)


def needs_own_zone(record: Mapping[str, Any]) -> bool:
    """A timed event routing could not place: the calendar's (or mailbox's) own zone is
    asked for and preferred to the record's fallback."""
    return (
        not record.get("all_day")
        and record.get("starts_at_ms") is None
        and not (record.get("time_zone"))
    )


def placed(record: Mapping[str, Any], own_zone: str | None) -> dict[str, Any]:
    """`record` with the zone its wall-clock times are read in: the calendar's own, else the
    record's fallback (the integration's or the deployment's)."""
    return {**record, "time_zone": own_zone or record.get("fallback_time_zone")}


def days(record: Mapping[str, Any]) -> tuple[date, date] | None:
    """(first day, the day after the last) of an all-day event given by its local days;
    None when the record is not one."""
    if not (record.get("all_day") and record.get("local_start")):
        return None
    first = _day(str(record["local_start"]))
    last = _day(str(record["local_end"])) if record.get("local_end") else first
    return first, after(first, last)


def wall_clock(record: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """(start, end) as naive wall-clock datetimes."""
    try:
        return (datetime.fromisoformat(str(record["local_start"])),
                datetime.fromisoformat(str(record["local_end"])))  # fmt: skip
    except (KeyError, ValueError):
        raise LocalTimesRefused("the record has no readable local start or end") from None


def zone_name(record: Mapping[str, Any]) -> str:
    """The zone a wall-clock record is read in (after `placed`)."""
    name = record.get("time_zone")
    if not name:
        raise LocalTimesRefused(NO_ZONE)
    return str(name)


def after(first: date, last: date) -> date:
    """An exclusive end: `last`, or the day after `first` when it is not later."""
    return last if last > first else first + timedelta(days=1)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise LocalTimesRefused("the record has no readable day") from None
