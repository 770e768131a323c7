"""The busy-interval record: what the feed tells the double-booking detector about a vendor's
own calendar (`wedsync.calendar.busy`, keyed by supplier id, schemas/calendar/busy_interval).

An interval is one occurrence of one resource of one connected calendar, half-open
[start_ms, end_ms) in UTC epoch ms. `state` is `active` or `deleted` (a tombstone: the
event was deleted, cancelled, became free, or left the horizon; times are 0). Only busy and
tentative time, and all-day events marked free (the softer notice: the Google UI makes
all-day events free by default), are active intervals; a timed free event is no busy time at
all, so it is never stored and a busy event turning free is a tombstone.
"""

from __future__ import annotations

import hashlib
from typing import TypedDict

from streams.logic.calendar.rounds import CalendarRef, Observed, Reason


class BusyRecord(TypedDict):
    event_id: str
    interval_id: str
    calendar_key: str
    supplier_id: str
    integration_id: str
    provider: str
    resource_id: str
    ical_uid: str | None
    start_ms: int
    end_ms: int
    all_day: bool
    time_zone: str
    busy: str  # busy | tentative | free (all-day only)
    state: str  # active | deleted
    version: int
    source_ts_ms: int
    reason: str
    observed_at_ms: int


def interval_id(calendar: CalendarRef, resource_id: str, instance: str) -> str:
    """The stable id of one occurrence of one resource of one calendar (32 hex)."""
    key = f"{calendar.key}|{resource_id}|{instance}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def record_id(iid: str, version: int, state: str) -> str:
    return hashlib.blake2b(f"{iid}|{version}|{state}".encode(), digest_size=16).hexdigest()


def counts(observed: Observed) -> bool:
    """True when the occurrence is time the detector must know: busy, tentative, or an
    all-day event marked free (soft notice); a timed free event is not."""
    if observed.end_ms <= observed.start_ms:
        return False
    return observed.busy != "free" or observed.all_day


def content_hash(observed: Observed) -> str:
    """What a change of the occurrence means to the detector: times and class, nothing else
    (a title edit is not a change)."""
    key = f"{observed.start_ms}|{observed.end_ms}|{observed.busy}|{observed.all_day}"
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def active(
    calendar: CalendarRef,
    resource_id: str,
    observed: Observed,
    *,
    version: int,
    reason: Reason,
    now_ms: int,
) -> BusyRecord:
    iid = interval_id(calendar, resource_id, observed.instance)
    record = tombstone(calendar, resource_id, iid, version=version, reason=reason, now_ms=now_ms)
    record["event_id"] = record_id(iid, version, "active")
    record["ical_uid"] = observed.ical_uid
    record["start_ms"], record["end_ms"] = observed.start_ms, observed.end_ms
    record["all_day"], record["busy"], record["state"] = observed.all_day, observed.busy, "active"
    record["source_ts_ms"] = min(observed.updated_ms or now_ms, now_ms)  # a clock ahead: now
    return record


def tombstone(
    calendar: CalendarRef,
    resource_id: str,
    iid: str,
    *,
    version: int,
    reason: Reason,
    now_ms: int,
) -> BusyRecord:
    """The interval gone: no times, no class (the fields an active record overrides)."""
    return BusyRecord(
        event_id=record_id(iid, version, "deleted"),
        interval_id=iid,
        calendar_key=calendar.key,
        supplier_id=calendar.supplier_id,
        integration_id=calendar.integration_id,
        provider=calendar.provider,
        resource_id=resource_id,
        ical_uid=None,
        start_ms=0,
        end_ms=0,
        all_day=False,
        time_zone=calendar.time_zone,
        busy="free",
        state="deleted",
        version=version,
        source_ts_ms=now_ms,
        reason=reason,
        observed_at_ms=now_ms,
    )
