"""What the calendar feed reads and writes on Kafka.

Writes (`KafkaRoundWriter`): every round's busy records (`wedsync.calendar.busy`, keyed by
supplier) and notices (`wedsync.events`), acknowledged by the cluster (idempotent, acks=all),
THEN the calendar's new sync state (`wedsync.calendar.sync_state`, compacted). The cursor
never gets ahead of the records: a crash in between repeats the round from the old cursor,
which writes the same records again (same ids; the detector takes them as resends). Not a
Kafka transaction: the Faust worker reads these topics, and its fetch loop takes the offsets
a transaction's commit markers occupy for lost records (streams/kafka/faust_transport.py).
Rounds that finish together are written together (one flush for a burst of thousands of
calendars); each caller's `write` returns once its round is written, or raises
BrokerUnavailable (the round is fetched again from the old cursor).

Reads: `read_sync_states` (the compacted sync state, to its end, at start); the calendar
deliveries, their results and the calendar ledger (`OwnedFeed`: what we wrote in vendors'
calendars, for echo and drift, read whole at start); the ingest gateway's pushes (`PushReader`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from streams.errors import BrokerUnavailable
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config
from streams.kafka.replay import read_to_end
from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.echo import OwnedEvent, OwnedIndex
from streams.models import DomainEvent
from streams.topics import (
    CALENDAR_BUSY,
    CALENDAR_SYNC_STATE,
    DELIVER,
    DELIVERY_RESULTS,
    EVENTS,
    INGEST_WEBHOOKS,
    LEDGER,
    Destination,
)

from connectors.calendar.feed.sync_state import CalendarSync

log = logging.getLogger("wedsync.calendar.feed")


@dataclass
class _Pending:
    records: list[BusyRecord]
    events: list[DomainEvent]
    state: CalendarSync | None
    key: str
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class KafkaRoundWriter:
    def __init__(self, kafka: Kafka, codecs: TopicCodecs, client_id: str) -> None:
        self.producer = Producer(
            client_config(
                kafka,
                {
                    "client.id": client_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                    "allow.auto.create.topics": False,
                    "log.connection.close": False,
                },
            )
        )
        self.busy = codecs[CALENDAR_BUSY]
        self.events = codecs[EVENTS]
        self.queue: list[_Pending] = []
        self._flushing: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self, timeout_s: float = 60.0) -> None:
        """Check that the cluster answers before the first round."""
        try:
            self.producer.list_topics(CALENDAR_SYNC_STATE.name, timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerUnavailable(f"calendar feed: the cluster does not answer: {exc}") from exc

    async def write(
        self,
        records: list[BusyRecord],
        events: list[DomainEvent],
        state: CalendarSync | None,
        key: str,
    ) -> None:
        pending = _Pending(records, events, state, key)
        self.queue.append(pending)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await pending.done

    async def _flush(self) -> None:
        while self.queue:
            batch, self.queue = self.queue, []
            try:
                failed = await asyncio.to_thread(self._write_batch, batch)
            except Exception as exc:
                failed = {id(p): str(exc) for p in batch}
            for p in batch:
                if p.done.done():
                    continue
                if id(p) in failed:
                    p.done.set_exception(
                        BrokerUnavailable(f"calendar round not written: {failed[id(p)]}")
                    )
                else:
                    p.done.set_result(None)

    def _write_batch(self, batch: list[_Pending]) -> dict[int, str]:
        """Records and notices of every round, acknowledged; then the sync states of the
        rounds whose records all were. A round whose state was not written is fetched again
        from its old cursor (the same records again: the detector takes them as resends)."""
        failed: dict[int, str] = {}

        def on_delivery(item: _Pending) -> Any:
            def report(err: KafkaError | None, _msg: Message) -> None:
                if err is not None:
                    failed.setdefault(id(item), str(err))

            return report

        for item in batch:
            report = on_delivery(item)
            for record in item.records:
                self.producer.produce(
                    CALENDAR_BUSY.name,
                    self.busy.encode(record),
                    record["supplier_id"].encode(),
                    on_delivery=report,
                )
            for event in item.events:
                self.producer.produce(
                    EVENTS.name,
                    self.events.encode(event),
                    event["aggregate_id"].encode(),
                    on_delivery=report,
                )
        if self.producer.flush(30) > 0:
            return {id(p): "not acknowledged in 30 s" for p in batch}
        for item in batch:
            if id(item) in failed:
                continue
            value = None if item.state is None else item.state.to_bytes()
            self.producer.produce(
                CALENDAR_SYNC_STATE.name, value, item.key.encode(), on_delivery=on_delivery(item)
            )
        if self.producer.flush(30) > 0:
            return {id(p): "sync state not acknowledged in 30 s" for p in batch}
        self.batches += 1
        return failed

    def close(self) -> None:
        self.producer.flush(10)


def read_sync_states(kafka: Kafka, app_id: str, timeout_s: float = 120.0) -> list[CalendarSync]:
    """Every calendar's latest sync state."""
    consumer = Consumer(
        client_config(
            kafka,
            {
                "group.id": f"{app_id}-calendar-feed-state",  # assigns, never joins
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "log.connection.close": False,
            },
        )
    )
    latest: dict[str, bytes | None] = {}

    def apply(msg: Message) -> None:
        latest[(msg.key() or b"").decode()] = msg.value()

    try:
        pending = read_to_end(consumer, [(CALENDAR_SYNC_STATE.name, 0)], apply, timeout=timeout_s)
        if pending:
            raise BrokerUnavailable(f"calendar sync state not read to its end in {timeout_s:.0f} s")
    finally:
        consumer.close()
    out = []
    for key, raw in latest.items():
        if raw is None:
            continue
        try:
            out.append(CalendarSync.from_bytes(raw))
        except ValueError:
            log.error("calendar sync state of %s unreadable; it starts over with a full sync", key)
    return out


