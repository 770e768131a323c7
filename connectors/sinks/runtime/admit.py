"""Admission: whether, when and in which turn a consumed record may go to its provider.

`Admission` holds what decides it, all on the event loop's thread:

- retries not yet due (`hold`, then `due` once their time came) and records parked while
  their integration is paused (`parked`; `pause`/`resume`, and `released` and `probes` for
  the runtime's loop to start again: every `pause_probe_s` the oldest parked record of each
  paused integration is tried with a refreshed credential);
- targets disabled after their provider said they are gone (`disabled`);
- one breaker per target (`breaker`), one token bucket per rate-limit key (`rate_wait`), one
  semaphore per rate-limit key for the connector's concurrency (`semaphore`);
- the turn: one record at a time per (target, aggregate), in arrival order (`Order`).

`drop(tps)` forgets what is held or parked for partitions handed to another member.
Nothing here raises or does I/O; `gauges` sets the admission gauges (once per commit
interval).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterator

from streams import metrics
from streams.logic.ratelimit import TokenBucket
from streams.logic.retry import Breaker

from connectors.sinks.base import Limits
from connectors.sinks.envelope import Item
from connectors.sinks.runtime.offsets import TP
from connectors.sinks.settings import SinkSettings

log = logging.getLogger("connectors.sinks.runtime")


class Order:
    """One holder at a time per key, the others in arrival order. A key's entry is dropped
    when nobody holds or waits for it (aggregates are unbounded); a free key costs a dict
    entry and no lock."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    async def acquire(self, key: Hashable) -> None:
        waiting = self._waiting.get(key)
        if waiting is None:
            self._waiting[key] = deque()
            return
        turn = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.cancelled():
                waiting.remove(turn)
            else:  # handed the turn just as it was cancelled: pass it on
                self.release(key)
            raise

    def release(self, key: Hashable) -> None:
        waiting = self._waiting[key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._waiting[key]


class Admission:
    def __init__(self, settings: SinkSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.order = Order()
        self.breakers: dict[str, Breaker] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.paused: set[str] = set()
        self.parked: dict[str, deque[Item]] = defaultdict(deque)
        self.disabled: set[str] = set()
        self.held: list[tuple[int, int, Item]] = []  # (due ms, seq, item) heap
        self._seq = 0
        self._last_probe = 0.0

    # ---- held retries and parked records ---------------------------------------------------
    def hold(self, item: Item, due_ms: int) -> None:
        self._seq += 1
        heapq.heappush(self.held, (due_ms, self._seq, item))

    def due(self, now_ms: int) -> Iterator[Item]:
        """The held records whose time came, earliest first (each taken off as yielded)."""
        while self.held and self.held[0][0] <= now_ms:
            yield heapq.heappop(self.held)[2]

    def pause(self, credential_key: str) -> bool:
        """Pause the integration; True when it was not paused already (tell its owner)."""
        if credential_key in self.paused:
            return False
        self.paused.add(credential_key)
        self._last_probe = time.monotonic()
        log.warning("integration %s paused: its credential was refused twice; reconnect it "
                    "(its records wait and resume in order)", credential_key)  # fmt: skip
        return True

    def resume(self, credential_key: str) -> None:
        self.paused.discard(credential_key)
        log.info("integration %s resumed", credential_key)

    def released(self) -> Iterator[Item]:
        """The parked records of integrations resumed since, in order."""
        for key in [k for k, q in self.parked.items() if q and k not in self.paused]:
            queue = self.parked.pop(key, deque())
            while queue:
                yield queue.popleft()

    def probes(self) -> list[Item]:
        """Every `pause_probe_s`: the oldest parked record of each paused integration."""
        if not self.paused or time.monotonic() - self._last_probe < self.settings.pause_probe_s:
            return []
        self._last_probe = time.monotonic()
        return [self.parked[k].popleft() for k in list(self.paused) if self.parked.get(k)]

    def drop(self, tps: set[TP]) -> None:
        """Forget what is held or parked for partitions that went to another member."""
        self.held = [h for h in self.held if (h[2].topic, h[2].partition) not in tps]
        heapq.heapify(self.held)
        for key, queue in self.parked.items():
            self.parked[key] = deque(i for i in queue if (i.topic, i.partition) not in tps)

    # ---- limits ----------------------------------------------------------------------------
    def rate_wait(self, key: str, limits: Limits) -> float:
        """0.0 when a token was taken for this call, else the seconds until one is free."""
        if not limits.rate_per_s:
            return 0.0
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(limits.rate_per_s, limits.burst, self.clock())
        return bucket.try_acquire(self.clock())

    def semaphore(self, key: str, limits: Limits) -> asyncio.Semaphore:
        sem = self.semaphores.get(key)
        if sem is None:
            sem = self.semaphores[key] = asyncio.Semaphore(limits.concurrency or 1_000_000)
        return sem

    def breaker(self, target: str) -> Breaker:
        breaker = self.breakers.get(target)
        if breaker is None:
            breaker = self.breakers[target] = Breaker(
                self.settings.breaker_threshold, self.settings.breaker_cooldown_s
            )
        return breaker

    def gauges(self, kind: str) -> None:
        metrics.SINK_BREAKERS_OPEN.labels(kind).set(sum(b.is_open for b in self.breakers.values()))
        metrics.SINK_PAUSED_INTEGRATIONS.labels(kind).set(len(self.paused))
        metrics.SINK_DISABLED_TARGETS.labels(kind).set(len(self.disabled))
        metrics.SINK_HELD.labels(kind).set(
            len(self.held) + sum(len(q) for q in self.parked.values())
        )
