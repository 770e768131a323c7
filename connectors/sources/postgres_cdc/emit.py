"""Everything the CDC source writes to Kafka: change events, heartbeats and dead letters, each
counted against the source transaction it belongs to (`AckTracker`), so a WAL position is
confirmed only once Kafka acknowledged all of them.

Called on the replication loop's thread only (delivery callbacks fire inside `poll`/`flush`).

- `change` writes a change event to `wedsync.ingest.cdc` (and `wedsync.ingest.state` for the
  state tables). One over `max_record_bytes` is cut to fit (`cut.fit_change`): the records
  carry the `wedsync.cdc.cut_columns` header, each cut column is counted
  (`wedsync_cdc_columns_cut_total`) and logged with its table, key and LSN, never its value.
  One that cannot fit even cut goes to `wedsync.ingest.dlq` instead, without its values
  (`RecordTooLarge`); the stream goes on.
- `dead_letter` writes to `wedsync.ingest.dlq` with the reason, table, LSN and row key in
  headers. A value that would make the record too large is left out (and said so).
  `dead_row` is the dead letter of a row change that cannot be carried (`dead.DeadRow`):
  the failing column in a header, the carried columns' text as value, never a secret.
- A producer that cannot go on (librdkafka's fatal idempotence errors such as
  OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID, `error.fatal()`; a failed delivery)
  poisons the tracker, so nothing after it is confirmed, and raises BrokerUnavailable: the
  process stops; restarted, it resumes from the slot's confirmed position and sends again
  what Kafka did not acknowledge (at-least-once, no gap).
"""

from __future__ import annotations

import functools
import logging
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from streams import metrics
from streams.errors import BrokerUnavailable, ConfigurationError, WedsyncError
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config
from streams.kafka.deadletter import dead_letter_headers
from streams.logic.contract import Contract
from streams.models import ChangeEvent
from streams.topics import INGEST_CDC, INGEST_DLQ, INGEST_STATE

from connectors.sources.postgres_cdc.acks import AckTracker, TxAcks
from connectors.sources.postgres_cdc.avro import Layout
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.cut import (
    RecordTooLarge,
    TooLarge,
    cuttable_columns,
    fit_change,
    never_cut,
)
from connectors.sources.postgres_cdc.dead import DeadRow
from connectors.sources.postgres_cdc.limits import DEFAULT_MAX_RECORD_BYTES, producer_limits
from connectors.sources.postgres_cdc.rows import Encoded

log = logging.getLogger(__name__)

CUT_HEADER = "wedsync.cdc.cut_columns"
H_LSN, H_TABLE, H_KEY = "wedsync.dlq.lsn", "wedsync.dlq.table", "wedsync.dlq.key"
H_VALUE_DROPPED, H_COLUMN = "wedsync.dlq.value_dropped", "wedsync.dlq.column"
RESUME = (
    "nothing after it was confirmed to PostgreSQL: restart the source (a fresh producer); it "
    "resumes from its slot and sends again what Kafka did not acknowledge, so no change is lost"
)
Headers = list[tuple[str, bytes]]
_HEADER = struct.Struct(">bI")  # the Confluent framing: magic byte 0, schema id


def make_producer(
    bootstrap_servers: Kafka, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, **overrides: Any
) -> Producer:
    """The producer the source needs: idempotent, acks from all in-sync replicas, refusing
    at `produce()` any record over `max_record_bytes` (the config's, checked against Kafka's
    limits at start)."""
    conf: dict[str, Any] = client_config(
        bootstrap_servers,
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "client.id": "wedsync-cdc",
            "error_cb": _log_kafka_error,
            **producer_limits(max_record_bytes),
        },
    )
    conf.update(overrides)
    return Producer(conf)


