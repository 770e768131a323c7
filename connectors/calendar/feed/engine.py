"""The calendar feed's loop: which calendar to fetch when, the fetch, the diff, one atomic
write per round (see the package docstring).

`CalendarFeed` is driven by its process (`streams/app/calendar_feed.py`): `connect` with the
connected calendars whenever the routing state changes, `push` for every provider
notification naming one of its calendars, and `tick` on a timer and after pushes. Each tick
starts the fetches due (at most `concurrency` at a time, one per calendar) as tasks.

A round: fetch since the stored cursor (or in full: first sync, a refused cursor, the
monthly re-baseline, a new horizon), diff it against the known intervals, and write busy
records + notices, then the new sync state, with `RoundWriter.write`.
Only after the write does the in-memory state move on; a failed write is a failed round,
retried with backoff from the same cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from streams import metrics
from streams.logic.calendar import busy as busy_mod
from streams.logic.calendar import health
from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.differ import Horizon, diff
from streams.logic.calendar.echo import OwnedIndex
from streams.logic.calendar.notices import degraded_event, drift_event
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason
from streams.logic.calendar.schedule import Intervals, Outcome, Scheduler
from streams.models import DomainEvent

from connectors.calendar.feed.connected import Connected
from connectors.calendar.feed.providers import Fetch
from connectors.calendar.feed.sync_state import CalendarSync
from connectors.calendar.feed_errors import (
    CalendarGone,
    FullResyncRequired,
    ReauthRequired,
    Throttled,
)

log = logging.getLogger("wedsync.calendar.feed")

DAY_MS = 24 * 3600 * 1000


class RoundWriter(Protocol):
    async def write(
        self,
        records: list[BusyRecord],
        events: list[DomainEvent],
        state: CalendarSync | None,
        key: str,
    ) -> None:
        """Write a round (records before state); `state` None forgets the calendar."""
        ...


@dataclasses.dataclass(frozen=True)
class FeedConfig:
    horizon_back_ms: int = DAY_MS
    horizon_ahead_ms: int = 548 * DAY_MS  # 18 months: weddings are booked that far out
    rebaseline_ms: int = 30 * DAY_MS
    concurrency: int = 8
    per_account: int = 2  # rounds at once per integration (CALENDAR_SYNC.md 5.7)
    soon_ms: int = health.SOON_MS  # "a wedding soon": shorter intervals, degraded notices
    reauth_retry_ms: int = 15 * 60 * 1000  # a refused credential is tried again this often
    intervals: Intervals = dataclasses.field(default_factory=Intervals)


class CalendarFeed:
    def __init__(
        self,
        fetch: Fetch,
        writer: RoundWriter,
        *,
        owned: OwnedIndex | None = None,
        config: FeedConfig | None = None,
        scheduler: Scheduler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fetch = fetch
        self.writer = writer
        self.owned = owned or OwnedIndex()
        self.config = config or FeedConfig()
        self.scheduler = scheduler or Scheduler()
        self.clock = clock
        self.calendars: dict[str, Connected] = {}
        self.sync: dict[str, CalendarSync] = {}
        self.push_live: set[str] = set()  # calendars with a live push channel
        self.channel_index: dict[str, str] = {}  # channel / subscription id -> calendar key
        self._of_account: dict[tuple[str, str], set[str]] = {}  # (provider, integration) -> keys
        self.on_disconnect: Callable[[CalendarSync], None] | None = None  # channel manager
        self.reasons: dict[str, Reason] = {}
        self.pushed_at: dict[str, float] = {}  # first push of a pending burst (s)
        self.tasks: set[asyncio.Task[None]] = set()
        # rounds in flight per account (integration: one Google user, one Graph mailbox, one
        # CalDAV login): Graph allows 4 concurrent requests per mailbox, iCloud's limits are
        # unknown; a vendor with many calendars gets `per_account` at a time
        self.running_per_account: dict[str, int] = {}
        self.wake = asyncio.Event()
        self.rounds = 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- inputs -------------------------------------------------------------------------
    def load(self, states: Iterable[CalendarSync]) -> None:
        """The sync states read back at start (before the first `connect`)."""
        for state in states:
            self.sync[state.key] = state

    async def connect(self, connected: Mapping[str, Connected]) -> None:
        """The calendars connected now; new ones get a first round at once (on a start,
        that round catches up with whatever changed while the feed was down), removed ones
        have their intervals tombstoned and their sync state forgotten."""
        now = self.now_ms()
        for key, item in connected.items():
            self.calendars[key] = item
            account = (item.calendar.provider, item.calendar.integration_id)
            self._of_account.setdefault(account, set()).add(key)
            interval = self._interval(key)
            state = self.sync.get(key)
            if state is None:
                self.sync[key] = CalendarSync(
                    key, added_ms=now, status_since_ms=now, interval_ms=interval
                )
            self.scheduler.add(key, now, interval)
            self.scheduler.set_interval(key, interval)  # push went live or died, wedding soon
        for key in [k for k in self.calendars if k not in connected]:
            await self._disconnect(key)
        self.wake.set()

    def calendars_of(self, provider: str, integration_id: str) -> list[str]:
        """The keys of the connected calendars of one account (one integration)."""
        return sorted(self._of_account.get((provider, integration_id), ()))

    def push(self, key: str, received_at_s: float | None = None) -> bool:
        """A provider notification for calendar `key`; False when it is not ours."""
        if not self.scheduler.push(key, self.now_ms()):
            return False
        self.reasons[key] = "push"
        self.pushed_at.setdefault(key, received_at_s if received_at_s is not None else self.clock())
        self.wake.set()
        return True

    # ---- the loop -------------------------------------------------------------------------
    def tick(self) -> int:
        """Start the fetches due now; the number started."""
        free = self.config.concurrency - len(self.tasks)
        picked: dict[str, int] = {}

        def allow(key: str) -> bool:  # at most per_account rounds per account, these included
            item = self.calendars.get(key)
            if item is None:
                return True
            account = item.calendar.integration_id
            running = self.running_per_account.get(account, 0) + picked.get(account, 0)
            if running >= self.config.per_account:
                return False
            picked[account] = picked.get(account, 0) + 1
            return True

        due = self.scheduler.due(self.now_ms(), free, allow=allow)
        for key in due:
            account = self.calendars[key].calendar.integration_id
            self.running_per_account[account] = self.running_per_account.get(account, 0) + 1
            task = asyncio.create_task(self._round(key), name=f"calendar-round:{key}")
            self.tasks.add(task)
            task.add_done_callback(self._finished)
        return len(due)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("calendar round crashed", exc_info=task.exception())

    def seconds_to_next(self) -> float:
        due = self.scheduler.next_due_ms()
        if due is None:
            return 1.0
        return max(0.0, min(1.0, (due - self.now_ms()) / 1000))

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; then wait for the rounds in flight."""
        while not stop.is_set():
            self.tick()
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.seconds_to_next())
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Return once no round is running (tests, benchmarks)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    # ---- one round ------------------------------------------------------------------------
    async def _round(self, key: str) -> None:
        item = self.calendars.get(key)
        if item is None:
            self.scheduler.remove(key)
            return
        account = item.calendar.integration_id
        try:
            await self._round_of(key, item)
        finally:
            left = self.running_per_account.get(account, 1) - 1
            if left > 0:
                self.running_per_account[account] = left
            else:
                self.running_per_account.pop(account, None)

    async def _round_of(self, key: str, item: Connected) -> None:
        calendar, state = item.calendar, self.sync[key]
        reason = self.reasons.pop(key, "poll" if calendar.provider == "caldav" else "reconcile")
        pushed = self.pushed_at.pop(key, None)
        outcome: Outcome = "ok"
        retry_ms = 0
        try:
            await self._fetch_and_write(calendar, state, reason, pushed)
        except Throttled as exc:  # runs again once the wait is over, for the same reason
            outcome, retry_ms = "throttled", int(exc.retry_after_s * 1000)
            self._count(calendar, "throttled")
            self.reasons.setdefault(key, reason)
            if pushed is not None:
                self.pushed_at.setdefault(key, pushed)
        except ReauthRequired as exc:  # tried again after reauth_retry_ms, like a throttle
            outcome, retry_ms = "throttled", self.config.reauth_retry_ms
            self._count(calendar, "reauth")
            log.warning("calendar %s: credentials refused (%s); reconnect needed", key, exc)
            await self._set_flags(calendar, reauth=True)
        except CalendarGone as exc:
            outcome, retry_ms = "throttled", self.config.reauth_retry_ms
            self._count(calendar, "gone")
            log.warning("calendar %s: gone (%s)", key, exc)
            await self._gone(calendar)
        except Exception as exc:
            outcome = "failed"
            self._count(calendar, "failed")
            log.warning("calendar %s: round failed: %s", key, exc)
            self.sync[key].failures += 1
        finally:
            self.scheduler.done(key, self.now_ms(), outcome, retry_after_ms=retry_ms)
        await self._health(key)

    async def _fetch_and_write(
        self, calendar: CalendarRef, state: CalendarSync, reason: Reason, pushed: float | None
    ) -> None:
        now = self.now_ms()
        full = (
            state.cursor is None
            or not state.window_end_ms
            or now - state.baseline_at_ms > self.config.rebaseline_ms
        )
        if full and state.cursor is not None:
            reason = "rebaseline"
        window = self._window(now) if full else (state.window_start_ms, state.window_end_ms)
        kind = "full" if full else "incremental"
        try:
            round_ = await self.fetch(calendar, None if full else state.cursor, window, reason)
        except FullResyncRequired:
            self._count(calendar, "full_resync", kind)
            full, kind, window = True, "full", self._window(now)
            round_ = await self.fetch(calendar, None, window, "full_resync")
        self._count(calendar, "ok", kind)
        await self._write_round(calendar, state, round_, window, full, now)
        if pushed is not None:
            metrics.CALENDAR_CHANGE_TO_FETCH_SECONDS.observe(max(0.0, self.clock() - pushed))

    async def _write_round(
        self,
        calendar: CalendarRef,
        state: CalendarSync,
        round_: FetchRound,
        window: tuple[int, int],
        full: bool,
        now: int,
    ) -> None:
        version = state.version + 1
        out = diff(
            state.known, round_, self.owned, version=version, now_ms=now, horizon=Horizon(*window)
        )
        new = dataclasses.replace(
            state,
            cursor=round_.cursor,
            known=out.known,
            version=version,
            window_start_ms=window[0],
            window_end_ms=window[1],
            baseline_at_ms=now if full else state.baseline_at_ms,
            last_success_ms=now,
            reauth=False,
            gone=False,
            failures=0,
        )
        events = [drift_event(d, version=version, now_ms=now) for d in out.drift]
        await self.writer.write(out.records, events, new, calendar.key)
        self.sync[calendar.key] = new
        self.rounds += 1
        metrics.CALENDAR_ECHOES.inc(out.echoes)
        metrics.CALENDAR_DRIFT.inc(len(out.drift))
        for record in out.records:
            metrics.CALENDAR_INTERVALS.labels(record["state"]).inc()

    # ---- calendars leaving, failing ----------------------------------------------------------
    async def _disconnect(self, key: str) -> None:
        item = self.calendars.pop(key)
        account = (item.calendar.provider, item.calendar.integration_id)
        keys = self._of_account.get(account, set())
        keys.discard(key)
        if not keys:
            self._of_account.pop(account, None)
        self.scheduler.remove(key)
        state = self.sync.pop(key, None)
        if state is None:
            return
        if self.on_disconnect is not None:  # its channels are stopped before they are forgotten
            self.on_disconnect(state)
        await self.writer.write(self._tombstones(item.calendar, state), [], None, key)

    async def _gone(self, calendar: CalendarRef) -> None:
        state = self.sync[calendar.key]
        tombstones = self._tombstones(calendar, state)
        new = dataclasses.replace(
            state, known=type(state.known)(), gone=True, version=state.version + 1
        )
        await self.writer.write(tombstones, [], new, calendar.key)
        self.sync[calendar.key] = new

    async def _set_flags(self, calendar: CalendarRef, *, reauth: bool) -> None:
        state = self.sync[calendar.key]
        if state.reauth == reauth:
            return
        new = dataclasses.replace(state, reauth=reauth)
        await self.writer.write([], [], new, calendar.key)
        self.sync[calendar.key] = new

    def _tombstones(self, calendar: CalendarRef, state: CalendarSync) -> list[BusyRecord]:
        now, version = self.now_ms(), state.version + 1
        return [
            busy_mod.tombstone(
                calendar, resource, iid, version=version, reason="reconcile", now_ms=now
            )
            for resource, ids in state.known.intervals.items()
            for iid in ids
        ]

    # ---- health --------------------------------------------------------------------------------
    async def _health(self, key: str) -> None:
        item, state = self.calendars.get(key), self.sync.get(key)
        if item is None or state is None:
            return
        now = self.now_ms()
        interval = self._interval(key)
        status = health.status(
            now_ms=now,
            interval_ms=interval,
            last_success_ms=state.last_success_ms,
            push_live=key in self.push_live,
            reauth=state.reauth,
            gone=state.gone,
            added_ms=state.added_ms,
        )
        if status == state.status:
            if interval != state.interval_ms:  # the SLA agent's staleness clock moved
                new = dataclasses.replace(state, interval_ms=interval)
                await self.writer.write([], [], new, key)
                self.sync[key] = new
            return
        new = dataclasses.replace(state, status=status, status_since_ms=now, interval_ms=interval)
        events = []
        # a refused credential is always told (the vendor must act; cal.com's users were
        # never told); staleness only when a wedding is close enough to matter
        if status == "reauth_required" or (
            status in health.DEGRADED and item.soon(now, self.config.soon_ms)
        ):
            events.append(
                degraded_event(item.calendar, status, now, version=new.version, now_ms=now)
            )
        await self.writer.write([], events, new, key)
        self.sync[key] = new

    async def check_health(self) -> None:
        """Re-evaluate every calendar's status (a calendar can go stale without a round)."""
        for key in list(self.calendars):
            await self._health(key)
        counts: dict[tuple[str, str], int] = {}
        for key, item in self.calendars.items():
            state = self.sync.get(key)
            if state is not None:
                label = (item.calendar.provider, state.status)
                counts[label] = counts.get(label, 0) + 1
        for provider in ("google", "graph", "caldav"):
            for status in health.STATUSES:
                metrics.CALENDAR_STATUS.labels(provider, status).set(
                    counts.get((provider, status), 0)
                )

    # ---- helpers -------------------------------------------------------------------------------
    def _interval(self, key: str) -> int:
        item = self.calendars[key]
        soon = item.soon(self.now_ms(), self.config.soon_ms)
        push = item.calendar.provider != "caldav" and key in self.push_live
        return self.config.intervals.of(push=push, soon=soon)

    def _window(self, now: int) -> tuple[int, int]:
        return now - self.config.horizon_back_ms, now + self.config.horizon_ahead_ms

    def _count(self, calendar: CalendarRef, outcome: str, kind: str = "incremental") -> None:
        metrics.CALENDAR_FETCHES.labels(calendar.provider, kind, outcome).inc()