class _Tail:
    """A consumer polled in a daemon thread: subscribed in its group (`start`), or assigned
    to every partition of its topics, read to their end, then followed (`catch_up`)."""

    def __init__(
        self, kafka: Kafka, group: str, topics: list[str], on: Callable[[Message], None],
        *, commit: bool = True,
    ) -> None:  # fmt: skip
        self.consumer = Consumer(
            client_config(
                kafka,
                {
                    "group.id": group,
                    "enable.auto.commit": commit,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                    "log.connection.close": False,
                },
            )
        )
        self.topics, self.on = topics, on
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.consumer.subscribe(self.topics)
        self._follow()

    def catch_up(self, partitions: list[tuple[str, int]], timeout_s: float) -> None:
        """Read `partitions` from their beginning to their end now, then follow them.
        BrokerUnavailable when that takes longer than `timeout_s`."""
        pending = read_to_end(self.consumer, partitions, self._apply_safely, timeout=timeout_s)
        if pending:
            raise BrokerUnavailable(
                f"{sorted(pending)} not read to their end in {timeout_s:.0f} s; is Kafka slow?"
            )
        self._follow()

    def _follow(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"tail:{self.topics[0]}", daemon=True
        )
        self._thread.start()

    def _apply_safely(self, msg: Message) -> None:
        try:
            self.on(msg)
        except Exception:
            log.exception("calendar feed: a record of %s is unreadable; skipped", msg.topic())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for msg in self.consumer.consume(500, 0.2):
                    if msg.error() is None:
                        self._apply_safely(msg)
            except Exception:
                log.exception("calendar feed: reading %s failed; going on", self.topics)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.consumer.close()


