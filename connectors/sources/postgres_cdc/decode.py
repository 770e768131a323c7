"""Pure decoding of PostgreSQL's `pgoutput` logical replication messages (protocol version 1)
into our change events (`schemas/ingest/change_event.v1.avsc`). No I/O happens here.

`parse_message(bytes)` turns one message into a dataclass; `ChangeDecoder` keeps the relation
cache and the open transaction and turns a stream of messages into `ChangeEvent` dicts.
Unknown or malformed bytes raise `DecodeError`.

Values arrive as text and are converted by type OID (`values.convert`: booleans, numbers,
arrays as lists, timestamptz as ISO 8601; uuid, numeric, date, time, timetz and JSON keep
the server's text). Unchanged TOAST values (`u`) in an update take the old value when the
before image has it (REPLICA IDENTITY FULL) and are left out otherwise: an absent column
means "unchanged", and the state reducer merges it from the previous row.

Tables of the source contract (`streams.logic.contract`) are checked when their Relation
message arrives (a missing or mistyped column raises ContractViolation naming
`table.column`), renamed to contract names, and carry only the contract's non-secret
columns: secrets never leave the database (they are not even converted). Other tables pass
through as they are, less their excluded columns. A row whose carried value the event cannot
hold is not raised but reported (`Step.dead`, a `DeadRow`: its key, the column, the reason
and the carried columns' text) for the source to dead-letter.
TRUNCATE of a state table becomes a delete (op `d`, the key columns) of every row key of
that table the routing state holds (`state_keys.StateKeys`, tracked here in commit order),
at the Truncate's place in its transaction; of any other table it produces no events and is
reported (`Step.truncated`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streams.errors import ContractViolation, DecodeError
from streams.logic.contract import Contract, TableContract, public_row
from streams.models import ChangeEvent, ColumnValue
from streams.topics import cdc_key, primary_key_text

from connectors.sources.postgres_cdc.dead import BadColumn, DeadRow, TextRow
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
from connectors.sources.postgres_cdc.state_keys import StateKeys
from connectors.sources.postgres_cdc.values import TYPE_NAMES, convert

__all__ = [
    "ChangeDecoder",
    "Step",
    "TableRules",
    "build_event",
    "convert",
    "heartbeat_event",
    "stamp_transaction",
]

CONNECTOR = "postgres"


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
    truncated: tuple[str, ...] = ()  # `schema.table` of every truncated captured table
    truncated_state: tuple[str, ...] = ()  # those of them that are state tables
    dead: DeadRow | None = None  # a row change that cannot be carried: dead-letter it


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
    commit_lsn: int | None,
    tx_id: int | None,
    commit_ms: int,
    now_ms: int,
    state_lsn: int | None = None,
) -> tuple[bytes, ChangeEvent]:
    """One keyed change event; `event_id` is `<db>:<lsn>:<table>:<pk>`, stable on replay.

    Snapshot reads (op `r`) carry the snapshot's consistent point as their LSN, which is
    also the LSN of the first streamed change after it, so their ids end in `:r`. A
    contract table's endpoint URLs are carried without their credentials (`public_row`)."""
    before, after = public_row(table, before), public_row(table, after)
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
            "commit_lsn": commit_lsn,
            "state_lsn": state_lsn,
            "tx_id": tx_id,
            "ts_ms": commit_ms,
            "snapshot": op == "r",
        },
        ts_ms=now_ms,
        source_ts_ms=commit_ms,
    )
    return key, event


HEARTBEAT_KEY = b"~heartbeat"


def heartbeat_event(db: str, commit_lsn: int, now_ms: int) -> ChangeEvent:
    """A heartbeat (op 'h'): every change committed at or before `commit_lsn` was written
    before it on the partition it is written to."""
    return ChangeEvent(
        event_id=f"{db}:{commit_lsn}:~heartbeat",
        op="h",
        before=None,
        after=None,
        primary_key=[],
        source={
            "connector": CONNECTOR,
            "db": db,
            "schema": "",
            "table": "",
            "lsn": commit_lsn,
            "commit_lsn": commit_lsn,
            "state_lsn": commit_lsn,
            "tx_id": None,
            "ts_ms": now_ms,
            "snapshot": False,
        },
        ts_ms=now_ms,
        source_ts_ms=now_ms,
    )


class Stampable(Protocol):
    """A change already encoded but for its state LSN (`rows.Encoded`)."""

    table: str
    state_lsn: int | None


