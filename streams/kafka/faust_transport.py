"""Faust's Kafka transport: the consumer's fetch wait taken from settings, and a consumer
that never commits past a record it did not process.

Faust's aiokafka driver hard-codes `fetch_max_wait_ms=1500` for the worker's consumer. On a
Kafka cluster that only bounds idle polling: a fetch returns as soon as data arrives. The
embedded broker (Tansu 0.6) holds every fetch for its whole wait whether data arrived or not
(`tansu-broker/src/broker/fetch.rs`: fetch, then sleep the remaining wait), so there every
Faust hop (normalize, state, conflicts) cost up to 1.5 s. Measured on the bench's system
(bench/routing.py, row commit -> CDC -> normalize -> route -> delivery at 250 changes/s, on a
fresh broker, 6 partitions): p50 281 ms, p99 3.2 s with 1500 ms; p50 49 ms with 50 ms.

The wait is `WEDSYNC_FAUST_FETCH_WAIT_MS` (default 50): shorter means lower latency on the
embedded broker and more fetch requests while idle (the broker's CPU goes from ~24% to ~31%
idle at 50 ms, ~50% at 10 ms, measured on the bench's system at rest).

**Records skipped after a restart (fixed here).** Faust's fetch loop
(`faust.transport.consumer.Consumer._drain_messages`) remembers the last offset it handed to
the streams per partition (`_read_offset`) and, when a record arrives more than one offset
after it, records the offsets between as a "gap" (meant for transaction markers) that is
later committed as if processed. After a (re)assignment, Faust's recovery resumes the stream
partitions and then seeks them to their committed offsets (`perform_seek`, which resets
`_read_offset`) while records fetched before that seek are still being handed out, on
aiokafka's thread, by another of its two method workers. Reproduced on Apache Kafka (kill -9
of the worker under load, restart 5 s later: `tests/integration/test_worker_restart.py`):
records fetched while the stream partitions were not yet flowing were skipped by the streams
(never acked), the next pre-seek record after the reset looked like a jump past them, they
became a gap, and the worker committed past them: every partition lost the block of records
produced while it was down, silently.

Two more, in Faust's commit: it let the commit pass one unprocessed record sitting exactly
at the committed offset (`_new_offset`: `min(acked) - committed > 1`, where the committed
offset is the next record to read), and it committed records whose events were still in the
producer's buffer (`_commit_tps`: the producer is flushed first now): one record lost now
and then after a kill.

The fix is exact, not a timing change (`streams.kafka.faust_positions.ReadPositions`, pure):
every change of a partition's fetch position (aiokafka's `Fetcher.seek_to`, which `seek`,
`seek_to_committed` and recovery's seeks all use) bumps that partition's position epoch, and
every fetch is stamped with the epochs at the moment aiokafka drained its records (both on
aiokafka's thread, with no await between the change or the drain and the stamp). The fetch
loop (`_Consumer._drain_messages`, Faust's own deciding by `ReadPositions`) never hands out,
nor counts, a record fetched before its partition's latest seek; a gap is only what the
broker skipped right after a seek; a commit never passes an unprocessed record.

**Records Faust drops after the fetch.** Faust's `getmany` drops the rest of a fetched
batch when the flow stops, the generation changes or a partition is paused, after aiokafka
has moved its position past them; a seek usually follows, but not on every path, and the
next fetch then starts after them (a jump within one continuous read, which Faust and the
first fix took for a gap and committed: the residual loss of 10 in 623 after a kill -9),
or one dropped record holds every later commit (the stall of 1 in 108). Both are read
again now: a jump within one read seeks the partition back to the first offset skipped,
and a commit held behind one record for `HOLE_PATIENCE_S` while later ones are processed
seeks it back to its committed offset (`wedsync_worker_read_again_total`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message

from streams.kafka.faust_output import DirectOutput
from streams.kafka.faust_positions import (
    HoleWatch,
    ReadPositions,
    commit_offset,
    counts_as_processed,
)
from streams.kafka.faust_sends import SendFailures
from streams.metrics import READ_AGAIN

# How long a partition's commit may stay held behind one unprocessed record while later
# ones are processed before it is read again from its committed offset. Each agent reads
# its partitions in order, one record at a time, so a held commit is a record lost on the
# way to the stream, never one still being worked on.
HOLE_PATIENCE_S = 5.0

_REREAD = {
    "dropped": "were dropped by Faust after the fetch (a jump within one continuous read)",
    "held": f"hold the commit behind processed records for over {HOLE_PATIENCE_S:.0f} s",
}


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its Fetcher
        consumer._fetch_max_wait_ms = cast(App, self.app).fetch_max_wait_ms
        positions = cast(_Consumer, self.consumer).positions
        start = consumer.start

        async def start_tracking_seeks() -> None:
            await start()
            fetcher = consumer._fetcher
            seek_to = fetcher.seek_to

            def tracked_seek_to(tp: Any, offset: int) -> None:
                seek_to(tp, offset)
                positions.moved(tp, offset)  # no await between the move and the stamp

            fetcher.seek_to = tracked_seek_to

        consumer.start = start_tracking_seeks
        return consumer

    async def _fetch_records(self, *args: Any, **kwargs: Any) -> Any:
        records = await super()._fetch_records(*args, **kwargs)
        cast(_Consumer, self.consumer).positions.stamp()  # no await since the drain
        return records


class _Consumer(driver.Consumer):
    """Faust's aiokafka consumer whose fetch loop and commits follow `ReadPositions`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.positions = ReadPositions()
        self.holes = HoleWatch(patience_s=HOLE_PATIENCE_S)
        self._rereads: set[asyncio.Future[None]] = set()
        super().__init__(*args, **kwargs)

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self.positions.forget(tp)
            self.holes.forget(tp)
        await super().on_partitions_revoked(revoked)

    async def _commit_tps(self, tps: Any, start_new_transaction: bool) -> bool:
        """Choose the offsets, flush the producer, then commit them: Faust (attachments off,
        its default) committed acked records whose events were still in the producer's
        buffer, so a kill -9 right after a commit could lose them. The offsets are chosen
        BEFORE the flush: every record acked by then had its sends handed to the producer,
        so the flush covers them (chosen after it, a record acked while it ran could be
        committed with its events in flight). The flush is bounded (5 s): a commit skipped
        is only a later commit (the offsets chosen are read again, never lost), and a
        rebalance is never held by it. Once the broker refused a send (`SendFailures`),
        nothing is committed again and the worker stops."""
        failures = cast(App, self.app).send_failures
        offsets = {} if failures.first else self._filter_committable_offsets(tps)
        if offsets:
            try:
                await asyncio.wait_for(self.app.producer.flush(), timeout=5.0)
            except TimeoutError:
                self.log.warning("producer flush took over 5 s; committing later")
                return False
            for output in cast(App, self.app).outputs:
                if not await output.flush(5.0):
                    self.log.warning("agents' output flush took over 5 s; committing later")
                    return False
            # a refused send's sensor call runs before the flush returns (aiokafka resolves
            # a batch's future, then its records' futures; Faust's callback on a record's
            # future is queued before the flush's wake-up); one more turn of the loop anyway
            await asyncio.sleep(0)
        if failures.first is not None:
            if not self.app.crash_reason:
                self.log.critical("%s", failures.first)
                await self.app.crash(failures.first)
            return False
        if not offsets:
            return False
        await self._handle_attached(offsets)
        return bool(
            await self._commit_offsets(offsets, start_new_transaction=start_new_transaction)
        )

    def ack(self, message: Message) -> bool:
        """Faust's ack, except for a message a stream skipped unprocessed (fetched in an
        earlier generation, or taken while the flow was stopped for a rebalance): Faust
        counted it processed, so the commit passed it, and its copy read again after the
        rebalance was then dropped as done. Not counted here: the partition is read again
        from its committed offset and the copy is processed (at-least-once)."""
        app = self.app
        if not counts_as_processed(
            message.generation_id, app.consumer_generation_id, app.flow_control.is_active()
        ):
            message.acked = True  # this copy is done with; the commit does not pass it
            return False
        return bool(super().ack(message))

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's commit offset for `tp`, with an unprocessed record at the head (even
        exactly at the committed offset) holding the commit back (`commit_offset`)."""
        acked = self._acked[tp]
        if not acked:
            return None
        gap = self._gap[tp]
        if gap:
            top = max(acked)
            spans = sorted(gap.overlap(0, top), key=lambda span: span.begin)
            if spans:
                filled = [o for span in spans for o in range(span.begin, span.end)]
                acked.extend(filled)
                gap.chop(0, max(filled[-1], top + 1))
        acked.sort()
        committed = self._committed_offset[tp]
        offset, covered = commit_offset(acked, committed)
        if offset is not None:
            self._acked_index[tp].difference_update(acked[:covered])
            acked[:covered] = []
        elif self.holes.stuck(tp, committed, acked[0], time.monotonic()):
            assert committed is not None
            self._rereads.add(asyncio.ensure_future(self._read_again(tp, committed, "held")))
            self._rereads = {task for task in self._rereads if not task.done()}
        return offset

    async def _read_again(self, tp: TP, offset: int, why: str) -> None:
        """Seek `tp` back to `offset` on aiokafka's thread (where its fetcher lives; the seek
        bumps the position epoch, so what was fetched before is stale), so that records
        Faust never processed are fetched again. Processed ones are skipped on the re-read."""
        self.log.warning(
            "%s: records from offset %d %s; reading them again", tp, offset, _REREAD[why]
        )
        READ_AGAIN.labels(why).inc()
        thread = cast(_ConsumerThread, self._thread)
        consumer = thread._ensure_consumer()

        async def seek() -> None:
            consumer.seek(tp, offset)

        try:
            await thread.call_thread(seek)
        except Exception as exc:  # revoked meanwhile: the next assignment seeks anyway
            self.log.warning("%s: not read again (%r)", tp, exc)
            return
        self._read_offset[tp] = offset

    def _real_gap(self, tp: TP, skipped: range) -> None:
        self._gap[tp].addi(skipped.start, skipped.stop)
        self._gap[tp].merge_overlaps()

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (faust-streaming 0.11-0.15) deciding by `ReadPositions`: a
        record fetched before its partition's latest seek is dropped (the fetcher reads it
        again), a gap is only what the broker skipped right after a seek, a jump within one
        continuous read is read again, and a record read again after a seek back is
        handed out again unless it was processed.
        Commit every N acks and yielding to the loop are Faust's."""
        consumer_should_stop = cast(Any, self)._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        positions = self.positions
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch: AsyncIterator[tuple[TP, Message]] = self.getmany(timeout=1.0)
                await asyncio.sleep(0)
                if not self.should_stop:
                    async for tp, message in batch:
                        if positions.stale(tp):
                            continue
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        skipped = positions.accept(tp, offset)
                        acking = acks_enabled_for(message.topic)
                        if skipped and acking:
                            if not skipped.by_broker:  # dropped by Faust after the fetch
                                await self._read_again(tp, skipped.offsets.start, "dropped")
                                continue  # this and the batch's rest of tp are stale now
                            self._real_gap(tp, skipped.offsets)
                        if acking and offset in self._acked_index[tp]:
                            continue  # read again after a seek back, already processed
                        if self._commit_every is not None and self._n_acked >= self._commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await self.wait_first(self.callback(message), self.suspend_flow.wait())
                        self._read_offset[tp] = offset
                    self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class Transport(driver.Transport):
    Consumer: ClassVar[Any] = _Consumer


class App(faust.App):
    """faust.App whose worker consumer fetches with `fetch_max_wait_ms` and stops, without
    committing, once the broker refused one of its sends."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)
        self.send_failures = SendFailures()
        self.sensors.add(self.send_failures)
        self.outputs: list[DirectOutput] = []  # flushed before every commit, like Faust's

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
