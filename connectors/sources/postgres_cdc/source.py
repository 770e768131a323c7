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
7. A change that cannot be decoded goes to `wedsync.ingest.dlq` with the original pgoutput
   bytes, the table, the LSN and the reason in headers; the stream goes on and the slot
   advances past it (a decode error must not pin WAL on the primary or crash-loop).
8. `stop` (set by SIGINT/SIGTERM in `main`) ends the loop: the producer is flushed, the
   final position confirmed, and the connections closed.

A failed delivery raises `BrokerUnavailable` without confirming anything further; the
process exits and resumes from the slot when restarted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from confluent_kafka import KafkaError, Message, Producer
from streams import metrics
from streams.errors import BrokerUnavailable, ConfigurationError, ContractViolation, DecodeError
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import dead_letter_headers
from streams.models import ChangeEvent
from streams.topics import INGEST_CDC, INGEST_DLQ, INGEST_STATE

from connectors.sources.postgres_cdc.acks import AckTracker, TxAcks
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.decode import (
    HEARTBEAT_KEY,
    ChangeDecoder,
    TableRules,
    build_event,
    convert,
    heartbeat_event,
    stamp_transaction,
)

log = logging.getLogger(__name__)
TX_BUFFER = 50_000  # events of one transaction held until its commit (see _hold)

_PRIMARY_KEYS_SQL = """
SELECT n.nspname || '.' || c.relname,
       array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey::int2[])
WHERE i.indisprimary
GROUP BY 1
"""
_COLUMNS_SQL = """
SELECT a.attname, a.atttypid, format_type(a.atttypid, NULL) FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
"""


