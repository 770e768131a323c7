"""SLA windows over delivery results: latency percentiles, error rate, availability, a
reliability score, alerts and health states, per integration. Pure: results and the clock go
in, health records and events come out.

Time is cut into slots of `slot_s` seconds (10 by default); a window of W seconds at time t is
the W / slot_s slots ending with the slot that holds t (so "1m" at t covers between 50 and 60
seconds back, by where t falls in its slot). A result falls in the slot of its
`completed_at_ms`. Per slot and integration the windows keep counts and a latency histogram
(`BOUNDS_MS`), so memory is bounded by slots x integrations, never by traffic.

What a result counts as (its `outcome`):
  - success: `delivered`, and `seen` for in-app (a human's screen showed it);
  - error: `retry_scheduled`, `dead_lettered`, `rejected`, `paused` (the attempt failed);
  - neither: `skipped_duplicate`, `skipped_stale`, `read` (no call was made, or not a delivery).
Latency is commit-to-provider: `completed_at_ms - source_ts_ms` of each success.

Per window:
  - error rate = errors / (successes + errors);
  - availability = share of the window's time the integration was up, a slot being down when
    it had attempts and none succeeded (time-based, like an uptime SLA; a quiet slot is up);
  - latency p50/p95/p99, interpolated within histogram buckets as Prometheus'
    `histogram_quantile` does;
  - reliability score (0-100) = 100 x availability x (1 - error rate) x latency factor, the
    factor being min(1, threshold / p99).
Alerts (per window, thresholds per integration): `latency` (p99 over `latency_p99_ms`),
`error_rate` (over `error_rate`), both only with at least `min_requests` attempts in the window;
`availability` (under `availability`); `silence` (no attempt in the last 5 minutes from an
integration that averaged at least `silence_min_per_min` attempts a minute in the hour before:
silence from one that should be busy is itself a signal; not for in-app, whose results are
users' `seen` marks and stop when they log off).
Health state, from the shortest window so that it recovers as fast as it breaks: `failing`
when at least half of its attempts failed, `degraded` when any of its alerts fires or the
integration went silent, else `healthy`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BOUNDS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000,
    10_000, 30_000, 60_000, 300_000, 3_600_000,
)  # fmt: skip
WINDOWS: dict[str, float] = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}
SUCCESS = frozenset({"delivered", "seen"})
ERROR = frozenset({"retry_scheduled", "dead_lettered", "rejected", "paused"})
SILENCE_RECENT_S = 300.0
HEALTHY, DEGRADED, FAILING = "healthy", "degraded", "failing"


@dataclass(frozen=True)
class Thresholds:
    latency_p99_ms: float = 500.0
    error_rate: float = 0.01
    availability: float = 0.999
    min_requests: int = 10
    silence_min_per_min: float = 2.0
    failing_error_rate: float = 0.5


@dataclass
class Slot:
    successes: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS_MS) + 1))

    @property
    def attempts(self) -> int:
        return self.successes + self.errors

    def add(self, other: Slot) -> None:
        self.successes += other.successes
        self.errors += other.errors
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n


def quantile(q: float, buckets: list[int]) -> float | None:
    """The q-quantile of a histogram (counts per `BOUNDS_MS` bucket, then +Inf), interpolated
    linearly inside the bucket; the +Inf bucket answers its lower bound. None when empty."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i == len(BOUNDS_MS):
                return BOUNDS_MS[-1]
            lower = BOUNDS_MS[i - 1] if i else 0.0
            return lower + (BOUNDS_MS[i] - lower) * (rank - seen) / n
        seen += n
    return BOUNDS_MS[-1]


@dataclass(frozen=True)
class WindowStats:
    window: str
    start_s: float
    end_s: float
    successes: int
    errors: int
    availability: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def requests(self) -> int:
        return self.successes + self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def score(self, t: Thresholds) -> float:
        latency = 1.0
        if self.p99_ms and self.p99_ms > t.latency_p99_ms:
            latency = t.latency_p99_ms / self.p99_ms
        return round(100.0 * self.availability * (1.0 - self.error_rate) * latency, 3)

    def alerts(self, t: Thresholds) -> set[str]:
        out = set()
        if self.requests >= t.min_requests:
            if self.p99_ms is not None and self.p99_ms > t.latency_p99_ms:
                out.add("latency")
            if self.error_rate > t.error_rate:
                out.add("error_rate")
        if self.availability < t.availability:
            out.add("availability")
        return out


@dataclass
class Integration:
    destination: str
    slots: dict[int, Slot] = field(default_factory=dict)
    state: str = HEALTHY
    firing: set[str] = field(default_factory=set)  # "<window>:<alert>"


@dataclass(frozen=True)
class Health:
    """One integration's evaluation (its `window` numbers, its state and what fires)."""

    integration: str
    destination: str
    stats: dict[str, WindowStats]
    state: str
    firing: frozenset[str]
    score: float


@dataclass(frozen=True)
class Event:
    """A health-state change, or an alert starting or ending, for one integration."""

    integration: str
    destination: str
    kind: str  # "state_changed" | "alert_firing" | "alert_resolved"
    name: str  # the new state, or "<window>:<alert>"
    previous: str | None  # the state before (state_changed)
    detail: str


