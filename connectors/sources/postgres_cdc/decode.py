"""Pure decoding of PostgreSQL's `pgoutput` logical replication messages (protocol version 1)
into our change events (`schemas/ingest/change_event.v1.avsc`). No I/O happens here.

`parse_message(bytes)` turns one message into a dataclass; `ChangeDecoder` keeps the relation
cache and the open transaction and turns a stream of messages into `ChangeEvent` dicts.
Unknown or malformed bytes raise `DecodeError`.

Values arrive as text and are converted by type OID: bool -> bool, int2/int4/int8/oid -> int,
float4/float8 -> float; everything else (numeric, text, json/jsonb, arrays, dates, uuids)
stays the server's text form. Unchanged TOAST values (`u`) in an update take the old value
when the before image has it (REPLICA IDENTITY FULL) and are left out otherwise.
TRUNCATE has no row-level representation in the change event schema: it is parsed and
reported (`Step.truncated`) but produces no events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from streams.errors import DecodeError
from streams.models import ChangeEvent, ColumnValue
from streams.topics import cdc_key, primary_key_text

from connectors.sources.postgres_cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    TupleData,
    Update,
    parse_message,
)

CONNECTOR = "postgres"

_BOOL_OIDS = frozenset({16})
_INT_OIDS = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
_FLOAT_OIDS = frozenset({700, 701})  # float4, float8


def convert(type_oid: int, text: str) -> ColumnValue:
    """The Avro value for one column's text form, chosen by its type OID."""
    if type_oid in _BOOL_OIDS:
        return text in ("t", "true")  # output function "t"; a ::text cast gives "true"
    if type_oid in _INT_OIDS:
        return int(text)
    if type_oid in _FLOAT_OIDS:
        return float(text)
    return text


# ---- messages -> change events ------------------------------------------------------------
@dataclass(frozen=True)
class TableRules:
    """Which tables to emit and which columns to drop. Names are `schema.table`."""

    tables: frozenset[str] = frozenset()  # empty = every table the publication sends
    excluded_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def wants(self, qualified: str) -> bool:
        return not self.tables or qualified in self.tables

    def excluded(self, qualified: str) -> frozenset[str]:
        return self.excluded_columns.get(qualified, frozenset())


@dataclass
class Step:
    """What one message meant: events to produce, and whether a transaction ended."""

    events: list[tuple[bytes, ChangeEvent]] = field(default_factory=list)
    begin: Begin | None = None
    commit: Commit | None = None
    relation: Relation | None = None
    truncated: tuple[str, ...] = ()


def build_event(
    *,
    db: str,
    schema: str,
    table: str,
    op: str,
    before: dict[str, ColumnValue] | None,
    after: dict[str, ColumnValue] | None,
    primary_key: tuple[str, ...],
    lsn: int,
    tx_id: int | None,
    commit_ms: int,
    now_ms: int,
) -> tuple[bytes, ChangeEvent]:
    """One keyed change event; `event_id` is `<db>:<lsn>:<table>:<pk>`, stable on replay.

    Snapshot reads (op `r`) carry the snapshot's consistent point as their LSN, which is
    also the LSN of the first streamed change after it, so their ids end in `:r`."""
    row = after if after is not None else (before or {})
    pk = primary_key_text(primary_key, row)
    key = cdc_key(table, pk)
    event = ChangeEvent(
        event_id=f"{db}:{lsn}:{table}:{pk}" + (":r" if op == "r" else ""),
        op=op,  # type: ignore[typeddict-item]
        before=before,
        after=after,
        primary_key=list(primary_key),
        source={
            "connector": CONNECTOR,
            "db": db,
            "schema": schema,
            "table": table,
            "lsn": lsn,
            "tx_id": tx_id,
            "ts_ms": commit_ms,
            "snapshot": op == "r",
        },
        ts_ms=now_ms,
        source_ts_ms=commit_ms,
    )
    return key, event


