"""The PostgreSQL CDC source: logical replication (pgoutput) -> `wedsync.ingest.cdc`.

Old values (`before`) of updates and deletes carry every column only when the table has
REPLICA IDENTITY FULL (`ALTER TABLE wedding_details REPLICA IDENTITY FULL`); with the default
identity PostgreSQL sends the primary-key columns of deletes and nothing for updates (unless
the key changed). Tables whose consumers compare old and new values (wedding_details,
journey_progress, core_fields) need FULL.

Lifecycle (`PostgresCdcSource.run`):

1. Ensure the publication exists (`FOR TABLE <tables>`, or `FOR ALL TABLES` when no filter).
2. If the slot does not exist and `snapshot` is on: create a TEMPORARY slot with
   EXPORT_SNAPSHOT, read every configured table in a REPEATABLE READ transaction on that
   snapshot (op `r`), wait until Kafka acknowledged every row, then copy the temporary slot
   into the permanent one (`pg_copy_logical_replication_slot`). The permanent slot starts at
   the snapshot's consistent point, so streaming continues with no gap and no overlap; a crash
   during the snapshot leaves no permanent slot behind, so the next start snapshots again.
   With `snapshot` off the permanent slot is created directly.
3. Stream from the slot. Each change is produced (idempotent producer, acks=all) as soon as
   it is decoded; a WAL position is confirmed with `send_feedback(flush_lsn=...)` only after
   Kafka acknowledged every event of every transaction up to that commit (`AckTracker`).
   After a crash the slot replays from the last confirmed position: at-least-once, with
   deterministic `event_id`s so consumers can drop duplicates.
4. Heartbeat: every `heartbeat_interval_s` the confirmed position is sent again, and when
   nothing is in flight the server's reported WAL end is confirmed, so an idle or fully
   filtered database does not pin WAL.
5. State and watermarks: changes of the state tables (the contract's `state` tables) are
   also written, in commit order, to the one-partition `wedsync.ingest.state`, the routing
   state's only input. Every change carries `state_lsn`: the commit LSN of the last
   transaction at or before its own that changed a state table (a transaction's events are
   held until its commit to know). After a state-changing transaction (at most every
   `watermark_interval_s`, and every `heartbeat_interval_s` when idle) a heartbeat record
   (op 'h', the last commit LSN) follows it there; routing routes an event only once the
   state has folded a heartbeat >= its `state_lsn`. Events after no recent state change
   wait for nothing.
6. Contract: every captured table of the source contract is checked at start (and the
   decoder checks each Relation message); a missing or mistyped column stops the source
   with ContractViolation naming `table.column` and what to do.
7. A change that cannot be carried goes to `wedsync.ingest.dlq` with the table, row key,
   LSN, failing column and reason in headers and its carried columns' text as value, never
   a secret (`dead.py`); a message that cannot even be parsed carries its pgoutput bytes
   unless it is a row message (those hold every column). The stream goes on and the slot
   advances past it (a decode error must not pin WAL on the primary or crash-loop). A
   snapshot row that cannot be converted is the same dead letter (op `r`), and the
   snapshot goes on.
8. Record size (`emit.py`, `cut.py`, `limits.py`): before anything else, `max_record_bytes`
   is checked against the topics' `max.message.bytes` and the brokers' `message.max.bytes`
   (ConfigurationError naming the setting and the limits). A change over it is cut to fit
   and marked; one that cannot fit is a dead letter, without its values.
9. `stop` (set by SIGINT/SIGTERM in `main`) ends the loop: the producer is flushed, the
   final position confirmed, and the connections closed.

A failed delivery or a fatal producer error raises `BrokerUnavailable` without confirming
anything further; the process exits and resumes from the slot when restarted.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from streams import metrics
from streams.errors import BrokerUnavailable, ConfigurationError, DecodeError
from streams.kafka.codec import TopicCodecs
from streams.models import ChangeEvent
from streams.topics import INGEST_CDC, INGEST_DLQ, INGEST_STATE

from connectors.sources.postgres_cdc.acks import AckTracker, TxAcks
from connectors.sources.postgres_cdc.catalog import (
    captured_tables,
    check_contract,
    ensure_publication,
    load_primary_keys,
    slot_exists,
    slot_position,
)
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.decode import (
    HEARTBEAT_KEY,
    ChangeDecoder,
    TableRules,
    heartbeat_event,
    set_state_lsn,
    stamp_transaction,
)
from connectors.sources.postgres_cdc.emit import H_VALUE_DROPPED, Emitter, lsn_text, make_producer
from connectors.sources.postgres_cdc.limits import check_kafka_limits
from connectors.sources.postgres_cdc.rows import Encoded, RowPlans
from connectors.sources.postgres_cdc.snapshot import SnapshotReader, create_slot, keep_slot
from connectors.sources.postgres_cdc.state_read import check_state_topic_kept, read_state_keys

__all__ = ["PostgresCdcSource", "make_producer"]

log = logging.getLogger(__name__)
ROW_MESSAGES = (b"I", b"U", b"D")  # pgoutput messages that carry row values
TX_BUFFER = 50_000  # events of one transaction held until its commit (see _hold)
IN_FLIGHT_WAIT_S = 0.002  # the idle wait while Kafka has not acknowledged everything yet


class PostgresCdcSource:
    """One replication slot into the CDC topic. Inject the producer (`make_producer(...,
    max_record_bytes=config.max_record_bytes)`), the codecs, an AdminClient to check the
    record size limit against Kafka's at start (without one, a warning says it is not
    checked) and a Consumer to read the state's row keys back at start (`state_read.py`;
    without one, a TRUNCATE removes only the rows this process saw, and a warning says so);
    call `run`."""

    def __init__(
        self,
        config: PostgresCdcConfig,
        producer: Producer,
        codecs: TopicCodecs,
        *,
        admin: AdminClient | None = None,
        state_consumer: Consumer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        metrics.export("cdc")  # this process's /metrics serves them
        self.config = config
        self.producer = producer
        self.admin = admin
        self.codecs = codecs
        self.state_consumer = state_consumer
        self.clock = clock
        self.tracker = AckTracker()
        self.confirmed_lsn = 0
        self.primary_keys: dict[str, tuple[str, ...]] = {}
        self.rules = TableRules(frozenset(config.tables), config.exclude_columns)
        self.contract = config.contract()
        self.state_tables = self.contract.state_tables()
        self.decoder = ChangeDecoder(
            config.dbname,
            self.rules,
            self.primary_keys,
            lambda: int(self.clock() * 1000),
            self.contract,
        )
        self.emit = Emitter(
            producer, codecs, self.tracker, config, self.contract, self.decoder.column_types,
            self._now_ms,
        )  # fmt: skip
        self.rows = RowPlans(self.decoder, self.emit.layout)
        self.snapshot_rows = 0
        self._last_commit_lsn = 0  # of the last transaction produced
        self._state_lsn = 0  # commit LSN of the last transaction that changed a state table
        self._heartbeat_lsn = 0  # of the last heartbeat produced
        self._next_watermark = 0.0
        self._tx_events: list[tuple[bytes, ChangeEvent | Encoded]] = []  # the open transaction's
        self._tx_final_lsn: int | None = None  # set when the transaction outgrew the buffer

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- producing ---------------------------------------------------------------------
    @property
    def dead_letters(self) -> int:
        return self.emit.dead_letters

    def _dead_letter(self, tx: TxAcks, data: bytes, lsn: int, exc: Exception) -> None:
        """An undecodable message to wedsync.ingest.dlq, reason in headers: its pgoutput
        bytes, unless it is a row message (they hold every column, secrets included)."""
        table = _message_table(self.decoder, data)
        value: bytes | None = data
        extra: list[tuple[str, bytes]] = []
        if data[:1] in ROW_MESSAGES:
            value = None
            extra = [(H_VALUE_DROPPED, b"a row message holds every column, secrets included: "
                      b"left out; the change is in the WAL at this LSN")]  # fmt: skip
        self.emit.dead_letter(tx, f"lsn:{lsn}".encode(), value, exc, lsn=lsn, table=table,
                              extra=extra)  # fmt: skip

    @property
    def _watermark_due(self) -> bool:
        """A state-changing transaction is not yet followed by a heartbeat."""
        return self._state_lsn > self._heartbeat_lsn

    def _watermark(self, tx: TxAcks | None, *, idle: bool) -> None:
        """A heartbeat on wedsync.ingest.state after the transactions produced so far, when
        a state-changing transaction needs one (at most every watermark_interval_s), or
        when `idle` (the last commit again)."""
        now = time.monotonic()
        if now < self._next_watermark or not (self._watermark_due or idle):
            return
        self._next_watermark = now + self.config.watermark_interval_s
        lsn = self._heartbeat_lsn = max(self._last_commit_lsn, self._heartbeat_lsn)
        if lsn == 0:
            return
        event = heartbeat_event(self.config.dbname, lsn, self._now_ms())
        target = tx if tx is not None else self.tracker.begin()
        self.emit.send(
            target, INGEST_STATE.name, HEARTBEAT_KEY, self.emit.encode_state(dict(event))
        )
        if tx is None:
            self.tracker.commit(target, lsn)
        metrics.CDC_WATERMARKS.inc()

    # ---- snapshot ----------------------------------------------------------------------
    def _snapshot(self, query: Any, repl_cur: Any) -> None:
        """Every captured table as of a temporary slot's snapshot, then the permanent slot
        from it, once Kafka acknowledged every row (lifecycle step 2)."""
        point = create_slot(repl_cur, self.config.slot_name)
        with query.cursor() as cur:
            tables = captured_tables(cur, self.config)
        reader = SnapshotReader(
            self.config, self.rules, self.contract, self.primary_keys, self.emit,
            self.decoder.column_types, self._now_ms, self.decoder.keys,
        )  # fmt: skip
        tx = self.tracker.begin()
        reader.read(point, tables, tx)
        self.snapshot_rows = reader.rows
        self._last_commit_lsn = self._state_lsn = point.lsn
        self._watermark(tx, idle=True)
        self.tracker.commit(tx, point.lsn)
        self.emit.flush(timeout=120.0)
        keep_slot(query, point, self.config.slot_name)
        log.info("snapshot done: %d rows, %d dead letters; slot %s created at %s",
                 self.snapshot_rows, self.dead_letters, self.config.slot_name,
                 lsn_text(point.lsn))  # fmt: skip

    def _resume_at(self, lsn: int) -> None:
        """Streaming starts at `lsn` without a snapshot: which state changes before it the
        routing state has folded is unknown here, so the changes until the next state change
        carry `lsn` as their state_lsn and a heartbeat past it follows (routing waits for
        the state to reach it, instead of not waiting at all)."""
        self._last_commit_lsn = self._state_lsn = lsn

    def _read_state_keys(self) -> None:
        """The row keys the state holds, before anything is decoded (see state_keys.py)."""
        if self.state_consumer is None:
            log.warning("no state consumer: a TRUNCATE of a state table deletes only the rows "
                        "this process wrote, not those from before its start")  # fmt: skip
            return
        try:
            read_state_keys(self.state_consumer, self.codecs, self.config.dbname,
                            self.decoder.keys)  # fmt: skip
        finally:
            self._close_state_consumer()

    def _close_state_consumer(self) -> None:
        if self.state_consumer is not None:
            with contextlib.suppress(Exception):
                self.state_consumer.close()
            self.state_consumer = None

    # ---- streaming ---------------------------------------------------------------------
    def _confirm(self, cur: Any, lsn: int, *, heartbeat: bool = False) -> None:
        if lsn > self.confirmed_lsn or heartbeat:
            self.confirmed_lsn = max(self.confirmed_lsn, lsn)
            cur.send_feedback(
                write_lsn=self.confirmed_lsn, flush_lsn=self.confirmed_lsn, force=heartbeat
            )
            metrics.CDC_CONFIRMED_LSN.set(self.confirmed_lsn)
        wal_end = int(cur.wal_end or 0)
        if wal_end:
            metrics.CDC_SERVER_WAL_END.set(wal_end)
            metrics.CDC_LAG_BYTES.set(max(0, wal_end - self.confirmed_lsn))
            if wal_end <= self.confirmed_lsn:  # nothing pending: no lag in time either
                metrics.CDC_LAG_SECONDS.set(0.0)

    def _handle(self, query: Any, msg: Any, state: dict[str, TxAcks]) -> None:
        payload = msg.payload
        if payload[:1] in ROW_MESSAGES:  # most messages: straight to bytes (rows.py)
            encoded = self.rows.prepare(payload, msg.data_start)
            if encoded is not None:
                self._hold(state["tx"], [(encoded.key, encoded)])
                return
        try:
            step = self.decoder.feed(payload, msg.data_start)
        except DecodeError as exc:  # a bad change is data: dead-letter it, keep streaming
            tx = state.get("tx")
            if tx is None:  # outside a transaction: confirmed with the next commit
                tx = state["tx"] = self.tracker.begin()
            self._dead_letter(tx, bytes(msg.payload), int(msg.data_start), exc)
            return
        if step.dead is not None:  # a row the event cannot hold: data, not a crash
            self.emit.dead_row(state["tx"], step.dead, lsn=int(msg.data_start))
        if step.begin is not None:
            state["tx"] = self.tracker.begin()
            self._tx_events, self._tx_final_lsn = [], None
        if step.events:
            self._hold(state["tx"], step.events)
        if step.commit is not None:
            tx = state.pop("tx")
            commit_lsn = step.commit.commit_lsn
            self._state_lsn = stamp_transaction(
                self._tx_events, commit_lsn, self._state_lsn, self.state_tables
            )
            if self._tx_final_lsn is not None:  # outgrew the buffer: waited for as a whole
                self._state_lsn = max(self._state_lsn, commit_lsn)
            for key, event in self._tx_events:
                self.emit.change(tx, key, event)
            self._tx_events = []
            self._last_commit_lsn = commit_lsn
            self._watermark(tx, idle=False)
            self.tracker.commit(tx, step.commit.end_lsn)
        if step.relation is not None:
            self.rows.forget()
            qualified = f"{step.relation.namespace}.{step.relation.name}"
            if qualified not in self.primary_keys:
                with query.cursor() as cur:
                    load_primary_keys(cur, self.primary_keys)
        if step.truncated_state:
            metrics.CDC_TRUNCATED_STATE_ROWS.inc(len(step.events))
            log.warning("TRUNCATE of state table %s: %d rows deleted from the routing state",
                        ", ".join(step.truncated_state), len(step.events))  # fmt: skip
        for table in step.truncated:
            if table not in step.truncated_state:
                metrics.CDC_TRUNCATES_SKIPPED.inc()
                log.warning("TRUNCATE of %s: no row events are produced for it", table)

    def _hold(self, tx: TxAcks, events: Sequence[tuple[bytes, ChangeEvent | Encoded]]) -> None:
        """Keep a transaction's events until its commit, which says whether it changed
        state (pgoutput sends a transaction whole, at commit, so this adds no latency). A
        transaction larger than TX_BUFFER is produced as it comes, every event marked to wait
        for the transaction's own commit (conservative, and correct)."""
        if self._tx_final_lsn is None:
            self._tx_events.extend(events)
            if len(self._tx_events) <= TX_BUFFER:
                return
            assert self.decoder.tx is not None
            self._tx_final_lsn = self.decoder.tx.final_lsn
            events, self._tx_events = self._tx_events, []
        for key, event in events:
            set_state_lsn(event, self._tx_final_lsn)
            self.emit.change(tx, key, event)

    def _stream(self, query: Any, cur: Any, stop: threading.Event) -> None:
        cur.start_replication(
            slot_name=self.config.slot_name,
            decode=False,
            options={"proto_version": "1", "publication_names": self.config.publication},
        )
        log.info("streaming from slot %s", self.config.slot_name)
        state: dict[str, TxAcks] = {}
        interval = self.config.heartbeat_interval_s
        next_heartbeat = time.monotonic() + interval
        next_confirm = time.monotonic() + 0.2
        handled = 0
        while not stop.is_set():
            msg = cur.read_message()
            if msg is not None:
                self._handle(query, msg, state)
                handled += 1
                if handled % 500:
                    continue
                self.producer.poll(0)
            else:
                self.producer.poll(0)
            self.emit.check_failure()
            now = time.monotonic()
            heartbeat = now >= next_heartbeat
            if msg is None or heartbeat or now >= next_confirm:
                lsn = self.tracker.advance()
                if self.tracker.idle and "tx" not in state and msg is None:
                    lsn = max(lsn, int(cur.wal_end or 0))  # idle: nothing of ours is pending
                self._confirm(cur, lsn, heartbeat=heartbeat)
                next_confirm = now + 0.2
            if heartbeat:
                metrics.CDC_HEARTBEATS.inc()
                if "tx" not in state:
                    self._watermark(None, idle=True)
                next_heartbeat = now + interval
            elif msg is None and "tx" not in state:
                self._watermark(None, idle=False)  # the last commits' heartbeat, if due
            if msg is None:
                wake = self._next_watermark if self._watermark_due else next_heartbeat
                timeout = max(0.0, min(wake - time.monotonic(), next_heartbeat - time.monotonic(),
                                       0.2))  # fmt: skip
                if len(self.producer):  # acks to come: serve them soon, then confirm them
                    timeout = min(timeout, IN_FLIGHT_WAIT_S)
                with contextlib.suppress(InterruptedError):
                    select.select([cur], [], [], timeout)
        self.emit.flush(timeout=30.0)
        self._confirm(cur, self.tracker.advance(), heartbeat=True)
        log.info("stopped; confirmed %s", lsn_text(self.confirmed_lsn))

    def run(self, stop: threading.Event) -> None:
        """Snapshot if needed, then stream until `stop` is set. Raises BrokerUnavailable if
        Kafka fails to acknowledge, ConfigurationError if PostgreSQL refuses the setup,
        max_record_bytes is above Kafka's limits or wedsync.ingest.state lets records expire
        (both checked first)."""
        try:
            check_kafka_limits(self.admin, self.config.max_record_bytes,
                               [INGEST_CDC.name, INGEST_STATE.name, INGEST_DLQ.name],
                               float(self.config.connect_timeout_s))  # fmt: skip
            check_state_topic_kept(self.admin, float(self.config.connect_timeout_s))
        except Exception:
            self._close_state_consumer()
            raise
        try:
            query = psycopg2.connect(self.config.dsn())
            repl = psycopg2.connect(
                self.config.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
            )
        except psycopg2.OperationalError as exc:
            raise ConfigurationError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        query.autocommit = True
        try:
            with query.cursor() as cur:
                ensure_publication(cur, self.config)
                load_primary_keys(cur, self.primary_keys)
                check_contract(cur, self.contract, captured_tables(cur, self.config))
                exists = slot_exists(cur, self.config.slot_name)
            self._read_state_keys()
            repl_cur = repl.cursor()
            if not exists and self.config.snapshot:
                self._snapshot(query, repl_cur)
            else:
                slot = self.config.slot_name
                if not exists:
                    repl_cur.create_replication_slot(slot, output_plugin="pgoutput")
                with query.cursor() as cur:
                    self._resume_at(slot_position(cur, slot))
            self._stream(query, repl_cur, stop)
        except psycopg2.errors.ObjectNotInPrerequisiteState as exc:  # e.g. wal_level
            raise ConfigurationError(str(exc).strip()) from exc
        except BrokerUnavailable:
            log.error("stopping: Kafka did not take every change; the slot stays confirmed at "
                      "%s and a restart resumes there", lsn_text(self.confirmed_lsn))  # fmt: skip
            raise
        finally:
            self._close_state_consumer()
            with contextlib.suppress(Exception):
                repl.close()
            with contextlib.suppress(Exception):
                query.close()


def _message_table(decoder: ChangeDecoder, data: bytes) -> str:
    """`schema.table` of a row message's relation when the decoder knows it, else ''."""
    if len(data) >= 5 and data[:1] in ROW_MESSAGES:
        rel = decoder.relations.get(int.from_bytes(data[1:5], "big"))
        if rel is not None:
            return f"{rel.namespace}.{rel.name}"
    return ""
