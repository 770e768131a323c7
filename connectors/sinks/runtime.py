"""The one sink loop: consume -> decide -> deliver -> record -> commit / retry / dead-letter.

`SinkRuntime(connector, ...)` runs one destination kind. It reads `wedsync.deliver.<kind>`
and `wedsync.deliver.<kind>.retry` in the consumer group `wedsync-sink-<kind>` (more
processes share the partitions) and, for each record:

1. asks the ledger (`streams.logic.ledger`): already processed (a lost commit), already
   delivered (a copy), or stale (a newer version reached this target) -> record and skip;
2. holds a retry until it is due, parks it while its integration is paused, dead-letters it
   at once when its target was disabled, reschedules it while the target's breaker is open
   or its rate limit would make it wait longer than `max_rate_wait_s`;
3. delivers it (concurrently: `concurrency` per process, `Limits` per rate-limit key, in
   order per target and aggregate), translating exceptions once into an `Answer`; a REAUTH
   answer gets exactly one more call with a refreshed credential, a second one pauses the
   integration (`Connector.credential_key`) and tells its owner with a health record;
4. records the attempt on `wedsync.delivery.results`, and sends the record on to `.retry`
   (exponential, jittered, Retry-After honoured) or `.dlq` (original bytes, reasons in
   headers);
5. commits a partition only up to its lowest record whose outcome records (result, retry,
   dead letter) Kafka has not yet acknowledged: at-least-once, and the loop never stops
   reading to wait for a flush.

A crash between a provider's answer and its ledger record re-sends that record after a
restart: idempotent providers (event ids, transactionId, If-None-Match, webhook-id) absorb
it; for Slack, SMTP and SMS the duplicates are bounded by the records in flight.

Stopping (`stop` set: SIGTERM, Ctrl-C) repeats nothing the provider accepted: no record is
started any more, and those not yet at their provider (waiting for their turn, a rate-limit
token or a slot) are dropped untouched; the calls already at a provider get up to
`drain_timeout_s` (default: the call timeout plus 5 s, so each ends by its own timeout first)
to finish; every outcome is recorded and acknowledged by Kafka, then what is finished is
committed. The records left uncommitted (not started, held retries, parked records) are read
again by the next owner; none was sent. Only a call still running at the drain bound is
cancelled: that delivery alone may be sent again.

Broker trouble: a fatal error of the idempotent producer does not stop the sink: nothing is
committed past an unacknowledged outcome record, a fresh producer produces those again
(`connectors.producer.OutcomeProducer`, at most 3 times in 10 minutes, then it stops saying
what to do). Unless Kafka lost data: when the group's committed offsets are gone or went
back below what Kafka confirmed to this process (a broker that restarted empty, topics
recreated), the ledger this process holds describes records that no longer exist (it would
skip new records as already processed), so it stops with a message saying what happened and
that a restart reloads the ledger from what Kafka holds now (once: a fresh process has
nothing to compare). Its unacknowledged outcome records are dropped, not written to the new
log (they could name offsets of the lost one), so what it delivered from the new log before
noticing (its fetches go on until the group drops it) may be delivered again by the next
process. No exception escapes a librdkafka callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from streams import metrics
from streams.errors import BackpressureError, BrokerUnavailable, DecodeError, FatalError
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config
from streams.kafka.deadletter import dead_letter_headers as raw_dead_letter_headers
from streams.kafka.recovering import watermarks
from streams.logic.ledger import LedgerState
from streams.logic.ratelimit import TokenBucket
from streams.logic.retry import Breaker
from streams.topics import DELIVER, DELIVERY_RESULTS, SLA_HEALTH

from connectors.producer import OutcomeProducer
from connectors.sinks import envelope
from connectors.sinks.answer import Answer, Verdict, backpressure, fatal, retry
from connectors.sinks.base import Connector, DeliveryContext, Limits
from connectors.sinks.credentials import CredentialStore
from connectors.sinks.envelope import Item
from connectors.sinks.ledger_reader import WRITER, LedgerReader
from connectors.sinks.outbound import audit_scope
from connectors.sinks.settings import SinkSettings
from connectors.sinks.tracker import TP, OffsetTracker, behind

log = logging.getLogger(__name__)


class _NotStarted(Exception):
    """Raised instead of calling a provider once the sink is stopping."""


class _Stored:
    """Counts one record's outcome records until Kafka acknowledged them all; then (once
    the record is finished) calls `done`. Lives on the event loop's thread."""

    __slots__ = ("done", "finished", "pending")

    def __init__(self, done: Callable[[], None]) -> None:
        self.done = done
        self.pending = 0
        self.finished = False

    def add(self) -> None:
        self.pending += 1

    def acked(self) -> None:
        self.pending -= 1
        if self.finished and self.pending == 0:
            self.done()

    def finish(self) -> None:
        self.finished = True
        if self.pending == 0:
            self.done()


