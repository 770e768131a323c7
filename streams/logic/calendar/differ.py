"""A fetch round against what was known of the calendar -> upserts and tombstones only.

`Known` is the feed's memory of one calendar (kept in its sync state): per resource, the
interval ids it contributed with a hash of what each means to the detector, which
resources are our own events, and the times the calendar last showed of each while they
matched what we asked (drift is judged against them once those deliveries expired).
`diff` folds a `FetchRound` into it:

- a changed resource's intervals are compared one by one: new or changed ones are upserts,
  vanished ones tombstones; an unchanged one is nothing (a replay, a title edit);
- a deleted resource tombstones everything it contributed;
- a full round (first sync, a refused cursor, a re-baseline) also tombstones every resource
  it no longer lists: so a full resync emits exactly what changed and never alerts again;
- occurrences outside the horizon, timed free events and our own events are no intervals;
  our own events are echoes or, when the vendor moved or deleted them, drift.

Pure: the caller passes the owned index, the round's version and the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.logic.calendar import busy
from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.echo import Drift, OwnedEvent, OwnedIndex, drift, verdict
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Observed, Reason


@dataclass
class Known:
    intervals: dict[str, dict[str, str]] = field(default_factory=dict)  # resource -> {id: hash}
    ours: dict[str, str] = field(default_factory=dict)  # resource -> our external id
    # resource -> [start ms, end ms, aggregate id]: what the calendar last showed of one of
    # our events while it matched what we asked; drift is judged against it once the
    # deliveries that asked are no longer kept (`OwnedIndex` knows nothing of them then)
    shown: dict[str, list[object]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"intervals": self.intervals, "ours": self.ours, "shown": self.shown}

    @classmethod
    def from_json(cls, value: object) -> Known:
        if not isinstance(value, dict):
            return cls()
        intervals = value.get("intervals")
        ours = value.get("ours")
        shown = value.get("shown")
        return cls(
            {str(r): {str(i): str(h) for i, h in ids.items()} for r, ids in intervals.items()}
            if isinstance(intervals, dict)
            else {},
            {str(r): str(e) for r, e in ours.items()} if isinstance(ours, dict) else {},
            {str(r): list(v) for r, v in shown.items() if _readable_shown(v)}
            if isinstance(shown, dict)
            else {},
        )

    def interval_count(self) -> int:
        return sum(len(ids) for ids in self.intervals.values())


@dataclass(frozen=True)
class Diff:
    known: Known
    records: list[BusyRecord]
    drift: list[Drift]
    echoes: int


@dataclass(frozen=True, slots=True)
class Horizon:
    start_ms: int
    end_ms: int

    def holds(self, observed: Observed) -> bool:
        return observed.end_ms > self.start_ms and observed.start_ms < self.end_ms


def diff(
    known: Known,
    round_: FetchRound,
    owned: OwnedIndex,
    *,
    version: int,
    now_ms: int,
    horizon: Horizon,
) -> Diff:
    calendar, reason = round_.calendar, round_.reason
    intervals = {r: dict(ids) for r, ids in known.intervals.items()}
    ours = dict(known.ours)
    shown = dict(known.shown)
    records: list[BusyRecord] = []
    drifts: list[Drift] = []
    echoes = 0
    seen: set[str] = set()
    for change in round_.changes:
        resource = change.resource_id
        seen.add(resource)
        before = intervals.pop(resource, {})
        instances = change.instances
        mine = _ours(owned, calendar, resource, instances) or ours.get(resource)
        if mine is not None:
            echoes_here, drift_here = _our_event(owned, calendar, mine, instances, shown, resource)
            echoes += echoes_here
            drifts += drift_here
            if instances is None:
                ours.pop(resource, None)
                shown.pop(resource, None)
            else:
                ours[resource] = mine
            instances = None  # ours is never busy time
        now = _wanted(calendar, resource, instances or (), horizon)
        for iid in before.keys() - now.keys():
            records.append(_tombstone(calendar, resource, iid, version, reason, now_ms))
        for iid, (digest, observed) in now.items():
            if before.get(iid) != digest:
                records.append(
                    busy.active(
                        calendar, resource, observed, version=version, reason=reason, now_ms=now_ms
                    )
                )
        if now:
            intervals[resource] = {iid: digest for iid, (digest, _) in now.items()}
    if round_.full:
        for resource in [r for r in intervals if r not in seen]:
            for iid in intervals.pop(resource):
                records.append(_tombstone(calendar, resource, iid, version, reason, now_ms))
        for resource in [r for r in ours if r not in seen]:
            mine = ours.pop(resource)
            echoes_here, drift_here = _our_event(owned, calendar, mine, None, shown, resource)
            shown.pop(resource, None)
            echoes += echoes_here
            drifts += drift_here
    return Diff(Known(intervals, ours, shown), records, drifts, echoes)


def _ours(
    owned: OwnedIndex, calendar: CalendarRef, resource: str, instances: Iterable[Observed] | None
) -> str | None:
    for observed in instances or ():
        found = owned.external_id(calendar, resource, observed)
        if found:
            return found
    return owned.external_id(calendar, resource, None)


def _our_event(
    owned: OwnedIndex,
    calendar: CalendarRef,
    external_id: str,
    instances: tuple[Observed, ...] | None,
    shown: dict[str, list[object]],
    resource: str,
) -> tuple[int, list[Drift]]:
    """(echoes, drift) for one of our events; an echo with times is remembered in `shown`,
    and stands in for what we asked when the deliveries that asked are no longer kept."""
    record = owned.get(calendar, external_id) or _remembered(shown.get(resource), external_id)
    observed = instances[0] if instances else None
    earlier = owned.candidates(calendar, external_id)[:-1]
    if verdict(record, observed, calendar.time_zone, earlier) == "echo" or record is None:
        if observed is not None and record is not None:
            shown[resource] = [observed.start_ms, observed.end_ms, record.aggregate_id]
        return 1, []
    return 0, [drift(calendar, record, observed)]


def _remembered(entry: list[object] | None, external_id: str) -> OwnedEvent | None:
    if entry is None or not _readable_shown(entry):
        return None
    start, end, aggregate = entry
    if not isinstance(start, int) or not isinstance(end, int):
        return None
    return OwnedEvent(external_id, start, end, aggregate_id=str(aggregate))


def _readable_shown(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[:2])
    )


def _wanted(
    calendar: CalendarRef, resource: str, instances: Iterable[Observed], horizon: Horizon
) -> dict[str, tuple[str, Observed]]:
    return {
        busy.interval_id(calendar, resource, o.instance): (busy.content_hash(o), o)
        for o in instances
        if busy.counts(o) and horizon.holds(o)
    }


def _tombstone(
    calendar: CalendarRef, resource: str, iid: str, version: int, reason: Reason, now_ms: int
) -> BusyRecord:
    return busy.tombstone(calendar, resource, iid, version=version, reason=reason, now_ms=now_ms)