class SlaWindows:
    def __init__(
        self,
        *,
        slot_s: float = 10.0,
        windows: Mapping[str, float] = WINDOWS,
        default: Thresholds = Thresholds(),
        overrides: Mapping[str, Thresholds] | None = None,
    ) -> None:
        self.slot_s = slot_s
        self.windows = dict(windows)
        self.default = default
        self.overrides = dict(overrides or {})
        self.integrations: dict[str, Integration] = {}
        self._horizon_slots = int(max(max(self.windows.values()), 3600.0) / slot_s) + 1

    def thresholds(self, integration: str) -> Thresholds:
        return self.overrides.get(integration, self.default)

    def _slot(self, t_s: float) -> int:
        return int(t_s // self.slot_s)

    def add(self, result: Mapping[str, Any]) -> None:
        """Fold one delivery result; ignored when it is neither a success nor an error."""
        outcome = result["outcome"]
        if outcome not in SUCCESS and outcome not in ERROR:
            return
        if outcome == "seen" and result["destination"] != "inapp":
            return
        key = result.get("integration_id") or result["destination"]
        integ = self.integrations.get(key)
        if integ is None:
            integ = self.integrations[key] = Integration(result["destination"])
        slot = integ.slots.get(k := self._slot(result["completed_at_ms"] / 1000.0))
        if slot is None:
            slot = integ.slots[k] = Slot()
        if outcome in SUCCESS:
            slot.successes += 1
            latency = max(0.0, float(result["completed_at_ms"] - result["source_ts_ms"]))
            slot.buckets[bisect.bisect_left(BOUNDS_MS, latency)] += 1
        else:
            slot.errors += 1

    def _span(self, window: str, now_s: float) -> range:
        """The slots of `window` at `now_s`."""
        last = self._slot(now_s)
        return range(last - int(self.windows[window] / self.slot_s) + 1, last + 1)

    def stats(self, key: str, window: str, now_s: float) -> WindowStats:
        integ = self.integrations[key]
        span = self._span(window, now_s)
        total, down = Slot(), 0
        for k in span:
            slot = integ.slots.get(k)
            if slot is None:
                continue
            total.add(slot)
            if slot.attempts and not slot.successes:
                down += 1
        return WindowStats(
            window, span.start * self.slot_s, span.stop * self.slot_s, total.successes,
            total.errors, 1.0 - down / len(span), quantile(0.5, total.buckets),
            quantile(0.95, total.buckets), quantile(0.99, total.buckets),
        )  # fmt: skip

    def merged(self, keys: Iterable[str], window: str, now_s: float) -> Slot:
        """The counts and latency histogram of several integrations over `window` (a
        destination kind's figures, for the per-kind gauges)."""
        span, total = self._span(window, now_s), Slot()
        for key in keys:
            slots = self.integrations[key].slots if key in self.integrations else {}
            for k in span:
                if (slot := slots.get(k)) is not None:
                    total.add(slot)
        return total

    def silent(self, key: str, now_s: float) -> bool:
        """No attempt in the last 5 minutes after an hour busy enough to expect some. Never
        for in-app: its successes are `seen` marks, and users logging off is not a fault."""
        integ, t = self.integrations[key], self.thresholds(key)
        if integ.destination == "inapp":
            return False
        last = self._slot(now_s)
        recent = last - int(SILENCE_RECENT_S / self.slot_s) + 1
        before = recent - int(3600.0 / self.slot_s)
        busy = sum(s.attempts for k, s in integ.slots.items() if before <= k < recent)
        quiet = not any(s.attempts for k, s in integ.slots.items() if k >= recent)
        return quiet and busy >= t.silence_min_per_min * 60.0

    def evaluate(self, now_s: float) -> tuple[list[Health], list[Event]]:
        """Every integration's health now, and what changed since the last evaluation."""
        healths: list[Health] = []
        events: list[Event] = []
        shortest = min(self.windows, key=self.windows.__getitem__)
        for key, integ in list(self.integrations.items()):
            t = self.thresholds(key)
            stats = {w: self.stats(key, w, now_s) for w in self.windows}
            firing = {f"{w}:{a}" for w, s in stats.items() for a in s.alerts(t)}
            if self.silent(key, now_s):
                firing.add("5m:silence")
            short = stats[shortest]
            if short.requests and short.error_rate >= t.failing_error_rate:
                state = FAILING
            elif any(f.startswith(f"{shortest}:") for f in firing) or "5m:silence" in firing:
                state = DEGRADED
            else:
                state = HEALTHY
            events += self._changes(key, integ, state, firing, stats)
            integ.state, integ.firing = state, firing
            healths.append(Health(key, integ.destination, stats, state, frozenset(firing),
                                  short.score(t)))  # fmt: skip
        self._expire(now_s)
        return healths, events

    def _changes(self, key: str, integ: Integration, state: str, firing: set[str],
                 stats: dict[str, WindowStats]) -> Iterable[Event]:  # fmt: skip
        d = integ.destination
        if state != integ.state:
            yield Event(key, d, "state_changed", state, integ.state, _describe(stats))
        for name in sorted(firing - integ.firing):
            yield Event(key, d, "alert_firing", name, None, _describe(stats))
        for name in sorted(integ.firing - firing):
            yield Event(key, d, "alert_resolved", name, None, _describe(stats))

    def _expire(self, now_s: float) -> None:
        oldest = self._slot(now_s) - self._horizon_slots
        for key, integ in list(self.integrations.items()):
            for k in [k for k in integ.slots if k < oldest]:
                del integ.slots[k]
            if not integ.slots and integ.state == HEALTHY and not integ.firing:
                del self.integrations[key]


def _describe(stats: Mapping[str, WindowStats]) -> str:
    parts = []
    for w, s in stats.items():
        p99 = "-" if s.p99_ms is None else f"{s.p99_ms:.0f}"
        parts.append(f"{w}: {s.requests} attempts, error rate {s.error_rate:.3f}, "
                     f"availability {s.availability:.4f}, p99 {p99} ms")  # fmt: skip
    return "; ".join(parts)