class SinkRuntime:
    def __init__(
        self,
        connector: Connector,
        *,
        bootstrap: Kafka,
        codecs: TopicCodecs,
        credentials: CredentialStore,
        settings: SinkSettings | None = None,
        group_id: str | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        metrics.export("sink")  # this process's /metrics serves them
        self.connector = connector
        self.kind = connector.destination
        self.topics = DELIVER[self.kind]
        self.settings = settings or SinkSettings.model_construct()  # defaults, not the env
        self.policy = self.settings.retry_policy()
        self.credentials = credentials
        self.bootstrap = bootstrap
        self.group_id = group_id or f"wedsync-sink-{self.kind.value}"
        self.clock = clock
        self.rand = rand
        self.codec = codecs[self.topics.deliver]
        self.results_codec = codecs[DELIVERY_RESULTS]
        self.health_codec = codecs[SLA_HEALTH]
        self.ledger = LedgerState(self.kind.value)
        self.tracker = OffsetTracker()
        self.breakers: dict[str, Breaker] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.locks: dict[tuple[str, str], list[Any]] = {}  # key -> [lock, users]
        self.paused: set[str] = set()
        self.parked: dict[str, deque[Item]] = defaultdict(deque)
        self.disabled: set[str] = set()
        self.held: list[tuple[int, int, Item]] = []  # (due ms, seq, item) heap
        self._seq = 0
        self._tasks: dict[asyncio.Task[None], TP] = {}
        self._calling: set[asyncio.Task[Any]] = set()  # tasks inside a provider call
        self._stopping = False
        self._data_lost = False
        self._failure: BaseException | None = None
        self._last_probe = 0.0
        self._closing = False
        self._writer = [(WRITER, uuid.uuid4().hex.encode())]
        self.delivered = 0
        kind = self.kind.value  # metric children, looked up once (labels() costs per call)
        self._in_flight = metrics.SINK_IN_FLIGHT.labels(kind)
        self._attempt_seconds = {
            v: metrics.SINK_ATTEMPT_SECONDS.labels(kind, v.value) for v in Verdict
        }
        self._results = {
            o: metrics.SINK_RESULTS.labels(kind, o)
            for o in ("delivered", "retry_scheduled", "dead_lettered", "rejected",
                      "skipped_duplicate", "skipped_stale", "paused")
        }  # fmt: skip

    # ---- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then stop as the module docstring says (`_finish`).
        Raises (without committing the record concerned) when recording an outcome fails,
        and BrokerUnavailable when Kafka lost data or a fresh producer does not help."""
        self._loop = asyncio.get_running_loop()
        self._stop = stop
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self.producer = OutcomeProducer(
            client_config(self.bootstrap, {"enable.idempotence": True, "acks": "all",
             "linger.ms": 5, "log.connection.close": False}),
            self._store_failed,
        )  # fmt: skip
        self._reader = LedgerReader(
            self.bootstrap,
            self.group_id,
            self.results_codec,
            self.ledger,
            self._writer[0][1],
            copy_window_s=self.settings.ledger_copy_window_s,
            skew_s=self.settings.ledger_clock_skew_s,
        )
        await asyncio.to_thread(self._reader.load)
        self.consumer = Consumer(client_config(self.bootstrap, {
            "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 20, "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 600_000,
            "log.connection.close": False, "on_commit": self._on_commit,
        }))  # fmt: skip
        self.consumer.subscribe(
            [self.topics.deliver.name, self.topics.retry.name],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        last_commit = time.monotonic()
        try:
            while not stop.is_set():
                self._raise_failure()
                if self.producer.fatal:
                    await self._recover_producer()
                    if self.producer.fatal:  # Kafka cannot say yet: take nothing new meanwhile
                        await asyncio.sleep(0.1)
                        continue
                paused_reading = len(self.held) >= self.settings.max_held
                msgs = await asyncio.to_thread(
                    self.consumer.consume, 0 if paused_reading else 500, 0.05
                )
                self._raise_failure()  # e.g. an assignment found that Kafka lost data
                self._reader.poll()
                self.producer.poll(0)
                for msg in msgs:
                    if stop.is_set():  # not accepted: not tracked, so never committed
                        break
                    await self._accept(msg)
                await self._release_due()
                await self._probe_paused()
                if time.monotonic() - last_commit >= self.settings.commit_interval_s:
                    await self._commit()
                    last_commit = time.monotonic()
                    self._gauges()
        finally:
            await self._finish()

    def run_blocking(self, stop: threading.Event) -> None:
        """`run` on its own event loop until `stop` is set: for a thread
        (`streams.background.Background`) next to other work, as `make run` does."""

        async def main() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()

            def relay() -> None:
                stop.wait()
                loop.call_soon_threadsafe(done.set)

            threading.Thread(target=relay, name="sink-stop", daemon=True).start()
            await self.run(done)

        asyncio.run(main())

    async def _finish(self) -> None:
        """Stop without repeating what a provider accepted: start nothing more; drop, untouched,
        the records not yet at their provider; give the calls at a provider up to
        `drain_timeout_s` and cancel those still running then (the only deliveries that may be
        sent again); wait until Kafka acknowledged every outcome record; commit what is
        finished (the rest is read again by the next owner); close. After a failure nothing
        is committed; after a data loss nothing is produced either."""
        started = time.monotonic()
        self._stopping = True
        calling = [t for t in self._tasks if t in self._calling]
        waiting = [t for t in self._tasks if t not in self._calling]
        for task in waiting:
            task.cancel()
        late: set[asyncio.Task[None]] = set()
        if calling:
            _, late = await asyncio.wait(calling, timeout=self.settings.drain_s)
            for task in late:
                task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        try:
            if self._failure is None:
                await self._settle(30.0)
                await self._commit(wait=True)
        finally:
            self._closing = True  # the revoke inside close() has nothing left to drain
            await asyncio.to_thread(self.consumer.close)
            self._reader.close()
            if not self._data_lost:
                await self._settle_quietly(10.0)  # e.g. health records; never fails the stop
            dropped = self.producer.close()
            await self.connector.aclose()
            log.info(
                "stopped in %.1f s: %d deliveries at their provider finished and recorded, %d "
                "not started (read again after a restart), %d cancelled at the %.0f s drain "
                "bound (may be sent again), %d outcome records never acknowledged",
                time.monotonic() - started, len(calling) - len(late), len(waiting), len(late),
                self.settings.drain_s, dropped,
            )  # fmt: skip
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # ---- reading -------------------------------------------------------------------------
    async def _accept(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error)
            return
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        if self._failure is not None:
            return
        read_to = self.tracker.read_to((topic, partition))
        if offset < read_to and await self._log_lost((topic, partition), offset, read_to):
            return
        self.tracker.add((topic, partition), offset)
        value = msg.value() or b""
        try:
            record = self.codec.decode(msg.value())
        except DecodeError as exc:
            stored = _Stored(lambda: self.tracker.done((topic, partition), offset))
            self._produce(
                self.topics.dlq.name, value, msg.key(),
                raw_dead_letter_headers(
                    stage=f"sink.{self.kind.value}", error=exc, topic=topic,
                    partition=partition, offset=offset, now_ms=self._now_ms(),
                ),
                stored,
            )  # fmt: skip
            metrics.DEAD_LETTERS.labels(f"sink.{self.kind.value}", "DecodeError").inc()
            stored.finish()
            return
        item = Item.read(topic, partition, offset, msg.key(), value, msg.headers(), record)
        if item.paused and item.paused in self.paused:
            self.parked[item.paused].append(item)
        elif item.not_before_ms > self._now_ms():
            self._hold(item, item.not_before_ms)
        else:
            await self._start(item)

    async def _log_lost(self, tp: TP, offset: int, read_to: int) -> bool:
        """Offsets only go back within an assignment when the log went back (the consumer
        reset its position): True, and stop, when the group's commits confirm Kafka lost
        data; else the ledger decides about the record as about any other."""
        went_back = f"{tp[0]}[{tp[1]}] gave offset {offset} after {read_to - 1}"
        lost = await asyncio.to_thread(self._lost_commits, {tp}, 5.0)
        if lost:
            self._lost_data([went_back, *lost])
            return True
        log.warning("%s, but the group's commits are intact: reading on", went_back)
        return False

    def _hold(self, item: Item, due_ms: int) -> None:
        self._seq += 1
        heapq.heappush(self.held, (due_ms, self._seq, item))

    async def _release_due(self) -> None:
        now = self._now_ms()
        while self.held and self.held[0][0] <= now:
            _, _, item = heapq.heappop(self.held)
            await self._start(item)

    async def _start(self, item: Item, *, probe: bool = False) -> None:
        """Deliver `item` in a task of its own once a slot is free; once stopping, not at all
        (it stays pending: uncommitted, read again by the next owner)."""
        if not await self._slot():
            return
        task = asyncio.create_task(self._run_item(item, probe))
        self._tasks[task] = (item.topic, item.partition)
        task.add_done_callback(self._tasks.pop)

    async def _slot(self) -> bool:
        """One of the `concurrency` slots (True), or False when `stop` is set first."""
        if self._stop.is_set():
            return False
        if not self._slots.locked():
            await self._slots.acquire()  # free now: no wait
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not self._stop.is_set():
            return True
        acquire.cancel()
        await asyncio.wait({acquire})
        if not acquire.cancelled():  # it got the slot just before: give it back
            self._slots.release()
        return False

    async def _run_item(self, item: Item, probe: bool) -> None:
        self._in_flight.inc()
        finished = False
        if item.stored is None:
            position = (item.topic, item.partition)
            item.stored = _Stored(lambda: self.tracker.done(position, item.offset))
        try:
            finished = await self._process(item, probe)
        except (asyncio.CancelledError, _NotStarted):  # stopping: uncommitted, never sent
            return
        except BaseException as exc:  # recording failed: crash, do not commit this record
            log.exception("recording the outcome of %s failed; stopping", item.origin)
            self._failure = self._failure or exc
            return
        finally:
            self._in_flight.dec()
            self._slots.release()
        if finished:
            item.stored.finish()

    # ---- one record ------------------------------------------------------------------------
    async def _process(self, item: Item, probe: bool) -> bool:
        """Handle one record; False when it stays pending (parked for its integration)."""
        record = item.record
        target = self.connector.target(record)
        decision = self.ledger.decide(record, target, item.source)
        if decision == "processed":
            return True
        if decision == "delivered":
            self._record(item, target, "skipped_duplicate")
            return True
        if decision == "stale":
            self._record(item, target, "skipped_stale",
                         superseded_by=self.ledger.superseded_by(record, target))  # fmt: skip
            return True
        if target in self.disabled and not item.replay_of:
            self._dead_letter(
                item,
                target,
                "target_disabled",
                "the target was disabled "
                "after the provider said it is gone; replay once it is fixed",
            )
            return True
        credential_key = self.connector.credential_key(record)
        if credential_key is not None and credential_key in self.paused and not probe:
            self._requeue(item, target, item.attempt, self._now_ms(), "paused",
                          paused=credential_key)  # fmt: skip
            return True
        async with self._in_order((target, str(record.get("aggregate_id", "")))):
            limit_key, limits = self.connector.limit(record)
            while wait := self._rate_wait(limit_key, limits):
                if wait > self.settings.max_rate_wait_s:
                    self._requeue(item, target, item.attempt,
                                  self._now_ms() + int(wait * 1000), "rate_limited")  # fmt: skip
                    return True
                metrics.SINK_RATE_LIMIT_WAIT_SECONDS.labels(self.kind.value).inc(wait)
                await asyncio.sleep(wait)
            breaker = self._breaker(target)
            if not breaker.allow(self.clock()):
                due = int(breaker.reopens_at() * 1000 + self.rand() * 1000)
                self._requeue(item, target, item.attempt, due, "breaker_open")
                return True
            async with self._semaphore(limit_key, limits):
                answer, latency = await self._attempt(item, target, refresh=probe)
                if answer.verdict is Verdict.REAUTH and not probe:
                    answer, latency = await self._attempt(item, target, refresh=True)
            if probe and credential_key is not None:
                if answer.verdict is Verdict.REAUTH:  # still refused: back to the front
                    self.parked[credential_key].appendleft(item)
                    return False
                self._resume(credential_key)
            return self._apply(item, target, breaker, answer, latency, credential_key)

    async def _attempt(self, item: Item, target: str, *, refresh: bool) -> tuple[Answer, float]:
        """One call to the provider; `_NotStarted` instead once stopping. While it runs, its
        task is in `_calling`: a stop lets it finish (up to the drain bound)."""
        if self._stopping:
            raise _NotStarted
        record = item.record
        ctx = DeliveryContext(self.credentials, record["delivery_id"], item.attempt, refresh)
        started = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self._calling.add(task)
        try:
            with audit_scope(self.kind.value, target):
                async with asyncio.timeout(self.settings.call_timeout_s):
                    answer = await self.connector.deliver(record, ctx)
        except Exception as exc:
            answer = translate(exc)
        finally:
            if task is not None:
                self._calling.discard(task)
        latency = time.monotonic() - started
        self._attempt_seconds[answer.verdict].observe(latency)
        return answer, latency * 1000

    def _apply(
        self, item: Item, target: str, breaker: Breaker, answer: Answer, latency_ms: float,
        credential_key: str | None,
    ) -> bool:  # fmt: skip
        verdict = answer.verdict
        fields: dict[str, Any] = {
            "status": answer.status, "latency_ms": latency_ms, "provider_id": answer.provider_id,
            "error_class": answer.error_class, "error_message": answer.message or None,
        }  # fmt: skip
        if verdict is Verdict.OK:
            breaker.success()
            self.disabled.discard(target)
            self.delivered += 1
            self._record(item, target, "delivered", **fields)
            source_ms = int(item.record.get("source_ts_ms") or 0)
            if source_ms:
                metrics.SINK_COMMIT_TO_PROVIDER_SECONDS.labels(self.kind.value).observe(
                    max(0.0, self.clock() - source_ms / 1000)
                )
            return True
        if verdict is Verdict.REAUTH:
            if credential_key is None:
                self._dead_letter(item, target, answer.error_class or "reauth",
                                  "the platform credential was refused; fix it, then replay",
                                  fields)  # fmt: skip
                return True
            self._pause(credential_key, item)
            self._requeue(item, target, item.attempt, self._now_ms(), answer.error_class,
                          paused=credential_key, outcome="paused", result=fields)  # fmt: skip
            return True
        if verdict is Verdict.DISABLE:
            self.disabled.add(target)
            log.warning("%s disabled: %s", target, answer.error_class)
            self._dead_letter(item, target, answer.error_class or "disabled",
                              answer.message or "the target is gone", fields)  # fmt: skip
            return True
        if verdict is Verdict.FATAL:
            self._dead_letter(item, target, answer.error_class or "fatal",
                              answer.message or "refused by the provider", fields)  # fmt: skip
            return True
        if verdict is Verdict.RETRY:
            breaker.failure(self.clock())
        if self.policy.exhausted(item.attempt):
            self._dead_letter(
                item, target, answer.error_class or verdict.value,
                f"gave up after {item.attempt + 1} attempts: {answer.message or verdict.value}",
                fields,
            )  # fmt: skip
            return True
        delay = self.policy.delay(item.attempt, answer.retry_after, self.rand)
        self._requeue(item, target, item.attempt + 1, self._now_ms() + int(delay * 1000),
                      answer.error_class, result=fields)  # fmt: skip
        return True

    # ---- outcomes ----------------------------------------------------------------------------
    def _record(self, item: Item, target: str, outcome: str, **fields: Any) -> None:
        result = envelope.result(
            item, destination=self.kind, target=target, outcome=outcome,
            now_ms=self._now_ms(), **fields,
        )  # fmt: skip
        key = (result["integration_id"] or self.kind.value).encode()
        value = self.results_codec.encode(result)
        self._produce(DELIVERY_RESULTS.name, value, key, self._writer, item.stored)
        self.ledger.apply(result)
        for topic, kept in self._reader.kept(result, replayed=item.replay_of is not None):
            self._produce(topic, value, kept, None, item.stored)  # the compacted ledger
        self._results[outcome].inc()

    def _requeue(
        self, item: Item, target: str, attempt: int, not_before_ms: int,
        error_class: str | None, *, paused: str | None = None,
        outcome: str = "retry_scheduled", result: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Send the record's original bytes to the retry topic as attempt `attempt`, due at
        `not_before_ms`, and record this attempt's outcome."""
        first = item.first_attempt_ms or self._now_ms()
        headers = envelope.retry_headers(
            item, attempt=attempt, not_before_ms=not_before_ms, first_attempt_ms=first,
            error_class=error_class, paused=paused,
        )  # fmt: skip
        self._produce(self.topics.retry.name, item.value, item.key, headers, item.stored)
        fields = dict(result or {})
        fields["error_class"] = fields.get("error_class") or error_class
        self._record(item, target, outcome, **fields)
        metrics.SINK_RETRIES.labels(self.kind.value, error_class or "-").inc()

    def _dead_letter(
        self, item: Item, target: str, error_class: str, reason: str,
        result: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        now = self._now_ms()
        headers = envelope.dead_letter_headers(
            item, destination=self.kind, target=target, error_class=error_class,
            reason=reason, first_attempt_ms=item.first_attempt_ms or now, now_ms=now,
        )  # fmt: skip
        self._produce(self.topics.dlq.name, item.value, item.key, headers, item.stored)
        metrics.DEAD_LETTERS.labels(f"sink.{self.kind.value}", error_class).inc()
        fields = dict(result or {})
        fields["error_class"] = error_class
        fields["error_message"] = fields.get("error_message") or reason
        self._record(item, target, "dead_lettered", **fields)

    def _pause(self, credential_key: str, item: Item) -> None:
        if credential_key in self.paused:
            return
        self.paused.add(credential_key)
        self._last_probe = time.monotonic()
        log.warning("integration %s paused: its credential was refused twice; reconnect it "
                    "(its records wait and resume in order)", credential_key)  # fmt: skip
        self._health(credential_key, item, "failing", ["credential_refused: reconnect"])

    def _resume(self, credential_key: str) -> None:
        self.paused.discard(credential_key)
        log.info("integration %s resumed", credential_key)

    def _health(self, credential_key: str, item: Item, status: str, breaches: list[str]) -> None:
        now = self._now_ms()
        record = {
            "event_id": f"sink-health:{credential_key}:{now}",
            "integration_id": item.record.get("integration_id") or credential_key,
            "destination": self.kind.value, "window_start_ms": now, "window_end_ms": now,
            "requests": 1, "errors": 1, "error_rate": 1.0, "latency_p50_ms": 0.0,
            "latency_p95_ms": 0.0, "latency_p99_ms": 0.0, "availability": 0.0,
            "reliability_score": 0.0, "status": status, "breaches": breaches,
            "source_ts_ms": int(item.record.get("source_ts_ms") or 0), "computed_at_ms": now,
        }  # fmt: skip
        key = str(record["integration_id"]).encode()
        self._produce(SLA_HEALTH.name, self.health_codec.encode(record), key)

    async def _probe_paused(self) -> None:
        """Release the parked records of resumed integrations, in order; and every
        `pause_probe_s`, try the oldest parked record of each paused integration with a
        refreshed credential (success resumes the integration)."""
        for key in [k for k, q in self.parked.items() if q and k not in self.paused]:
            queue = self.parked.pop(key, deque())
            while queue:
                await self._start(queue.popleft())
        if not self.paused or time.monotonic() - self._last_probe < self.settings.pause_probe_s:
            return
        self._last_probe = time.monotonic()
        for key in list(self.paused):
            waiting = self.parked.get(key)
            if waiting:
                await self._start(waiting.popleft(), probe=True)

    # ---- limits --------------------------------------------------------------------------------
    def _rate_wait(self, key: str, limits: Limits) -> float:
        """0.0 when a token was taken for this call, else the seconds until one is free."""
        if not limits.rate_per_s:
            return 0.0
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(limits.rate_per_s, limits.burst, self.clock())
        return bucket.try_acquire(self.clock())

    def _semaphore(self, key: str, limits: Limits) -> asyncio.Semaphore:
        sem = self.semaphores.get(key)
        if sem is None:
            sem = self.semaphores[key] = asyncio.Semaphore(limits.concurrency or 1_000_000)
        return sem

    def _breaker(self, target: str) -> Breaker:
        breaker = self.breakers.get(target)
        if breaker is None:
            breaker = self.breakers[target] = Breaker(
                self.settings.breaker_threshold, self.settings.breaker_cooldown_s
            )
        return breaker

    @contextlib.asynccontextmanager
    async def _in_order(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """One record at a time per (target, aggregate), in arrival order; the lock is
        dropped when nobody holds or waits for it (aggregates are unbounded)."""
        entry = self.locks.get(key)
        if entry is None:
            entry = self.locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self.locks[key]

    # ---- Kafka ------------------------------------------------------------------------------
    def _produce(self, topic: str, value: bytes, key: bytes | None,
                 headers: Any = None, stored: _Stored | None = None) -> None:  # fmt: skip
        """Produce; `stored` (the consumed record's) counts it until Kafka acknowledges it
        (the producer holds it until then, across a renewal). Delivery reports run in
        `producer.poll`, called only on the event loop's thread."""
        if stored is not None:
            stored.add()
        self.producer.produce(topic, value, key, headers, stored.acked if stored else None)

    def _store_failed(self, reason: str) -> None:
        """An outcome record was refused for good: stop, without committing its record."""
        self._failure = self._failure or BrokerUnavailable(reason)

    async def _settle(self, timeout: float) -> None:
        """Until Kafka acknowledged every outcome record, recovering the producer after a
        fatal error; BrokerUnavailable after `timeout` s, or the failure that stops us."""
        deadline = time.monotonic() + timeout
        while len(self.producer):
            self._raise_failure()
            if self.producer.fatal:
                await self._recover_producer()
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"{len(self.producer)} outcome records not acknowledged in {timeout:.0f} s"
                )
            self.producer.poll(0)
            await asyncio.sleep(0.005)
        self._raise_failure()

    async def _settle_quietly(self, timeout: float) -> None:
        """Give outcome records up to `timeout` s to be acknowledged, whatever happened."""
        deadline = time.monotonic() + timeout
        while len(self.producer) and not self.producer.fatal and time.monotonic() < deadline:
            self.producer.poll(0)
            await asyncio.sleep(0.005)

    async def _recover_producer(self) -> None:
        """After a fatal producer error: unless Kafka lost data (then stop), a fresh producer
        produces every unacknowledged outcome record again. While Kafka cannot say (it does
        not answer), nothing happens: the caller reads nothing new and asks again."""
        if self._data_lost:
            return
        lost = await asyncio.to_thread(self._lost_commits, None, 5.0)
        if lost is None:
            return
        if lost:
            self._lost_data(lost)
            return
        self.producer.renew()  # BrokerUnavailable, saying what to do, past the renewal limit

    async def _commit(self, tps: set[TP] | None = None, *, wait: bool = False) -> None:
        """Commit what is finished and stored. Asynchronous while running (a lost commit
        only means records read again, which the ledger skips); `wait` at the end."""
        self.producer.poll(0)
        positions = self.tracker.committable(tps)
        if not positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        if wait:
            done = await asyncio.to_thread(
                self.consumer.commit, offsets=offsets, asynchronous=False
            )
            self._confirm(done)
        else:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        self.tracker.mark_committed(positions)

    def _confirm(self, partitions: list[TopicPartition] | None) -> None:
        """Remember the commit positions Kafka confirmed (the data-loss check's reference)."""
        for tp in partitions or ():
            if tp.error is None and tp.offset >= 0:
                self.tracker.confirm((tp.topic, tp.partition), tp.offset)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Kafka's answer to an asynchronous commit (inside consume()); never raises."""
        try:
            if err is None:
                self._confirm(partitions)
        except Exception as exc:
            log.warning("reading a commit answer failed: %s", exc)

    def _lost_commits(self, tps: set[TP] | None = None, timeout: float = 10.0) -> list[str] | None:
        """The partitions (of `tps`; default every one) whose commit in the group is gone or
        below a position Kafka confirmed to this process: Kafka lost data. None when Kafka
        cannot say now. Blocking (a thread, or a rebalance callback)."""
        confirmed = list(self.tracker.confirmed.items())  # a copy: another thread adds
        mine = {tp: o for tp, o in confirmed if o > 0 and (tps is None or tp in tps)}
        if not mine:
            return []
        try:
            now = self.consumer.committed([TopicPartition(t, p) for t, p in mine], timeout=timeout)
        except KafkaException as exc:
            log.warning("cannot read the group's committed offsets: %s", exc.args[0].str())
            return None
        if any(tp.error is not None for tp in now):
            return None
        committed = {(tp.topic, tp.partition): tp.offset for tp in now}
        suspects = {tp: o for tp, o in mine.items() if behind({tp: o}, committed)}
        if not suspects:
            return []
        try:  # a commit below ours is a loss only where the log no longer holds the records
            ends = {tp: watermarks(self.consumer, TopicPartition(*tp), 10)[1] for tp in suspects}
        except KafkaException as exc:
            log.warning("cannot read the end offsets: %s", exc.args[0].str())
            return None
        return behind(suspects, committed, ends)

    def _lost_data(self, details: list[str]) -> None:
        """Kafka lost data this process read: stop, saying so (see the module docstring)."""
        if self._data_lost:
            return
        self._data_lost = True
        more = len(details) - 3
        shown = "; ".join(details[:3]) + (f" (and {more} more)" if more > 0 else "")
        message = (
            f"Kafka lost data this sink had read ({shown}; group {self.group_id}): a broker "
            "restarted empty or topics were recreated. This process's delivery ledger describes "
            "records that no longer exist and would skip new ones as already processed, so it "
            "stops. Start it again: it reads the ledger from what Kafka holds now. Records that "
            "were only on the lost topics (deliveries not yet made, retries waiting) are gone "
            "with them: `wedsync audit --since <time of the loss>` lists the changes left "
            "without an outcome."
        )
        log.error("%s", message)
        self._failure = BrokerUnavailable(message)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Inside consume(), before the partitions' records are read: fold the ledger up to
        now, and stop if Kafka lost what this process had committed on them. Never raises
        (an exception inside a librdkafka callback breaks the call that ran it)."""
        try:
            self._reader.catch_up()
            lost = self._lost_commits({(tp.topic, tp.partition) for tp in partitions})
            if lost:
                self._lost_data(lost)
        except Exception as exc:
            log.warning("on assignment: %s: %s", type(exc).__name__, exc)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Inside consume(): the partitions go to another member. Wait (on the event loop)
        for their deliveries and outcome records, then commit their positions. Never raises."""
        self._hand_over(consumer, partitions, lost=False)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Inside consume(): the group dropped this member (session timeout, a coordinator
        that forgot it); the partitions may be another's already. Wait for their deliveries;
        commit nothing (Kafka would refuse it). Never raises. (Whether Kafka lost data is
        asked at the next assignment: stopping here, in the middle of joining the group
        again, would leave a member the next process's join waits for.)"""
        self._hand_over(consumer, partitions, lost=True)

    def _hand_over(self, consumer: Consumer, partitions: list[TopicPartition], *,
                   lost: bool) -> None:  # fmt: skip
        tps = {(tp.topic, tp.partition) for tp in partitions}
        try:
            if self._closing or not tps or self._loop.is_closed():
                return
            future = asyncio.run_coroutine_threadsafe(self._drain(tps, lost=lost), self._loop)
            positions = future.result(self.settings.call_timeout_s + 40)
            if positions and self._failure is None:
                self._confirm(consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                    asynchronous=False,
                ))  # fmt: skip
        except Exception as exc:
            log.warning("handing over %d partitions: %s: %s; their records will be read "
                        "again (the ledger skips what was done)", len(tps),
                        type(exc).__name__, exc)  # fmt: skip
        finally:
            self.tracker.forget(tps)

    async def _drain(self, tps: set[TP], *, lost: bool = False) -> dict[TP, int]:
        """Finish the handed-over partitions' deliveries and drop what is held for them;
        unless they were lost, return their commit positions once every outcome record is
        acknowledged."""
        tasks = [t for t, tp in self._tasks.items() if tp in tps]
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.call_timeout_s + 5)
        self.held = [h for h in self.held if (h[2].topic, h[2].partition) not in tps]
        heapq.heapify(self.held)
        for key, queue in self.parked.items():
            self.parked[key] = deque(i for i in queue if (i.topic, i.partition) not in tps)
        if lost:
            return {}
        await self._settle(30.0)
        return self.tracker.committable(tps)

    # ---- misc ---------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _gauges(self) -> None:
        kind = self.kind.value
        metrics.SINK_BREAKERS_OPEN.labels(kind).set(sum(b.is_open for b in self.breakers.values()))
        metrics.SINK_PAUSED_INTEGRATIONS.labels(kind).set(len(self.paused))
        metrics.SINK_DISABLED_TARGETS.labels(kind).set(len(self.disabled))
        metrics.SINK_HELD.labels(kind).set(
            len(self.held) + sum(len(q) for q in self.parked.values())
        )


def translate(exc: BaseException) -> Answer:
    """An exception out of a connector, as an answer. Foreign exceptions keep only their
    class name (their text may carry a URL or a token)."""
    name = type(exc).__name__
    if isinstance(exc, BackpressureError):
        return backpressure(f"error.{name}", exc.retry_after, str(exc))
    if isinstance(exc, FatalError):
        return fatal(f"error.{name}", str(exc))
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return retry("timeout", "no answer within the call timeout")
    if isinstance(exc, httpx.TransportError | OSError):
        return retry(f"transport.{name}", f"transport error ({name})")
    log.warning("connector raised %s; retrying the record", name)
    log.debug("connector exception", exc_info=exc)
    return retry(f"error.{name}", f"unexpected {name} in the connector")