class ChangeDecoder:
    """Turns a pgoutput message stream into change events. Pure: the clock is injected.

    `primary_keys` maps `schema.table` to its primary-key columns (the source looks them up
    in the catalog, because with REPLICA IDENTITY FULL pgoutput flags every column as key);
    a table missing from it falls back to the key flags of its Relation message. `feed` is
    called once per message with the message's WAL position.
    """

    def __init__(
        self,
        db: str,
        rules: TableRules,
        primary_keys: Mapping[str, tuple[str, ...]],
        now_ms: Callable[[], int],
    ) -> None:
        self.db = db
        self.rules = rules
        self.primary_keys = primary_keys
        self.now_ms = now_ms
        self.relations: dict[int, Relation] = {}
        self.tx: Begin | None = None

    def feed(self, data: bytes, lsn: int) -> Step:
        message = parse_message(data)
        step = Step()
        if isinstance(message, Begin):
            self.tx = step.begin = message
        elif isinstance(message, Commit):
            self.tx = None
            step.commit = message
        elif isinstance(message, Relation):
            self.relations[message.oid] = step.relation = message
        elif isinstance(message, Insert):
            self._emit(step, message.relation_oid, "c", None, message.new, lsn)
        elif isinstance(message, Update):
            self._emit(
                step, message.relation_oid, "u", message.old, message.new, lsn, message.old_is_key
            )
        elif isinstance(message, Delete):
            self._emit(step, message.relation_oid, "d", message.old, None, lsn, message.old_is_key)
        elif isinstance(message, Truncate):
            step.truncated = tuple(
                self._qualified(self._relation(o)) for o in message.relation_oids
            )
        return step

    def _relation(self, oid: int) -> Relation:
        try:
            return self.relations[oid]
        except KeyError:
            raise DecodeError(f"row for relation {oid} before its Relation message") from None

    @staticmethod
    def _qualified(rel: Relation) -> str:
        return f"{rel.namespace}.{rel.name}"

    def _emit(
        self,
        step: Step,
        oid: int,
        op: str,
        old: TupleData | None,
        new: TupleData | None,
        lsn: int,
        old_is_key: bool = False,
    ) -> None:
        rel = self._relation(oid)
        qualified = self._qualified(rel)
        if not self.rules.wants(qualified):
            return
        excluded = self.rules.excluded(qualified)
        before = self._row(rel, old, excluded, None, old_is_key) if old is not None else None
        after = self._row(rel, new, excluded, before, False) if new is not None else None
        pk = self.primary_keys.get(qualified) or tuple(c.name for c in rel.columns if c.is_key)
        if self.tx is None:
            raise DecodeError(f"change to {qualified} outside a transaction")
        step.events.append(
            build_event(
                db=self.db,
                schema=rel.namespace,
                table=rel.name,
                op=op,
                before=before,
                after=after,
                primary_key=pk,
                lsn=lsn,
                tx_id=self.tx.xid,
                commit_ms=self.tx.commit_ts_ms,
                now_ms=self.now_ms(),
            )
        )

    @staticmethod
    def _row(
        rel: Relation,
        values: TupleData,
        excluded: frozenset[str],
        before: dict[str, ColumnValue] | None,
        key_only: bool,
    ) -> dict[str, ColumnValue]:
        if len(values) != len(rel.columns):
            raise DecodeError(
                f"{rel.name}: tuple has {len(values)} values for {len(rel.columns)} columns"
            )
        row: dict[str, ColumnValue] = {}
        for col, value in zip(rel.columns, values, strict=True):
            if col.name in excluded or (key_only and not col.is_key):
                continue
            if value is UNCHANGED:
                if before is not None and col.name in before:
                    row[col.name] = before[col.name]
                continue
            if value is None:
                row[col.name] = None
            else:
                assert isinstance(value, str)
                row[col.name] = convert(col.type_oid, value)
        return row
