"""One fetch round of one calendar, as the fetchers hand it to the pure logic.

A fetcher (`connectors/calendar/<provider>/fetch.py`) reads a calendar's changes since its
cursor (or everything, on a full sync) and reduces every provider item to an `Observed`
instance grouped by *resource* (the unit a provider deletes: a Google event or instance id,
a Graph event id, a CalDAV href). A `ResourceChange` with `instances=None` is a deletion; one
with instances is the resource's whole current set (a CalDAV resource holds a recurring series
and its exceptions, expanded). Private fields (summary, description, attendees) never leave
the fetcher: an `Observed` holds times, the busy class and ids only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Provider = Literal["google", "graph", "caldav"]
BusyClass = Literal["busy", "tentative", "free"]
Reason = Literal["push", "poll", "reconcile", "full_resync", "rebaseline"]


@dataclass(frozen=True, slots=True)
class CalendarRef:
    """A connected calendar: the integration row that connects it, its vendor, the
    provider's calendar id (Google calendar id, Graph calendar id or `primary`, CalDAV
    collection URL) and the calendar's own zone (for all-day and floating times)."""

    provider: Provider
    integration_id: str
    supplier_id: str
    calendar_id: str
    time_zone: str = "UTC"

    @property
    def key(self) -> str:
        """The calendar's stable key (sync state, channels, interval ids)."""
        return f"{self.provider}:{self.integration_id}:{self.calendar_id}"


@dataclass(frozen=True, slots=True)
class Observed:
    """One busy-or-free stretch of a vendor's calendar as the provider shows it.

    `instance` tells the occurrences of one resource apart ('' for a single event; the
    occurrence's original start for an expanded series). `ours` is our `external_event_id`
    when the item carries the markers the calendar sinks write (Google private property,
    CalDAV UID/X-WEDSYNC-VERSION); None otherwise, and always None for Graph (delta cannot
    read extended properties: Graph echoes are recognised by provider id)."""

    start_ms: int
    end_ms: int
    busy: BusyClass
    all_day: bool = False
    instance: str = ""
    ical_uid: str | None = None
    updated_ms: int = 0
    ours: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """A resource's current instances, or `instances=None` when it was deleted."""

    resource_id: str
    instances: tuple[Observed, ...] | None


@dataclass(frozen=True, slots=True)
class FetchRound:
    """What one fetch found: every changed resource (all resources when `full`), the cursor
    to store once the round's records are written, and notes for the operator."""

    calendar: CalendarRef
    changes: tuple[ResourceChange, ...]
    cursor: str
    full: bool
    reason: Reason = "push"
    notes: tuple[str, ...] = field(default_factory=tuple)
