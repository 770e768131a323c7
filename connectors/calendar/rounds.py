"""One fetch round assembled from pages, the same for every provider: items reduced to
resource changes (the last word on a resource within a round wins: providers replay)."""

from __future__ import annotations

from collections.abc import Iterable

from streams.logic.calendar.rounds import (
    CalendarRef,
    FetchRound,
    Observed,
    Reason,
    ResourceChange,
)


class RoundBuilder:
    """Collects (resource, occurrence | None) pairs across pages."""

    def __init__(self, calendar: CalendarRef, *, full: bool, reason: Reason) -> None:
        self.calendar, self.full, self.reason = calendar, full, reason
        self._resources: dict[str, dict[str, Observed] | None] = {}
        self.pages = 0

    def add(self, resource: str, observed: Observed | None) -> None:
        """One item. A deleted resource stays deleted unless a later item revives it."""
        if observed is None:
            self._resources[resource] = None
            return
        held = self._resources.get(resource)
        if held is None:
            held = self._resources[resource] = {}
        held[observed.instance] = observed

    def add_all(self, pairs: Iterable[tuple[str, Observed | None]]) -> None:
        for resource, observed in pairs:
            self.add(resource, observed)

    def build(self, cursor: str) -> FetchRound:
        changes = tuple(
            ResourceChange(r, None if held is None else tuple(held.values()))
            for r, held in self._resources.items()
        )
        return FetchRound(self.calendar, changes, cursor, self.full, self.reason)