class OwnedFeed(_Tail):
    """What we wrote in vendors' calendars, into an `OwnedIndex`: our calendar deliveries
    (what we asked each calendar to hold), their results (the provider ids our writes got:
    how Graph events are recognised), and the calendar ledger (the compacted newest result
    per wedding and calendar: the provider ids of writes older than the other topics keep).

    Read from the beginning at every start and to the end before the feed's first round
    (`load`): the index lives in memory only, and a round that ran before it was filled
    would take our own Graph events, written while the feed was down, for the vendor's
    busy time. A result may be read before its delivery (another topic): it waits for it.
    A ledger result whose delivery is no longer kept still marks its provider id as ours,
    under a stand-in external id (`ledger:<aggregate>`): an echo, never busy time, with no
    times to compare for drift."""

    def __init__(self, kafka: Kafka, codecs: TopicCodecs, owned: OwnedIndex, group: str) -> None:
        self.owned = owned
        self.deliveries = codecs[DELIVER[Destination.CALENDAR].deliver]
        self.results = codecs[DELIVERY_RESULTS]
        self.ledger = codecs[LEDGER[Destination.CALENDAR]]
        self.external_of: dict[str, tuple[str, str]] = {}  # delivery id -> (integration, ext id)
        self.waiting: dict[str, str] = {}  # delivery id -> provider id, its delivery unread
        deliver = DELIVER[Destination.CALENDAR]
        self._topics = [
            deliver.deliver,
            deliver.retry,
            DELIVERY_RESULTS,
            LEDGER[Destination.CALENDAR],
        ]
        super().__init__(kafka, group, [t.name for t in self._topics], self._apply, commit=False)

    def load(self, timeout_s: float = 120.0) -> None:
        """Read everything kept to its end, then follow (see the class docstring)."""
        self.catch_up([(t.name, p) for t in self._topics for p in range(t.partitions)], timeout_s)

    def _apply(self, msg: Message) -> None:
        if msg.topic() == DELIVERY_RESULTS.name:
            self._result(self.results.decode(msg.value() or b""))
        elif msg.topic() == LEDGER[Destination.CALENDAR].name:
            if msg.value():  # a tombstone of compaction says nothing of ownership
                self._ledger(self.ledger.decode(msg.value() or b""))
        else:
            self._delivery(self.deliveries.decode(msg.value() or b""))

    def _delivery(self, record: Any) -> None:
        integration, external = record.get("integration_id"), record.get("external_event_id")
        if not integration or not external:
            return
        self.external_of[record["delivery_id"]] = (integration, external)
        deleted = record.get("operation") == "delete"
        self.owned.wrote(
            integration,
            OwnedEvent(
                external,
                None if deleted else record.get("starts_at_ms"),
                None if deleted else record.get("ends_at_ms"),
                deleted=deleted,
                aggregate_id=str(record.get("aggregate_id") or ""),
                local_start=record.get("local_start"),
                local_end=record.get("local_end"),
            ),
        )
        provider_id = self.waiting.pop(record["delivery_id"], None)
        if provider_id is not None:
            self.owned.got_id(integration, provider_id, external)

    def _result(self, record: Any) -> None:
        if record.get("destination") != "calendar" or not record.get("provider_id"):
            return
        found = self.external_of.get(record.get("delivery_id"))
        if found is None:
            self.waiting[str(record.get("delivery_id"))] = str(record["provider_id"])
            return
        self.owned.got_id(found[0], str(record["provider_id"]), found[1])

    def _ledger(self, record: Any) -> None:
        integration, provider_id = record.get("integration_id"), record.get("provider_id")
        if record.get("destination") != "calendar" or not integration or not provider_id:
            return
        found = self.external_of.get(record.get("delivery_id"))
        if found is not None:
            self.owned.got_id(found[0], str(provider_id), found[1])
        elif (integration, str(provider_id)) not in self.owned.by_provider_id:
            stand_in = f"ledger:{record.get('aggregate_id') or record.get('delivery_id')}"
            self.owned.got_id(str(integration), str(provider_id), stand_in)


class PushReader(_Tail):
    """The ingest gateway's records; `on_push(record)` for the calendar providers' ones."""

    def __init__(
        self,
        kafka: Kafka,
        codecs: TopicCodecs,
        group: str,
        on_push: Callable[[dict[str, Any]], None],
    ) -> None:
        self.codec = codecs[INGEST_WEBHOOKS]
        self.on_push = on_push

        def apply(msg: Message) -> None:
            record = self.codec.decode(msg.value() or b"")
            if record.get("verification") in ("google_channel", "graph_client_state"):
                self.on_push(record)

        super().__init__(kafka, group, [INGEST_WEBHOOKS.name], apply)