def make_producer(bootstrap_servers: str, **overrides: Any) -> Producer:
    """The producer the source needs: idempotent, acks from all in-sync replicas."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "client.id": "wedsync-cdc",
    }
    conf.update(overrides)
    return Producer(conf)


def _lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _quote(qualified: str) -> str:
    schema, table = qualified.split(".", 1)
    return f'"{schema}"."{table}"'


class PostgresCdcSource:
    """One replication slot into the CDC topic. Inject the producer and codec; call `run`."""

    def __init__(
        self,
        config: PostgresCdcConfig,
        producer: Producer,
        codecs: TopicCodecs,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.producer = producer
        self.encode = codecs[INGEST_CDC].encode
        self.encode_state = codecs[INGEST_STATE].encode
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
        self.snapshot_rows = 0
        self.dead_letters = 0
        self._last_commit_lsn = 0  # of the last transaction produced
        self._state_lsn = 0  # commit LSN of the last transaction that changed a state table
        self._heartbeat_lsn = 0  # of the last heartbeat produced
        self._next_watermark = 0.0
        self._tx_events: list[tuple[bytes, ChangeEvent]] = []  # the open transaction's
        self._tx_final_lsn: int | None = None  # set when the transaction outgrew the buffer

    # ---- setup -------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _ensure_publication(self, cur: Any) -> None:
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.config.publication,))
        if cur.fetchone():
            return
        target = (
            "FOR TABLE " + ", ".join(_quote(t) for t in self.config.tables)
            if self.config.tables
            else "FOR ALL TABLES"
        )
        cur.execute(f'CREATE PUBLICATION "{self.config.publication}" {target}')
        log.info("created publication %s (%s)", self.config.publication, target)

    def _load_primary_keys(self, cur: Any) -> None:
        cur.execute(_PRIMARY_KEYS_SQL)
        self.primary_keys.update({name: tuple(cols) for name, cols in cur.fetchall()})

    def _columns(self, cur: Any, qualified: str) -> list[tuple[str, int, str]]:
        """(name, type oid, format_type name) of a table's live columns, in order."""
        cur.execute(_COLUMNS_SQL, (_quote(qualified),))
        return [(name, oid, type_name) for name, oid, type_name in cur.fetchall()]

    def _check_contract(self, cur: Any) -> None:
        """ContractViolation naming every `table.column` a captured contract table lacks or
        types differently (all tables at once, so one restart fixes everything)."""
        problems: list[str] = []
        for qualified in self._snapshot_tables(cur):
            if qualified.split(".", 1)[1] not in self.contract.by_db_name():
                continue
            live = {name: type_name for name, _, type_name in self._columns(cur, qualified)}
            problems.extend(map(str, self.contract.check(qualified.split(".", 1)[1], live)))
        if problems:
            raise ContractViolation(
                "the database does not satisfy the source contract: " + "; ".join(problems)
            )

    def _slot_exists(self, cur: Any) -> bool:
        cur.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.config.slot_name,)
        )
        return cur.fetchone() is not None

    def _snapshot_tables(self, cur: Any) -> list[str]:
        if self.config.tables:
            return list(self.config.tables)
        cur.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables "
            "WHERE pubname = %s ORDER BY 1",
            (self.config.publication,),
        )
        return [row[0] for row in cur.fetchall()]

    # ---- producing ---------------------------------------------------------------------
    def _on_delivery(
        self, tx: TxAcks, op: str | None, err: KafkaError | None, msg: Message
    ) -> None:
        if err is not None:
            self.tracker.acked(tx, f"{err.name()}: {err.str()}")
        else:
            self.tracker.acked(tx)
            if op is not None:
                metrics.CDC_EVENTS_PRODUCED.labels(op).inc()

    def _send(
        self, tx: TxAcks, topic: str, key: bytes, value: bytes, op: str | None = None, **kw: Any
    ) -> None:
        """Produce one record counted against `tx` (its LSN is confirmed once all are acked)."""
        callback = functools.partial(self._on_delivery, tx, op)
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=callback, **kw)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.05)
        self.tracker.sent(tx)

    def _produce(self, tx: TxAcks, key: bytes, event: ChangeEvent) -> None:
        record = dict(event)
        # replication lag in time: from the change's commit to its leaving for Kafka
        metrics.CDC_LAG_SECONDS.set(max(0.0, self._now_ms() / 1000 - event["source_ts_ms"] / 1000))
        self._send(tx, INGEST_CDC.name, key, self.encode(record), event["op"])
        if event["source"]["table"] in self.state_tables:
            self._send(tx, INGEST_STATE.name, key, self.encode_state(record))

    def _dead_letter(self, tx: TxAcks, data: bytes, lsn: int, exc: Exception) -> None:
        """An undecodable message: its pgoutput bytes to wedsync.ingest.dlq, reason in headers."""
        self.dead_letters += 1
        metrics.DEAD_LETTERS.labels("cdc", type(exc).__name__).inc()
        headers = dead_letter_headers(
            stage="cdc", error=exc, topic="pgoutput:" + self.config.slot_name,
            partition=0, offset=lsn, now_ms=self._now_ms(),
        )  # fmt: skip
        headers.append(("wedsync.dlq.lsn", _lsn_text(lsn).encode()))
        headers.append(("wedsync.dlq.table", _message_table(self.decoder, data).encode()))
        self._send(tx, INGEST_DLQ.name, f"lsn:{lsn}".encode(), data, headers=headers)
        log.error("undecodable change at %s dead-lettered: %s", _lsn_text(lsn), exc)

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
        self._send(target, INGEST_STATE.name, HEARTBEAT_KEY, self.encode_state(dict(event)))
        if tx is None:
            self.tracker.commit(target, lsn)
        metrics.CDC_WATERMARKS.inc()

    def _check_failure(self) -> None:
        if self.tracker.failure is not None:
            raise BrokerUnavailable(
                f"Kafka did not acknowledge a change event: {self.tracker.failure}"
            )

    def _flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.producer) > 0:
            self._check_failure()
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"{len(self.producer)} change events unacknowledged after {timeout:.0f}s"
                )
            self.producer.flush(0.5)
        self._check_failure()

    # ---- snapshot ----------------------------------------------------------------------
    def _snapshot(self, query: Any, repl_cur: Any) -> None:
        temp_slot = f"{self.config.slot_name}_snap_{os.getpid()}"[:63]
        repl_cur.execute(
            f'CREATE_REPLICATION_SLOT "{temp_slot}" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT'
        )
        _, consistent_point, snapshot_name, _ = repl_cur.fetchone()
        lsn = _parse_lsn(consistent_point)
        log.info("snapshot %s at %s", snapshot_name, consistent_point)
        with query.cursor() as cur:
            tables = self._snapshot_tables(cur)
        with contextlib.closing(psycopg2.connect(self.config.dsn())) as snap:
            snap.set_session(
                isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True
            )
            with snap.cursor() as cur:  # the first statement of the transaction
                cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
            tx = self.tracker.begin()
            for qualified in tables:
                self._snapshot_table(snap, qualified, lsn, tx)
            snap.rollback()
        self._last_commit_lsn = self._state_lsn = lsn
        self._watermark(tx, idle=True)
        self.tracker.commit(tx, lsn)
        self._flush(timeout=120.0)
        with query.cursor() as cur:
            cur.execute(
                "SELECT pg_copy_logical_replication_slot(%s, %s, false)",
                (temp_slot, self.config.slot_name),
            )
        log.info(
            "snapshot done: %d rows; slot %s created at %s",
            self.snapshot_rows,
            self.config.slot_name,
            consistent_point,
        )

    def _snapshot_table(self, snap: Any, qualified: str, lsn: int, tx: TxAcks) -> None:
        excluded = self.rules.excluded(qualified)
        schema, table = qualified.split(".", 1)
        with snap.cursor() as cur:
            live = self._columns(cur, qualified)
        names = {name: name for name, _, _ in live}
        contract = self.contract.by_db_name().get(table)
        if contract is not None:  # only the carried columns, under their contract names
            names, table = contract.carried(list(names)), contract.name
        columns = [(n, oid) for n, oid, _ in live if n not in excluded and n in names]
        if not columns:
            return
        pk = tuple(names.get(c, c) for c in self.primary_keys.get(qualified, ()))
        select_list = ", ".join(f'"{name}"::text' for name, _ in columns)
        commit_ms = self._now_ms()
        with snap.cursor(name=f"wedsync_snapshot_{table}"[:63]) as cur:
            cur.itersize = 5000
            cur.execute(f"SELECT {select_list} FROM {_quote(qualified)}")
            for values in cur:
                row = {
                    names[name]: None if value is None else convert(oid, value)
                    for (name, oid), value in zip(columns, values, strict=True)
                }
                key, event = build_event(
                    db=self.config.dbname,
                    schema=schema,
                    table=table,
                    op="r",
                    before=None,
                    after=row,
                    primary_key=pk,
                    lsn=lsn,
                    commit_lsn=lsn,
                    tx_id=None,
                    commit_ms=commit_ms,
                    now_ms=commit_ms,
                )
                self._produce(tx, key, event)
                self.snapshot_rows += 1
                if self.snapshot_rows % 1000 == 0:
                    self.producer.poll(0)

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
        try:
            step = self.decoder.feed(msg.payload, msg.data_start)
        except DecodeError as exc:  # a bad change is data: dead-letter it, keep streaming
            tx = state.get("tx")
            if tx is None:  # outside a transaction: confirmed with the next commit
                tx = state["tx"] = self.tracker.begin()
            self._dead_letter(tx, bytes(msg.payload), int(msg.data_start), exc)
            return
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
                self._produce(tx, key, event)
            self._tx_events = []
            self._last_commit_lsn = commit_lsn
            self._watermark(tx, idle=False)
            self.tracker.commit(tx, step.commit.end_lsn)
        if step.relation is not None:
            qualified = f"{step.relation.namespace}.{step.relation.name}"
            if qualified not in self.primary_keys:
                with query.cursor() as cur:
                    self._load_primary_keys(cur)
        if step.truncated:
            metrics.CDC_TRUNCATES_SKIPPED.inc()
            log.warning(
                "TRUNCATE of %s: no row events are produced for it", ", ".join(step.truncated)
            )

    def _hold(self, tx: TxAcks, events: list[tuple[bytes, ChangeEvent]]) -> None:
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
            event["source"]["state_lsn"] = self._tx_final_lsn
            self._produce(tx, key, event)

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
            self._check_failure()
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
                with contextlib.suppress(InterruptedError):
                    select.select([cur], [], [], timeout)
        self._flush(timeout=30.0)
        self._confirm(cur, self.tracker.advance(), heartbeat=True)
        log.info("stopped; confirmed %s", _lsn_text(self.confirmed_lsn))

    def run(self, stop: threading.Event) -> None:
        """Snapshot if needed, then stream until `stop` is set. Raises BrokerUnavailable if
        Kafka fails to acknowledge, ConfigurationError if PostgreSQL refuses the setup."""
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
                self._ensure_publication(cur)
                self._load_primary_keys(cur)
                self._check_contract(cur)
                exists = self._slot_exists(cur)
            repl_cur = repl.cursor()
            if not exists and self.config.snapshot:
                self._snapshot(query, repl_cur)
            elif not exists:
                repl_cur.create_replication_slot(self.config.slot_name, output_plugin="pgoutput")
            self._stream(query, repl_cur, stop)
        except psycopg2.errors.ObjectNotInPrerequisiteState as exc:  # e.g. wal_level
            raise ConfigurationError(str(exc).strip()) from exc
        finally:
            with contextlib.suppress(Exception):
                repl.close()
            with contextlib.suppress(Exception):
                query.close()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    import signal

    def handler(signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_cdc(config: PostgresCdcConfig, bootstrap_servers: str, codecs: TopicCodecs) -> int:
    """Run the source in the foreground until SIGINT/SIGTERM; the CLI's entry point."""
    stop = threading.Event()
    producer = make_producer(bootstrap_servers)
    with _stop_on_signals(stop):
        PostgresCdcSource(config, producer, codecs).run(stop)
    return 0


def _message_table(decoder: ChangeDecoder, data: bytes) -> str:
    """`schema.table` of a row message's relation when the decoder knows it, else ''."""
    if len(data) >= 5 and data[:1] in (b"I", b"U", b"D"):
        rel = decoder.relations.get(int.from_bytes(data[1:5], "big"))
        if rel is not None:
            return f"{rel.namespace}.{rel.name}"
    return ""