def _log_kafka_error(err: KafkaError) -> None:
    if err.fatal():
        log.error("Kafka producer: fatal error %s: %s", err.name(), err.str())
    else:
        log.debug("Kafka producer: %s: %s", err.name(), err.str())


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def header_bytes(headers: Headers) -> int:
    return sum(len(name.encode()) + len(value) for name, value in headers)


def cut_headers(cut: tuple[str, ...]) -> Headers:
    return [(CUT_HEADER, ",".join(cut).encode())] if cut else []


class Emitter:
    """Writes the source's records with one producer; see the module docstring."""

    def __init__(
        self,
        producer: Producer,
        codecs: TopicCodecs,
        tracker: AckTracker,
        config: PostgresCdcConfig,
        contract: Contract,
        column_types: Mapping[tuple[str, str], Mapping[str, int]],
        now_ms: Callable[[], int],
    ) -> None:
        self.producer = producer
        self.encode = codecs[INGEST_CDC].encode
        self.encode_state = codecs[INGEST_STATE].encode
        self.layout = _layout(codecs)
        if self.layout is not None:
            self._cdc_header = _HEADER.pack(0, codecs[INGEST_CDC].schema_id)
            self._state_header = _HEADER.pack(0, codecs[INGEST_STATE].schema_id)
        self.tracker = tracker
        self.limit = config.max_record_bytes
        self.bound = config.cut_value_bytes
        self.origin = "pgoutput:" + config.slot_name
        self.contract = contract
        self.state_tables = contract.state_tables()
        self.column_types = column_types
        self.now_ms = now_ms
        self.dead_letters = 0
        self._lag_of = -1  # the commit time the lag gauge was last set for
        self._produced = {op: metrics.CDC_EVENTS_PRODUCED.labels(op) for op in "cudr"}
        self._acked = dict.fromkeys("cudr", 0)  # acked change events not yet in _produced
        self._cb_tx: TxAcks | None = None
        self._cb_op: str | None = None
        self._cb: Any = None

    # ---- change events ---------------------------------------------------------------------
    def change(self, tx: TxAcks, key: bytes, event: ChangeEvent | Encoded) -> None:
        """Write one change event (cut to fit, or dead-lettered when it cannot fit)."""
        if isinstance(event, Encoded):
            self._change_encoded(tx, event)
            return
        # replication lag in time: from the change's commit to its leaving for Kafka
        lag = self.now_ms() / 1000 - event["source_ts_ms"] / 1000
        metrics.CDC_LAG_SECONDS.set(max(0.0, lag))
        state = event["source"]["table"] in self.state_tables
        value, state_value = self._encode(event, state)
        headers: Headers = []
        if len(key) + max(len(value), len(state_value or b"")) > self.limit:
            fit = fit_change(
                event, record_size=functools.partial(self._record_size, key, state),
                limit=self.limit, bound=self.bound, cuttable=self._cuttable(event),
            )  # fmt: skip
            if isinstance(fit, TooLarge):
                self._too_large(tx, key, event, fit)
                return
            self._report_cut(key, event, fit.cut)
            event, headers = fit.event, cut_headers(fit.cut)
            value, state_value = self._encode(event, state)
        self.send(tx, INGEST_CDC.name, key, value, event["op"], headers)
        if state_value is not None:
            self.send(tx, INGEST_STATE.name, key, state_value, None, headers)

    def _change_encoded(self, tx: TxAcks, change: Encoded) -> None:
        """`change` for a change `rows.py` encoded: the same records, without the dict."""
        assert self.layout is not None
        if change.commit_ms != self._lag_of:  # once a transaction: all share a commit time
            self._lag_of = change.commit_ms
            metrics.CDC_LAG_SECONDS.set(max(0.0, self.now_ms() / 1000 - change.commit_ms / 1000))
        body = change.body(self.layout)
        key = change.key
        if len(key) + len(body) + _HEADER.size > self.limit:  # cut from the decoder's dict
            self.change(tx, key, change.event())
            return
        self.send(tx, INGEST_CDC.name, key, self._cdc_header + body, change.op)
        if change.table in self.state_tables:
            self.send(tx, INGEST_STATE.name, key, self._state_header + body)

    def _encode(self, event: ChangeEvent, state: bool) -> tuple[bytes, bytes | None]:
        record = dict(event)
        return self.encode(record), self.encode_state(record) if state else None

    def _record_size(
        self, key: bytes, state: bool, event: ChangeEvent, cut: tuple[str, ...]
    ) -> int:
        value, state_value = self._encode(event, state)
        return len(key) + max(len(value), len(state_value or b"")) + header_bytes(cut_headers(cut))

    def _cuttable(self, event: ChangeEvent) -> dict[str, Any]:
        source = event["source"]
        types = self.column_types.get((source["schema"], source["table"]), {})
        keep = never_cut(source["table"], event["primary_key"], self.contract)
        return cuttable_columns(types, keep)

    def _qualified(self, event: ChangeEvent) -> str:
        """`schema.table` with the platform's table name, as the other dead letters say."""
        table = event["source"]["table"]
        spec = self.contract.tables.get(table)
        return f"{event['source']['schema']}.{spec.db_name if spec is not None else table}"

    def _report_cut(self, key: bytes, event: ChangeEvent, cut: tuple[str, ...]) -> None:
        for column in cut:
            metrics.CDC_COLUMNS_CUT.inc()
            log.warning(
                "cut %s.%s of %s (LSN %s) to %d bytes: the change is over max_record_bytes %d;"
                " its records name the column in the %s header",
                self._qualified(event), column, key.decode(errors="replace"),
                lsn_text(event["source"]["lsn"] or 0), self.bound, self.limit, CUT_HEADER,
            )  # fmt: skip

    def _too_large(self, tx: TxAcks, key: bytes, event: ChangeEvent, fit: TooLarge) -> None:
        table = self._qualified(event)
        error = RecordTooLarge(f"{table} {key.decode(errors='replace')}: "
                               + fit.reason(self.limit, self.bound))  # fmt: skip
        self.dead_letter(tx, key, None, error, lsn=event["source"]["lsn"] or 0, table=table,
                         row_key=key)  # fmt: skip

    # ---- dead letters ----------------------------------------------------------------------
    def dead_row(self, tx: TxAcks, dead: DeadRow, *, lsn: int) -> None:
        """The dead letter of a row change that cannot be carried (see `dead.py`)."""
        self.dead_letter(tx, dead.key, dead.value(), dead.error, lsn=lsn, table=dead.table,
                         row_key=dead.key, extra=[(H_COLUMN, dead.column.encode())])  # fmt: skip

    def dead_letter(
        self, tx: TxAcks, key: bytes, value: bytes | None, error: Exception, *, lsn: int,
        table: str, row_key: bytes | None = None, extra: Headers | None = None,
    ) -> None:  # fmt: skip
        """One record to wedsync.ingest.dlq: `value` (left out when it would not fit), the
        reason, table (`schema.table`), LSN and row key in headers, then `extra`."""
        self.dead_letters += 1
        metrics.DEAD_LETTERS.labels("cdc", type(error).__name__).inc()
        headers = dead_letter_headers(
            stage="cdc", error=error, topic=self.origin, partition=0, offset=lsn,
            now_ms=self.now_ms(),
        )  # fmt: skip
        headers += [(H_LSN, lsn_text(lsn).encode()), (H_TABLE, table.encode())]
        if row_key is not None:
            headers.append((H_KEY, row_key))
        headers += extra or []
        if value is not None and len(key) + len(value) + header_bytes(headers) > self.limit:
            note = f"{len(value)} bytes, over max_record_bytes {self.limit}: left out"
            headers.append((H_VALUE_DROPPED, note.encode()))
            value = None
        self.send(tx, INGEST_DLQ.name, key, value, None, headers)
        log.error("change of %s at %s dead-lettered: %s", table or "?", lsn_text(lsn), error)

    # ---- producing -------------------------------------------------------------------------
    def send(
        self, tx: TxAcks, topic: str, key: bytes, value: bytes | None, op: str | None = None,
        headers: Headers | None = None,
    ) -> None:  # fmt: skip
        """Produce one record counted against `tx` (its LSN is confirmed once all are acked).
        Raises BrokerUnavailable when the producer cannot go on."""
        if tx is not self._cb_tx or op != self._cb_op:  # one callback a transaction and op
            self._cb_tx, self._cb_op = tx, op
            self._cb = self._on_delivery(tx, op)
        callback = self._cb
        kafka_headers: Any = headers or None  # the stubs want a list of str | bytes | None
        while True:
            try:
                self.producer.produce(
                    topic, value=value, key=key, on_delivery=callback, headers=kafka_headers
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.05)
            except KafkaException as exc:
                raise self._refused(exc.args[0], topic, len(key) + len(value or b"")) from exc
        self.tracker.sent(tx)

    def _refused(self, err: KafkaError, topic: str, size: int) -> WedsyncError:
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return ConfigurationError(
                f"the producer refused a record of {size} bytes for {topic}: it was built for "
                f"fewer bytes than max_record_bytes {self.limit}; build it with "
                "make_producer(..., max_record_bytes=config.max_record_bytes)"
            )
        reason = _describe(err)
        self.tracker.fail(reason)
        what = "hit a fatal error" if err.fatal() else "refused a record"
        return BrokerUnavailable(f"the Kafka producer {what} ({reason}); {RESUME}")

    def _on_delivery(self, tx: TxAcks, op: str | None) -> Callable[[Any, Any], None]:
        """The delivery report callback (it runs inside poll/flush) of `tx`'s records of
        `op` (None: not counted as produced). Acks of change events are counted here and
        added to wedsync_cdc_events_produced_total by `check_failure` (no lock per ack)."""
        acked, counts = self.tracker.acked, self._acked

        def on_delivery(err: KafkaError | None, msg: Message | None) -> None:
            if err is not None:
                acked(tx, _describe(err))
                return
            acked(tx)
            if op is not None:
                counts[op] += 1

        return on_delivery

    def _publish_counts(self) -> None:
        for op, n in self._acked.items():
            if n:
                self._produced[op].inc(n)
                self._acked[op] = 0

    def check_failure(self) -> None:
        """BrokerUnavailable once Kafka failed to acknowledge anything. Called often by the
        replication loop (and by `flush`): also publishes the acks counted since."""
        self._publish_counts()
        if self.tracker.failure is not None:
            raise BrokerUnavailable(
                f"Kafka did not acknowledge a change event ({self.tracker.failure}); {RESUME}"
            )

    def flush(self, timeout: float) -> None:
        """Wait until Kafka acknowledged everything produced (BrokerUnavailable after
        `timeout` seconds, or at the first failure)."""
        deadline = time.monotonic() + timeout
        while len(self.producer) > 0:
            self.check_failure()
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"{len(self.producer)} change events unacknowledged after {timeout:.0f}s; "
                    + RESUME
                )
            self.producer.flush(0.5)
        self.check_failure()


def _layout(codecs: TopicCodecs) -> Layout | None:
    """The change event layout `rows.py` writes, when both topics' schemas are it."""
    cdc, state = codecs[INGEST_CDC].schema, codecs[INGEST_STATE].schema
    layout = Layout.of(cdc)
    if layout is None or Layout.of(state) != layout:
        log.warning("the change event schema is not the one connectors/sources/postgres_cdc/"
                    "avro.py writes: every change is encoded by the codec (slower); update "
                    "avro.Layout for the new schema")  # fmt: skip
        return None
    return layout


def _describe(err: KafkaError) -> str:
    return f"{err.name()}: {err.str()}" + (", fatal" if err.fatal() else "")
