"""`SinkRuntime`: the loop that consumes, admits, delivers, records and commits (the package
docstring says what it guarantees); the parts it is made of are its sibling modules.

`run(stop)` polls `wedsync.deliver.<kind>` and `.retry` in batches, and for each record:
decodes it (an undecodable one is dead-lettered), holds or parks it (`admit`), then starts
its delivery in a task of its own once one of the `concurrency` slots is free. A delivery
asks the ledger (`ledger`), waits for its turn, rate-limit token and breaker (`admit`),
calls its provider (`attempt`) and records the outcome (`outcomes`); the record is finished
once Kafka acknowledged every outcome record it produced, and its partition is committed up
to its lowest unfinished record once per commit interval (`offsets`). Rebalance callbacks
hand partitions over after their deliveries finished; `_finish` is the stop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message
from streams import metrics
from streams.collect import collect_less
from streams.errors import DecodeError
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config, consumer_config
from streams.kafka.ready import ready as ready_records
from streams.topics import DELIVER, DELIVERY_RESULTS, SLA_HEALTH

from connectors.producer import OutcomeProducer
from connectors.sinks.answer import Verdict
from connectors.sinks.base import Connector
from connectors.sinks.credentials import CredentialStore
from connectors.sinks.envelope import Item
from connectors.sinks.runtime.admit import Admission
from connectors.sinks.runtime.attempt import Attempts, NotStarted
from connectors.sinks.runtime.group import GroupMember
from connectors.sinks.runtime.ledger import Ledger
from connectors.sinks.runtime.offsets import TP, OffsetTracker, Stored
from connectors.sinks.runtime.outcomes import Outcome, Outcomes
from connectors.sinks.settings import SinkSettings

log = logging.getLogger("connectors.sinks.runtime")


class SinkRuntime(GroupMember):
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
        self.bootstrap = bootstrap
        self.group_id = group_id or f"wedsync-sink-{self.kind.value}"
        self.clock = clock
        self.codec = codecs[self.topics.deliver]
        self.ledger = Ledger(
            self.kind.value,
            bootstrap,
            self.group_id,
            codecs[DELIVERY_RESULTS],
            copy_window_s=self.settings.ledger_copy_window_s,
            skew_s=self.settings.ledger_clock_skew_s,
        )
        self.tracker = OffsetTracker()
        self.admission = Admission(self.settings, clock)
        self.attempts = Attempts(connector, credentials, self.settings.call_timeout_s)
        self.outcomes = Outcomes(
            self.kind, self.topics, results=codecs[DELIVERY_RESULTS], health=codecs[SLA_HEALTH],
            ledger=self.ledger, produce=self._produce, pauses=self.admission,
            policy=self.settings.retry_policy(), clock=clock, rand=rand,
        )  # fmt: skip
        self._tasks: dict[asyncio.Task[None], TP] = {}
        self._failure: BaseException | None = None
        self._data_lost = False
        self._closing = False
        self._in_flight = 0
        self._in_flight_gauge = metrics.SINK_IN_FLIGHT.labels(self.kind.value)

    @property
    def delivered(self) -> int:
        """Deliveries a provider accepted since the start."""
        return self.outcomes.delivered

    @property
    def held(self) -> list[tuple[int, int, Item]]:
        """Retries read back and not yet due: (due ms, sequence, record), a heap."""
        return self.admission.held

    # ---- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then stop as the package docstring says (`_finish`).
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
        self._reader = self.ledger.reader()
        await asyncio.to_thread(self._reader.load)
        collect_less()  # the ledger is loaded: out of the collector's sight
        self.consumer = Consumer(consumer_config(self.bootstrap, {
            "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 600_000,
            "log.connection.close": False, "on_commit": self._on_commit,
        }))  # fmt: skip
        self.consumer.subscribe(
            [self.topics.deliver.name, self.topics.retry.name],
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost,
        )  # fmt: skip
        last_commit = time.monotonic()
        acks = asyncio.create_task(self._serve_acks(stop))
        try:
            while not stop.is_set():
                self._raise_failure()
                if self.producer.fatal:
                    await self._recover_producer()
                    if self.producer.fatal:  # Kafka cannot say yet: take nothing new meanwhile
                        await asyncio.sleep(0.1)
                        continue
                paused_reading = len(self.admission.held) >= self.settings.max_held
                if paused_reading:  # serve the group's callbacks, take nothing new
                    msgs = await asyncio.to_thread(self.consumer.consume, 0, 0.05)
                else:  # the first record within 50 ms, then what is already fetched
                    msgs = await asyncio.to_thread(ready_records, self.consumer, 500, 0.05)
                self._raise_failure()  # e.g. an assignment found that Kafka lost data
                self._reader.poll()
                self.producer.poll(0)
                for msg in msgs:
                    if stop.is_set():  # not accepted: not tracked, so never committed
                        break
                    await self._accept(msg)
                for item in self.admission.due(self.outcomes.now_ms()):
                    await self._start(item)
                for item in self.admission.released():
                    await self._start(item)
                for item in self.admission.probes():
                    await self._start(item, probe=True)
                if time.monotonic() - last_commit >= self.settings.commit_interval_s:
                    await self._commit()
                    last_commit = time.monotonic()
                    self._gauges()
        finally:
            acks.cancel()
            await self._finish()

    async def _serve_acks(self, stop: asyncio.Event) -> None:
        """While every slot is taken, poll the producer every 2 ms: its acknowledgements free
        the slots (the main loop, waiting for a slot to start a record, does not poll)."""
        while not stop.is_set():
            if self._slots.locked():
                self.producer.poll(0)
                await asyncio.sleep(0.002)
            else:
                await asyncio.sleep(0.02)

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
        self.attempts.stopping = True
        calling = [t for t in self._tasks if t in self.attempts.calling]
        waiting = [t for t in self._tasks if t not in self.attempts.calling]
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
            self._gauges()  # nothing in flight any more
            await self.connector.aclose()
            log.info(
                "stopped in %.1f s: %d deliveries at their provider finished and recorded, %d "
                "not started (read again after a restart), %d cancelled at the %.0f s drain "
                "bound (may be sent again), %d outcome records never acknowledged",
                time.monotonic() - started, len(calling) - len(late), len(waiting), len(late),
                self.settings.drain_s, dropped,
            )  # fmt: skip
        self._raise_failure()

    # ---- reading and admitting -----------------------------------------------------------
    async def _accept(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error)
            return
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        if self._failure is not None:
            return
        tp = (topic, partition)
        read_to = self.tracker.read_to(tp)
        if offset < read_to and await self._log_lost(tp, offset, read_to):
            return
        self.tracker.add(tp, offset)
        value = msg.value() or b""
        try:
            record = self.codec.decode(msg.value())
        except DecodeError as exc:
            stored = Stored(lambda: self.tracker.done(tp, offset))
            self.outcomes.undecodable(topic, partition, offset, msg.key(), value, exc, stored)
            stored.finish()
            return
        item = Item.read(topic, partition, offset, msg.key(), value, msg.headers(), record,
                         picked_up_ms=self.outcomes.now_ms())  # fmt: skip
        if item.paused and item.paused in self.admission.paused:
            self.admission.parked[item.paused].append(item)
        elif item.not_before_ms > self.outcomes.now_ms():
            self.admission.hold(item, item.not_before_ms)
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

    async def _start(self, item: Item, *, probe: bool = False) -> None:
        """Deliver `item` in a task of its own once a slot is free; once stopping, not at all
        (it stays pending: uncommitted, read again by the next owner)."""
        if not await self._slot():
            return
        task = self._loop.create_task(self._run_item(item, probe))
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
        self._in_flight += 1
        finished = False
        if item.stored is None:
            tp, offset = (item.topic, item.partition), item.offset
            item.stored = Stored(lambda: self.tracker.done(tp, offset))
        try:
            finished = await self._process(item, probe)
        except (asyncio.CancelledError, NotStarted):  # stopping: uncommitted, never sent
            return
        except BaseException as exc:  # recording failed: crash, do not commit this record
            log.exception("recording the outcome of %s failed; stopping", item.origin)
            self._failure = self._failure or exc
            return
        finally:
            self._in_flight -= 1
            if not finished:
                self._slots.release()
        # the slot stays taken until Kafka acknowledged the outcome records: at most
        # `concurrency` records are ever delivered but not recorded, so a kill -9 repeats at
        # most that many (freed at the hand-off, records whose results were still in the
        # producer's queue came on top under load); `_serve_acks` polls while slots wait
        if finished:
            item.stored.finish(then=self._slots.release)

    async def _process(self, item: Item, probe: bool) -> bool:
        """Handle one record; False when it stays pending (parked for its integration)."""
        record, admission, outcomes = item.record, self.admission, self.outcomes
        target = self.connector.target(record)
        skip = self.ledger.skip(item, target)
        if skip is not None:
            outcome, superseded_by = skip
            if outcome is Outcome.SKIPPED_STALE:
                outcomes.record(item, target, outcome, superseded_by=superseded_by)
            elif outcome is not None:
                outcomes.record(item, target, outcome)
            return True
        if target in admission.disabled and not item.replay_of:
            outcomes.dead_letter(
                item,
                target,
                "target_disabled",
                "the target was disabled "
                "after the provider said it is gone; replay once it is fixed",
            )
            return True  # fmt: skip
        credential_key = self.connector.credential_key(record)
        if credential_key is not None and credential_key in admission.paused and not probe:
            outcomes.requeue(item, target, item.attempt, outcomes.now_ms(), "paused",
                             paused=credential_key)  # fmt: skip
            return True
        turn = (target, str(record.get("aggregate_id", "")))
        await admission.order.acquire(turn)
        try:
            limit_key, limits = self.connector.limit(record)
            while wait := admission.rate_wait(limit_key, limits):
                if wait > self.settings.max_rate_wait_s:
                    outcomes.requeue(
                        item,
                        target,
                        item.attempt,
                        outcomes.now_ms() + int(wait * 1000),
                        "rate_limited",
                    )
                    return True  # fmt: skip
                metrics.SINK_RATE_LIMIT_WAIT_SECONDS.labels(self.kind.value).inc(wait)
                await asyncio.sleep(wait)
            breaker = admission.breaker(target)
            if not breaker.allow(self.clock()):
                due = int(breaker.reopens_at() * 1000 + outcomes.rand() * 1000)
                outcomes.requeue(item, target, item.attempt, due, "breaker_open")
                return True
            async with admission.semaphore(limit_key, limits):
                answer, latency = await self.attempts.deliver(item, target, probe=probe)
            if probe and credential_key is not None:
                if answer.verdict is Verdict.REAUTH:  # still refused: back to the front
                    admission.parked[credential_key].appendleft(item)
                    return False
                admission.resume(credential_key)
            return outcomes.apply(item, target, breaker, answer, latency, credential_key)
        finally:
            admission.order.release(turn)

    def _gauges(self) -> None:
        self._in_flight_gauge.set(self._in_flight)
        self.admission.gauges(self.kind.value)