Pending = ChangeEvent | Stampable  # a change held until its transaction's commit


def table_of(event: Pending) -> str:
    return event["source"]["table"] if isinstance(event, dict) else event.table


def set_state_lsn(event: Pending, state_lsn: int | None) -> None:
    if isinstance(event, dict):
        event["source"]["state_lsn"] = state_lsn
    else:
        event.state_lsn = state_lsn


def stamp_transaction(
    events: Sequence[tuple[bytes, Pending]],
    commit_lsn: int,
    last_state_lsn: int,
    state_tables: frozenset[str],
) -> int:
    """Set `source.state_lsn` on every event of one committed transaction: its own commit
    LSN when it changed a state table (so a vendor linked in the transaction that moves the
    wedding is waited for), else `last_state_lsn`. Returns the new last state LSN."""
    touched = any(table_of(event) in state_tables for _, event in events)
    state_lsn = commit_lsn if touched else last_state_lsn
    for _, event in events:
        set_state_lsn(event, state_lsn or None)
    return state_lsn


def check_relation(contract: Contract, rel: Relation) -> TableContract | None:
    """The contract of `rel`'s table (None when it has none); ContractViolation naming every
    `table.column` the relation lacks or types differently."""
    problems = contract.check(
        rel.name, {c.name: TYPE_NAMES.get(c.type_oid, f"oid {c.type_oid}") for c in rel.columns}
    )
    if problems:
        raise ContractViolation(
            f"{rel.namespace}.{rel.name} does not satisfy the source contract: "
            + "; ".join(map(str, problems))
        )
    return contract.by_db_name().get(rel.name)


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
        contract: Contract | None = None,
    ) -> None:
        self.db = db
        self.rules = rules
        self.primary_keys = primary_keys
        self.now_ms = now_ms
        self.contract = contract
        self.relations: dict[int, Relation] = {}
        # relation oid -> (table as emitted, platform column -> column as emitted) of the
        # columns a change event carries: no secret, no excluded column
        self.carried: dict[int, tuple[str, dict[str, str]]] = {}
        # (schema, table as emitted) -> column as emitted -> type OID: how a value may be cut
        self.column_types: dict[tuple[str, str], dict[str, int]] = {}
        self.tx: Begin | None = None
        self.keys = StateKeys(frozenset() if contract is None else contract.state_tables())

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
            self.carried.pop(message.oid, None)
            table = None if self.contract is None else check_relation(self.contract, message)
            name, columns = message.name, {c.name: c.name for c in message.columns}
            if table is not None:
                name, columns = table.name, table.carried([c.name for c in message.columns])
            self.column_types[(message.namespace, name)] = {
                columns[c.name]: c.type_oid for c in message.columns if c.name in columns
            }
            excluded = self.rules.excluded(self._qualified(message))
            self.carried[message.oid] = (
                name,
                {p: ours for p, ours in columns.items() if p not in excluded},
            )
        elif isinstance(message, Insert):
            self._emit(step, message.relation_oid, "c", None, message.new, lsn)
        elif isinstance(message, Update):
            self._emit(
                step, message.relation_oid, "u", message.old, message.new, lsn, message.old_is_key
            )
        elif isinstance(message, Delete):
            self._emit(step, message.relation_oid, "d", message.old, None, lsn, message.old_is_key)
        elif isinstance(message, Truncate):
            self._truncate(step, message, lsn)
        return step

    def _truncate(self, step: Step, message: Truncate, lsn: int) -> None:
        """A delete of every row key the state holds for each truncated state table."""
        rels = [self._relation(o) for o in message.relation_oids]
        rels = [r for r in rels if self.rules.wants(self._qualified(r))]
        step.truncated = tuple(self._qualified(r) for r in rels)
        if self.tx is None:
            raise DecodeError(f"TRUNCATE of {', '.join(step.truncated)} outside a transaction")
        state = []
        for rel in rels:
            table = self.carried[rel.oid][0]
            if table not in self.keys.state_tables:
                continue
            state.append(self._qualified(rel))
            for pk_row in self.keys.take(table).values():
                step.events.append(
                    build_event(
                        db=self.db,
                        schema=rel.namespace,
                        table=table,
                        op="d",
                        before=pk_row,
                        after=None,
                        primary_key=tuple(pk_row),
                        lsn=lsn,
                        commit_lsn=self.tx.final_lsn,
                        tx_id=self.tx.xid,
                        commit_ms=self.tx.commit_ts_ms,
                        now_ms=self.now_ms(),
                    )
                )
        step.truncated_state = tuple(state)

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
        if not self.rules.wants(self._qualified(rel)):
            return
        if self.tx is None:
            raise DecodeError(f"change to {self._qualified(rel)} outside a transaction")
        built = self._build(rel, op, old, new, lsn, old_is_key, self.tx)
        if isinstance(built, DeadRow):
            step.dead = built
            return
        self.keys.track(*built)
        step.events.append(built)

    def rebuild(self, data: bytes, lsn: int, tx: Begin) -> tuple[bytes, ChangeEvent]:
        """The change event of row message `data` at `lsn` in transaction `tx`, as `feed`
        made it then, with no state kept (for a change first encoded by `rows.py`, whose
        row the decoder takes exactly so)."""
        message = parse_message(data)
        assert isinstance(message, Insert | Update | Delete)
        old = None if isinstance(message, Insert) else message.old
        new = None if isinstance(message, Delete) else message.new
        op = "c" if isinstance(message, Insert) else "u" if isinstance(message, Update) else "d"
        old_is_key = False if isinstance(message, Insert) else message.old_is_key
        built = self._build(self._relation(message.relation_oid), op, old, new, lsn,
                            old_is_key, tx)  # fmt: skip
        assert not isinstance(built, DeadRow)
        return built

    def _build(
        self,
        rel: Relation,
        op: str,
        old: TupleData | None,
        new: TupleData | None,
        lsn: int,
        old_is_key: bool,
        tx: Begin,
    ) -> tuple[bytes, ChangeEvent] | DeadRow:
        qualified = self._qualified(rel)
        table, names = self.carried[rel.oid]
        pk = self.primary_keys.get(qualified) or tuple(c.name for c in rel.columns if c.is_key)
        pk = tuple(names.get(c, c) for c in pk)
        try:
            before = self._row(rel, old, names, None, old_is_key) if old is not None else None
            after = self._row(rel, new, names, before, False) if new is not None else None
        except BadColumn as bad:
            old_text = None if old is None else _texts(rel, old, names, old_is_key)
            new_text = None if new is None else _texts(rel, new, names, False)
            key = cdc_key(table, primary_key_text(pk, new_text or old_text or {}))
            return DeadRow(qualified, key, bad.column, bad.error, op, old_text, new_text)
        return build_event(
            db=self.db,
            schema=rel.namespace,
            table=table,
            op=op,
            before=before,
            after=after,
            primary_key=pk,
            lsn=lsn,
            commit_lsn=tx.final_lsn,
            tx_id=tx.xid,
            commit_ms=tx.commit_ts_ms,
            now_ms=self.now_ms(),
        )

    @staticmethod
    def _row(
        rel: Relation,
        values: TupleData,
        names: Mapping[str, str],
        before: dict[str, ColumnValue] | None,
        key_only: bool,
    ) -> dict[str, ColumnValue]:
        """The carried columns of one tuple under their emitted names; BadColumn naming the
        first whose text the event cannot hold."""
        _check_width(rel, values)
        row: dict[str, ColumnValue] = {}
        for col, value in zip(rel.columns, values, strict=True):
            name = names.get(col.name)
            if name is None or (key_only and not col.is_key):
                continue
            if value is UNCHANGED:
                if before is not None and name in before:
                    row[name] = before[name]
                continue
            if value is None:
                row[name] = None
            else:
                assert isinstance(value, str)
                try:
                    row[name] = convert(col.type_oid, value)
                except DecodeError as exc:
                    raise BadColumn(name, DecodeError(f"{name}: {exc}")) from None
        return row


def _check_width(rel: Relation, values: TupleData) -> None:
    if len(values) != len(rel.columns):
        raise DecodeError(
            f"{rel.name}: tuple has {len(values)} values for {len(rel.columns)} columns"
        )


def _texts(rel: Relation, values: TupleData, names: Mapping[str, str], key_only: bool) -> TextRow:
    """The carried columns' text as PostgreSQL sent it (for a dead letter)."""
    return {
        names[col.name]: value
        for col, value in zip(rel.columns, values, strict=True)
        if col.name in names and not (key_only and not col.is_key) and value is not UNCHANGED
        and (value is None or isinstance(value, str))
    }  # fmt: skip
