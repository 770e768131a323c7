"""Our own events in a vendor's calendar: never external busy time; a vendor's edit is drift.

The calendar sinks mark what they write (Google: a private `wedsyncExternalId` and an id
derived from it; CalDAV: UID = external_event_id and X-WEDSYNC-VERSION), and the fetchers put
that external id in `Observed.ours`. Graph's delta cannot read extended properties, so a
Graph event is ours when its provider id is one a delivery result recorded. `OwnedIndex`
holds what we last asked each calendar to hold (from the calendar delivery records) and the
provider ids our writes got (from the delivery results); the feed fills it, this module
decides:

    ours, times as we wrote them (or unknown)   -> echo: dropped, counted
    ours, times differ from what we wrote       -> drift: the vendor moved our event
    ours, deleted in the calendar, not by us    -> drift: the vendor deleted our event
    not ours                                    -> external: busy time for the detector
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.logic.calendar.rounds import CalendarRef, Observed

Verdict = Literal["echo", "drift", "external"]


@dataclass(frozen=True, slots=True)
class OwnedEvent:
    """What we last asked one calendar to hold for one of our events."""

    external_event_id: str
    start_ms: int | None
    end_ms: int | None
    deleted: bool = False
    aggregate_id: str = ""  # what the event was about (the wedding, the booking)
    # the wall clock we wrote when the platform knew no zone: the sink placed it in the
    # calendar's own zone ('2027-06-12T14:00', or a day '2027-06-12' for all-day)
    local_start: str | None = None
    local_end: str | None = None

    def times(self, zone: str) -> tuple[int, int] | None:
        """(start, end) epoch ms as written in a calendar whose zone is `zone`."""
        if self.start_ms is not None and self.end_ms is not None:
            return self.start_ms, self.end_ms
        start, end = _local_ms(self.local_start, zone), _local_ms(self.local_end, zone)
        return None if start is None or end is None else (start, end)


def _local_ms(text: str | None, zone: str) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        tz = ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        return None
    return int(moment.replace(tzinfo=moment.tzinfo or tz).timestamp() * 1000)


@dataclass
class OwnedIndex:
    """Our events per integration: by external id, and provider id -> external id."""

    by_external: dict[tuple[str, str], OwnedEvent] = field(default_factory=dict)
    by_provider_id: dict[tuple[str, str], str] = field(default_factory=dict)
    # what we asked before the latest: a calendar still showing one of them is a write the
    # sink has not made yet (paused, retrying), not the vendor's edit
    earlier: dict[tuple[str, str], list[OwnedEvent]] = field(default_factory=dict)
    keep: int = 4

    def wrote(self, integration_id: str, event: OwnedEvent) -> None:
        key = (integration_id, event.external_event_id)
        previous = self.by_external.get(key)
        if previous is not None and previous != event:
            older = self.earlier.setdefault(key, [])
            older.append(previous)
            del older[: -self.keep]
        self.by_external[key] = event

    def candidates(self, calendar: CalendarRef, external_event_id: str) -> list[OwnedEvent]:
        """Every version we asked recently, the latest last."""
        key = (calendar.integration_id, external_event_id)
        latest = self.by_external.get(key)
        return [*self.earlier.get(key, []), *([latest] if latest else [])]

    def got_id(self, integration_id: str, provider_id: str, external_event_id: str) -> None:
        self.by_provider_id[(integration_id, provider_id)] = external_event_id

    def external_id(
        self, calendar: CalendarRef, resource_id: str, observed: Observed | None
    ) -> str | None:
        """Our external id for a resource: its marker, or the provider id we recorded."""
        if observed is not None and observed.ours:
            return observed.ours
        return self.by_provider_id.get((calendar.integration_id, resource_id))

    def get(self, calendar: CalendarRef, external_event_id: str) -> OwnedEvent | None:
        return self.by_external.get((calendar.integration_id, external_event_id))


@dataclass(frozen=True, slots=True)
class Drift:
    """A vendor moved or deleted one of our events in their calendar."""

    drift_id: str
    calendar: CalendarRef
    external_event_id: str
    aggregate_id: str
    deleted: bool
    calendar_start_ms: int | None
    calendar_end_ms: int | None
    platform_start_ms: int | None
    platform_end_ms: int | None


def verdict(
    owned: OwnedEvent | None,
    observed: Observed | None,
    zone: str = "UTC",
    earlier: list[OwnedEvent] | None = None,
) -> Verdict:
    """echo or drift for one of our events (`observed` None: deleted in the calendar) in a
    calendar whose zone is `zone`: echo when it shows what we asked last or, while the
    sink catches up, one of the `earlier` versions."""
    if owned is None:
        return "echo"  # marked as ours, but nothing to compare with: never busy time
    if observed is None:
        return "echo" if owned.deleted else "drift"
    shown = (observed.start_ms, observed.end_ms)
    asked = [e.times(zone) for e in [*(earlier or []), owned] if not e.deleted]
    if not any(a is not None for a in asked):
        return "echo"
    return "echo" if shown in asked else "drift"


def drift(calendar: CalendarRef, owned: OwnedEvent, observed: Observed | None) -> Drift:
    """The drift notice; its id is the same for the same edit, so a resync repeats none."""
    start = None if observed is None else observed.start_ms
    end = None if observed is None else observed.end_ms
    written = owned.times(calendar.time_zone)
    platform_start, platform_end = written if written is not None else (None, None)
    key = f"{calendar.key}|{owned.external_event_id}|{start}|{end}|{platform_start}|{platform_end}"
    return Drift(
        drift_id=hashlib.blake2b(key.encode(), digest_size=16).hexdigest(),
        calendar=calendar,
        external_event_id=owned.external_event_id,
        aggregate_id=owned.aggregate_id,
        deleted=observed is None,
        calendar_start_ms=start,
        calendar_end_ms=end,
        platform_start_ms=platform_start,
        platform_end_ms=platform_end,
    )
