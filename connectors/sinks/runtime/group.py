"""The runtime's edge with Kafka's group and producer: outcome records until acknowledged,
commits, rebalances, and Kafka losing data.

`GroupMember` is the base of `SinkRuntime` (loop.py), which sets what it declares. Called:

- `_produce` for every outcome record (counted on its consumed record's `Stored`);
  `_settle` waits until Kafka acknowledged all of them (a fatal producer error on the way
  is recovered by `_recover_producer`: a fresh producer, unless Kafka lost data);
- `_commit` once per commit interval (asynchronous) and at the stop (`wait`);
- `_on_assign`, `_on_revoke`, `_on_lost`, `_on_commit` by librdkafka inside `consume()`:
  they never raise (an exception there breaks the consume that ran them). A revoke waits
  for the partitions' deliveries and outcome records on the event loop (`_drain`), then
  commits their positions; a loss commits nothing;
- `_lost_commits` / `_lost_data`: the group's commits gone or below what Kafka confirmed
  to this process over a log that no longer holds the records: the process stops with
  `BrokerUnavailable` saying what happened and what to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from streams.errors import BrokerUnavailable

from connectors.producer import OutcomeProducer
from connectors.sinks.ledger_reader import LedgerReader
from connectors.sinks.runtime import offsets
from connectors.sinks.runtime.admit import Admission
from connectors.sinks.runtime.offsets import TP, OffsetTracker, Stored
from connectors.sinks.settings import SinkSettings

log = logging.getLogger("connectors.sinks.runtime")


class GroupMember:
    settings: SinkSettings
    group_id: str
    tracker: OffsetTracker
    admission: Admission
    producer: OutcomeProducer
    consumer: Consumer
    _reader: LedgerReader
    _loop: asyncio.AbstractEventLoop
    _tasks: dict[asyncio.Task[None], TP]
    _failure: BaseException | None
    _data_lost: bool
    _closing: bool

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _produce(self, topic: str, value: bytes, key: bytes | None,
                 headers: Any = None, stored: Stored | None = None) -> None:  # fmt: skip
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
        self.producer.poll(0)
        await offsets.commit(self.consumer, self.tracker, tps, wait=wait)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Kafka's answer to an asynchronous commit (inside consume()); never raises."""
        try:
            if err is None:
                offsets.confirm(self.tracker, partitions)
        except Exception as exc:
            log.warning("reading a commit answer failed: %s", exc)

    def _lost_commits(self, tps: set[TP] | None = None, timeout: float = 10.0) -> list[str] | None:
        return offsets.lost_commits(self.consumer, self.tracker, tps, timeout)

    def _lost_data(self, details: list[str]) -> None:
        """Kafka lost data this process read: stop, saying so (see the package docstring)."""
        if self._data_lost:
            return
        self._data_lost = True
        message = offsets.lost_data_message(details, self.group_id)
        log.error("%s", message)
        self._failure = BrokerUnavailable(message)

    # ---- rebalances -------------------------------------------------------------------------
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
                offsets.confirm(self.tracker, consumer.commit(
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
        self.admission.drop(tps)
        if lost:
            return {}
        await self._settle(30.0)
        return self.tracker.committable(tps)
