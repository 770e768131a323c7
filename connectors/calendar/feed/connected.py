"""Which calendars the feed keeps in sync, from the routing state the worker maintains
(`supplier_integrations` rows of a calendar type, active), and which vendors have a wedding
soon (their calendars are reconciled and polled more often, and a degraded calendar is
worth a notice). Pure: the state tables in, plain values out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.logic.calendar.rounds import CalendarRef
from streams.logic.routing import calendar_provider, integration_class
from streams.logic.state import StateTables

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Connected:
    calendar: CalendarRef
    next_wedding_ms: int | None  # the vendor's next wedding day (midnight UTC), if known

    def soon(self, now_ms: int, within_ms: int) -> bool:
        return (
            self.next_wedding_ms is not None
            and now_ms - DAY_MS <= self.next_wedding_ms <= now_ms + within_ms
        )


def next_weddings(tables: StateTables, now_ms: int) -> dict[str, int]:
    """supplier id -> the day of their next wedding still to come (epoch ms, UTC midnight)."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    out: dict[str, int] = {}
    for wedding_id, links in tables.wedding_vendors.items():
        wedding = tables.weddings.get(wedding_id)
        raw = wedding["wedding_date"] if wedding else None
        try:
            day = date.fromisoformat(raw[:10]) if raw else None
        except ValueError:
            day = None
        if day is None or day < today:
            continue
        at = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        for link in links.values():
            supplier = link["supplier_id"]
            out[supplier] = min(out.get(supplier, at), at)
    return out


def connected(tables: StateTables, now_ms: int) -> dict[str, Connected]:
    """calendar key -> the connected calendar, for every active calendar integration."""
    soon = next_weddings(tables, now_ms)
    out: dict[str, Connected] = {}
    for supplier_id, integrations in tables.integrations.items():
        for row in integrations.values():
            if not row["is_active"] or integration_class(row) != "calendar":
                continue
            calendar = CalendarRef(
                provider=calendar_provider(row),
                integration_id=row["integration_id"],  # the row's id (the index key has its table)
                supplier_id=supplier_id,
                calendar_id=row["calendar_id"] or "primary",
                time_zone=_zone(row["time_zone"]),
            )
            out[calendar.key] = Connected(calendar, soon.get(supplier_id))
    return out


def _zone(name: str | None) -> str:
    """The integration's zone when it is a real IANA zone, else UTC."""
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name
