"""The feed's own notices, as domain events on wedsync.events (routed to the vendor):
drift (a vendor moved or deleted one of our events in their calendar) and degraded
protection (a vendor with a wedding soon whose calendar cannot be read). Pure."""

from __future__ import annotations

from streams.logic.calendar.echo import Drift
from streams.logic.calendar.health import Status, degraded_notice_id
from streams.logic.calendar.rounds import CalendarRef
from streams.logic.conflicts import wall_clock
from streams.models import DomainEvent, PayloadValue, SourceRef
from streams.topics import CALENDAR_BUSY

PROVIDER_NAMES = {
    "google": "Google calendar",
    "graph": "Outlook calendar",
    "caldav": "CalDAV calendar",
}


def feed_source() -> SourceRef:
    """Where the calendar feed's notices and the detector's calendar causes come from."""
    return SourceRef(
        kind="internal",
        topic=CALENDAR_BUSY.name,
        partition=-1,
        offset=-1,
        lsn=None,
        commit_lsn=None,
        state_lsn=None,
        delivery_id=None,
        table=None,
    )


def _event(
    event_id: str,
    event_type: str,
    calendar: CalendarRef,
    version: int,
    now_ms: int,
    payload: dict[str, PayloadValue],
) -> DomainEvent:
    return DomainEvent(
        event_id=event_id,
        event_type=event_type,
        aggregate_type="vendor",
        aggregate_id=calendar.supplier_id,
        aggregate_version=version,
        occurred_at_ms=now_ms,
        correlation_id=calendar.key,
        source_ts_ms=now_ms,
        source=feed_source(),
        payload={
            "supplier_id": calendar.supplier_id,
            "integration_id": calendar.integration_id,
            **payload,
        },
        organization_id=None,
    )


def drift_event(drift: Drift, *, version: int, now_ms: int) -> DomainEvent:
    zone = drift.calendar.time_zone
    return _event(
        drift.drift_id,
        "calendar.drift_detected",
        drift.calendar,
        version,
        now_ms,
        {
            "external_event_id": drift.external_event_id,
            "wedding_id": drift.aggregate_id or None,
            "deleted": drift.deleted,
            "calendar_starts_at": wall_clock(drift.calendar_start_ms, zone),
            "calendar_ends_at": wall_clock(drift.calendar_end_ms, zone),
            "platform_starts_at": wall_clock(drift.platform_start_ms, zone),
            "platform_ends_at": wall_clock(drift.platform_end_ms, zone),
            "provider": drift.calendar.provider,
        },
    )


def degraded_event(
    calendar: CalendarRef, status: Status, since_ms: int, *, version: int, now_ms: int
) -> DomainEvent:
    return _event(
        degraded_notice_id(calendar.key, status, since_ms),
        "calendar.protection_degraded",
        calendar,
        version,
        now_ms,
        {
            "status": status,
            "provider": calendar.provider,
            "provider_name": PROVIDER_NAMES[calendar.provider],
            "since_ms": since_ms,
        },
    )
