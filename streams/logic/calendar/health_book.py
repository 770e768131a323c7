"""Every connected calendar's sync health as the SLA agent sees it (CALENDAR_SYNC.md §5.8).

The feed writes each calendar's sync state to the compacted `wedsync.calendar.sync_state`
after every round; the SLA agent reads that topic whole at start and then follows it.
`parse` keeps the few fields health needs (`Seen`: never the `known` busy map, so memory
stays a few hundred bytes a calendar); `HealthBook.evaluate(now_ms)` computes every
calendar's status with the feed's own `health.status`, so a calendar whose feed died or
stopped fetching turns `stale` by time alone, with no new sync state.

Contract of `evaluate`:
  - `health`: the calendars whose health record differs from the last one returned (new,
    status changed, or a new sync state moved its last success, interval or push): the
    agent writes these to `wedsync.sla.health`, not every calendar on every tick;
  - `changes`: one `StatusChange` per calendar whose status differs from the one before
    (the first time a calendar is seen, "before" is the status its feed last wrote, so a
    restart of the agent tells nothing new unless the status really moved);
  - `removed`: calendars tombstoned (disconnected) since the last evaluation that had a
    health record: the agent writes a tombstone for each.
A record written before the feed told `interval_ms` gets the interval the feed would have
used (reconcile with a live push channel, poll without; no wedding-soon shortening).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from streams.logic.calendar import health
from streams.logic.calendar.health import Status
from streams.logic.calendar.schedule import Intervals

PROVIDERS = ("google", "graph", "caldav")
Overall = Literal["healthy", "degraded", "failing"]
_DEFAULT_INTERVALS = Intervals()


@dataclass(frozen=True, slots=True)
class Seen:
    """What one sync state says that health needs."""

    key: str
    provider: str
    interval_ms: int | None  # None: written before the feed wrote its interval
    last_success_ms: int | None
    added_ms: int
    reauth: bool
    gone: bool
    push_until_ms: int  # the latest expiry among its active push channels; 0: none
    feed_status: Status
    feed_status_since_ms: int

    def push_live(self, now_ms: int) -> bool:
        return self.push_until_ms > now_ms

    def interval(self, now_ms: int) -> int:
        if self.interval_ms is not None:
            return self.interval_ms
        push = self.provider != "caldav" and self.push_live(now_ms)
        return _DEFAULT_INTERVALS.of(push=push, soon=False)


def _int(value: object, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def parse(raw: bytes) -> Seen:
    """The health fields of a sync state (JSON, `CalendarSync.to_bytes`); ValueError when
    it is not one."""
    body = json.loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        raise ValueError("not a calendar sync state")
    key: str = body["key"]
    status = body.get("status")
    interval = body.get("interval_ms")
    last = body.get("last_success_ms")
    push_until = 0
    for channel in body.get("channels") or []:
        if isinstance(channel, dict) and channel.get("state") == "active":
            push_until = max(push_until, _int(channel.get("expires_at_ms")))
    return Seen(
        key=key,
        provider=key.split(":", 1)[0],
        interval_ms=_int(interval) if _int(interval) > 0 else None,
        last_success_ms=_int(last) if isinstance(last, int | float) else None,
        added_ms=_int(body.get("added_ms")),
        reauth=bool(body.get("reauth")),
        gone=bool(body.get("gone")),
        push_until_ms=push_until,
        feed_status=status if status in health.STATUSES else "polling_only",
        feed_status_since_ms=_int(body.get("status_since_ms")),
    )


def overall(provider: str, status: Status) -> Overall:
    """The integration-style state of a calendar status: polling is normal for CalDAV and
    degraded for a push provider; stale, refused or gone calendars leave the vendor without
    double-booking protection."""
    if status == "healthy" or (status == "polling_only" and provider == "caldav"):
        return "healthy"
    return "degraded" if status == "polling_only" else "failing"


@dataclass(frozen=True, slots=True)
class CalendarHealth:
    key: str
    provider: str
    status: Status
    since_ms: int
    last_success_ms: int | None
    interval_ms: int
    push_live: bool

    @property
    def overall(self) -> Overall:
        return overall(self.provider, self.status)


@dataclass(frozen=True, slots=True)
class StatusChange:
    key: str
    provider: str
    status: Status
    previous: Status
    detail: str


@dataclass
class Evaluation:
    health: list[CalendarHealth] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class HealthBook:
    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}
        self.reported: dict[str, CalendarHealth] = {}
        self._removed: set[str] = set()

    def apply(self, key: str, raw: bytes | None) -> None:
        """A sync-state record (key, value); a None value (tombstone) removes the calendar."""
        if raw is None:
            self.seen.pop(key, None)
            if self.reported.pop(key, None) is not None:
                self._removed.add(key)
            return
        seen = parse(raw)
        self.seen[seen.key] = seen
        self._removed.discard(seen.key)

    def evaluate(self, now_ms: int) -> Evaluation:
        out = Evaluation(removed=sorted(self._removed))
        self._removed.clear()
        for key, seen in self.seen.items():
            before = self.reported.get(key)
            h = self._health(seen, before, now_ms)
            previous = before.status if before is not None else seen.feed_status
            if h.status != previous:
                out.changes.append(StatusChange(key, seen.provider, h.status, previous,
                                                _detail(seen, now_ms)))  # fmt: skip
            if h != before:
                out.health.append(h)
                self.reported[key] = h
        return out

    def counts(self) -> Counter[tuple[str, Status]]:
        """Calendars per (provider, status), of the last evaluation."""
        return Counter((h.provider, h.status) for h in self.reported.values())

    @staticmethod
    def _health(seen: Seen, before: CalendarHealth | None, now_ms: int) -> CalendarHealth:
        interval = seen.interval(now_ms)
        push_live = seen.push_live(now_ms)
        status = health.status(now_ms=now_ms, interval_ms=interval,
                               last_success_ms=seen.last_success_ms, push_live=push_live,
                               reauth=seen.reauth, gone=seen.gone,
                               added_ms=seen.added_ms)  # fmt: skip
        told = status == seen.feed_status  # the feed's own `since` when it said so itself
        if before is None:
            since = seen.feed_status_since_ms if told else now_ms
        elif before.status == status:
            since = before.since_ms
        elif told and seen.feed_status_since_ms > before.since_ms:
            since = seen.feed_status_since_ms
        else:
            since = now_ms
        return CalendarHealth(seen.key, seen.provider, status, since, seen.last_success_ms,
                              interval, push_live)  # fmt: skip


def _detail(seen: Seen, now_ms: int) -> str:
    since = seen.last_success_ms
    success = "never fetched" if since is None else f"last success {(now_ms - since) // 1000} s ago"
    push = "push live" if seen.push_live(now_ms) else "no live push"
    flags = "".join((", credential refused" if seen.reauth else "",
                     ", calendar gone" if seen.gone else ""))  # fmt: skip
    return f"{success}, interval {seen.interval(now_ms) // 1000} s, {push}{flags}"
