"""`wedsync sla`: read delivery results, keep the SLA windows, evaluate health every
`WEDSYNC_SLA_EVALUATE_EVERY_S` (30 s) whether or not results arrive, and write:
  - a health record per integration on `wedsync.sla.health` (compacted, keyed by integration):
    the 5-minute numbers (or the middle window), the state and every alert firing;
  - each state change and each alert starting or ending on `wedsync.sla.events`;
  - Prometheus gauges per destination kind (never per integration), and consumer-group lag.

It also reads the feed's compacted `wedsync.calendar.sync_state` whole at start and then
follows it, keeping a few fields per calendar (streams/logic/calendar/health_book.py), and on
every evaluation writes each connected calendar's health record when it changed (key
`calendar:<calendar key>`; a tombstone when the calendar is disconnected), a `state_changed`
event when its status changed and `wedsync_sla_calendars{provider,status}`: a calendar whose
feed died turns `stale` here by time alone (streams/sla/calendars.py). Calendars are first
evaluated once the sync states present at start are read.

The windows are rebuilt at start by reading the last hour of `wedsync.delivery.results` (the
results topic is the log), so a restart needs no state of its own. One process reads every
partition: results are small and the windows are cheap (about 10 us a result).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams import metrics
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config
from streams.kafka.recovering import asked_again, watermarks
from streams.logic.calendar.health_book import HealthBook
from streams.logic.sla import Health, SlaWindows, Thresholds, quantile
from streams.observe import GroupLag
from streams.sla import calendars
from streams.sla.settings import SlaSettings
from streams.topics import (
    CALENDAR_SYNC_STATE,
    DELIVERY_RESULTS,
    SLA_EVENTS,
    SLA_HEALTH,
    Destination,
)

log = logging.getLogger(__name__)


class SlaAgent:
    def __init__(
        self,
        bootstrap: Kafka,
        codecs: TopicCodecs,
        settings: SlaSettings,
        *,
        group_prefixes: tuple[str, ...] = ("wedsync",),
        clock: Callable[[], float] = time.time,
        default_thresholds: Thresholds | None = None,
    ) -> None:
        """`default_thresholds` replaces the file's (or the built-in) default."""
        metrics.export("sla")  # this process's /metrics serves them
        default, per = settings.thresholds()
        default = default_thresholds or default
        self.settings = settings
        self.windows = SlaWindows(slot_s=settings.slot_s, windows=settings.windows,
                                  default=default, overrides=per)  # fmt: skip
        self.clock = clock
        self._results = codecs[DELIVERY_RESULTS]
        self._health = codecs[SLA_HEALTH]
        self._events = codecs[SLA_EVENTS]
        self._consumer = Consumer(client_config(bootstrap, {
            "group.id": "wedsync-sla",
            "enable.auto.commit": False, "fetch.wait.max.ms": settings.fetch_wait_ms,
            "log.connection.close": False,
        }))  # fmt: skip
        self._producer = Producer(client_config(bootstrap, {"linger.ms": 20,
                                   "allow.auto.create.topics": False,
                                   "log.connection.close": False}))  # fmt: skip
        self._lag = GroupLag(bootstrap, group_prefixes)
        self.ready = False
        self.last_health: dict[str, Health] = {}
        self.calendars = HealthBook()
        self._states_end: dict[int, int] = {}  # sync-state partition -> end offset at start

    def start(self) -> None:
        """Read from one hour (the longest window) back."""
        span = max(max(self.settings.windows.values()), 3600.0)
        since_ms = int((self.clock() - span) * 1000)
        parts = [TopicPartition(DELIVERY_RESULTS.name, p, since_ms)
                 for p in range(DELIVERY_RESULTS.partitions)]  # fmt: skip
        starts = asked_again(lambda: self._consumer.offsets_for_times(parts, timeout=10))
        for tp in starts:
            if tp.offset < 0:  # nothing that recent: start at the end
                tp.offset = watermarks(self._consumer, tp)[1]
        states = []  # the calendars' sync states: read whole, then followed
        for p in range(CALENDAR_SYNC_STATE.partitions):
            tp = TopicPartition(CALENDAR_SYNC_STATE.name, p)
            low, high = watermarks(self._consumer, tp)
            tp.offset = low
            states.append(tp)
            if high > low:
                self._states_end[p] = high
        self._consumer.assign([*starts, *states])

    def poll(self, max_records: int = 5000, timeout: float = 0.2) -> int:
        msgs = self._consumer.consume(max_records, timeout)
        for msg in msgs:
            if msg.error():
                continue
            if msg.topic() == CALENDAR_SYNC_STATE.name:
                self._sync_state(msg)
                continue
            if msg.value() is None:
                continue
            try:
                self.windows.add(self._results.decode(msg.value()))
            except Exception as exc:  # a result it cannot read is skipped, never fatal
                log.warning("unreadable result at %s:%s: %s", msg.partition(), msg.offset(), exc)
        if self._states_end:  # by position, as read_to_end: compaction may leave gaps
            parts = [TopicPartition(CALENDAR_SYNC_STATE.name, p) for p in self._states_end]
            for tp in self._consumer.position(parts):
                if tp.offset >= self._states_end[tp.partition]:
                    del self._states_end[tp.partition]
        return len(msgs)

    def _sync_state(self, msg: Message) -> None:
        try:
            self.calendars.apply((msg.key() or b"").decode(), msg.value())
        except Exception as exc:  # a state it cannot read is skipped, never fatal
            log.warning("unreadable sync state at %s:%s: %s", msg.partition(), msg.offset(), exc)

    @property
    def calendars_loaded(self) -> bool:
        """The sync states present at start are read (calendars are evaluated from then)."""
        return not self._states_end

    def evaluate(self) -> list[Health]:
        now = self.clock()
        healths, events = self.windows.evaluate(now)
        now_ms = int(now * 1000)
        for h in healths:
            self._publish_health(h, now_ms)
        for e in events:
            record = {
                "event_id": f"{e.integration}:{e.kind}:{e.name}:{now_ms}",
                "integration_id": e.integration, "destination": e.destination, "kind": e.kind,
                "name": e.name, "previous": e.previous, "detail": e.detail,
                "source_ts_ms": now_ms, "computed_at_ms": now_ms,
            }  # fmt: skip
            self._producer.produce(SLA_EVENTS.name, self._events.encode(record),
                                   e.integration.encode())  # fmt: skip
            if e.kind == "state_changed":
                metrics.SLA_STATE_CHANGES.labels(e.destination, e.name).inc()
                log.warning("%s (%s) is %s (was %s): %s", e.integration, e.destination, e.name,
                            e.previous, e.detail)  # fmt: skip
        if self.calendars_loaded:
            self._evaluate_calendars(now_ms)
        self._producer.poll(0)
        self._gauges(healths, now)
        self.last_health = {h.integration: h for h in healths}
        metrics.SLA_EVALUATIONS.inc()
        metrics.SLA_LAST_EVALUATION.set(now)
        return healths

    def _evaluate_calendars(self, now_ms: int) -> None:
        out = self.calendars.evaluate(now_ms)
        for h in out.health:
            self._producer.produce(SLA_HEALTH.name,
                                   self._health.encode(calendars.health_record(h, now_ms)),
                                   calendars.health_id(h.key).encode())  # fmt: skip
        for key in out.removed:  # disconnected: its compacted health record goes too
            self._producer.produce(SLA_HEALTH.name, None, calendars.health_id(key).encode())
        for c in out.changes:
            self._producer.produce(SLA_EVENTS.name,
                                   self._events.encode(calendars.event_record(c, now_ms)),
                                   calendars.health_id(c.key).encode())  # fmt: skip
            log.warning("calendar %s is %s (was %s): %s", c.key, c.status, c.previous, c.detail)
        calendars.set_gauges(self.calendars)

    def _publish_health(self, h: Health, now_ms: int) -> None:
        names = sorted(self.settings.windows, key=self.settings.windows.__getitem__)
        s = h.stats[names[len(names) // 2]]
        record = {
            "event_id": f"{h.integration}:{int(s.end_s * 1000)}", "integration_id": h.integration,
            "destination": h.destination, "window_start_ms": int(s.start_s * 1000),
            "window_end_ms": int(s.end_s * 1000), "requests": s.requests, "errors": s.errors,
            "error_rate": s.error_rate, "latency_p50_ms": s.p50_ms or 0.0,
            "latency_p95_ms": s.p95_ms or 0.0, "latency_p99_ms": s.p99_ms or 0.0,
            "availability": s.availability, "reliability_score": h.score, "status": h.state,
            "breaches": sorted(h.firing), "source_ts_ms": now_ms, "computed_at_ms": now_ms,
        }  # fmt: skip
        self._producer.produce(SLA_HEALTH.name, self._health.encode(record),
                               h.integration.encode())  # fmt: skip

    def _gauges(self, healths: list[Health], now: float) -> None:
        states: Counter[tuple[str, str]] = Counter()
        alerts: Counter[tuple[str, str]] = Counter()
        for h in healths:
            states[(h.destination, h.state)] += 1
            for kind in {f.split(":", 1)[1] for f in h.firing}:
                alerts[(h.destination, kind)] += 1
        for dest in Destination:
            d = dest.value
            for state in ("healthy", "degraded", "failing"):
                metrics.SLA_INTEGRATIONS.labels(d, state).set(states[(d, state)])
            for kind in ("latency", "error_rate", "availability", "silence"):
                metrics.SLA_ALERTS_FIRING.labels(d, kind).set(alerts[(d, kind)])
            mine = [h for h in healths if h.destination == d]
            for window in self.settings.windows:
                self._window_gauges(d, window, mine, now)

    def _window_gauges(self, dest: str, window: str, mine: list[Health], now: float) -> None:
        if not mine:
            return
        merged = self.windows.merged([h.integration for h in mine], window, now)
        error_rate = merged.errors / merged.attempts if merged.attempts else 0.0
        metrics.SLA_ERROR_RATIO.labels(dest, window).set(error_rate)
        metrics.SLA_AVAILABILITY_RATIO.labels(dest, window).set(
            min(h.stats[window].availability for h in mine)
        )
        metrics.SLA_RELIABILITY_SCORE.labels(dest, window).set(
            min(h.stats[window].score(self.windows.thresholds(h.integration)) for h in mine)
        )
        for q in (0.5, 0.95, 0.99):
            value = quantile(q, merged.buckets)
            if value is not None:
                metrics.SLA_LATENCY_SECONDS.labels(dest, window, str(q)).set(value / 1000.0)

    def run(self, stop: threading.Event) -> None:
        self.start()
        next_eval = next_lag = 0.0
        while not stop.is_set():
            self.poll()
            mono = time.monotonic()
            if mono >= next_eval:
                self.evaluate()
                self.ready = True
                next_eval = mono + self.settings.evaluate_every_s
            if mono >= next_lag:
                try:
                    self._lag.update()
                except Exception as exc:  # lag is a nicety; the broker may be busy
                    log.debug("consumer lag not read: %s", exc)
                next_lag = mono + self.settings.lag_every_s
        self._producer.flush(10)
        self._consumer.close()
