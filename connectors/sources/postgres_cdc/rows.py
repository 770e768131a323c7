"""Row plans: pgoutput row messages (Insert, Update, Delete) straight to change event bytes.
Pure: no I/O.

The source streams most changes through here instead of `ChangeDecoder.feed` (which builds
a dict per change and then fastavro walks it): per relation, once, a `RowPlan` precomputes
what every change of it shares (the map keys with their union indexes, the table's source
fields, the primary key), and `RowPlans.prepare` writes a change's Avro body from the
tuple's text in one pass, leaving out only `source.state_lsn`, which is known at the
transaction's commit (`Encoded.body`).

The fast path takes only what it writes exactly as the decoder would: a change it cannot
(an unchanged TOAST value, a value that does not convert, a malformed message, a table whose
values `public_row` rewrites, a schema this writer does not know) returns None, and the
source feeds that message to the decoder, whose result and dead letters are the reference
(tests/unit/cdc/test_rows.py checks the bytes are the codec's for every kind of column).
`Encoded.event()` rebuilds the decoder's dict when one is needed (a change over
`max_record_bytes` is cut from it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from streams.errors import DecodeError
from streams.logic.contract import rewrites_values
from streams.models import ChangeEvent, ColumnValue
from streams.topics import primary_key_text

from connectors.sources.postgres_cdc.avro import DOUBLE, Layout, avro_long, avro_string
from connectors.sources.postgres_cdc.decode import CONNECTOR, ChangeDecoder
from connectors.sources.postgres_cdc.pgoutput import Begin
from connectors.sources.postgres_cdc.values import (
    _ARRAYS,
    _BOOL,
    _FLOATS,
    _INTS,
    _TIMESTAMPTZ,
    _timestamptz,
    convert,
)

__all__ = ["Encoded", "RowPlan", "RowPlans"]

_I16, _I32 = struct.Struct(">h"), struct.Struct(">i")
TEXT, INT, FLOAT, BOOL, TSTZ, ARRAY = range(6)
_OPS = {0x49: "c", 0x55: "u", 0x44: "d"}  # I U D


class _Fallback(Exception):
    """Not for the fast path: the decoder takes this message."""


def _kind(type_oid: int) -> int:
    if type_oid == _BOOL:
        return BOOL
    if type_oid in _INTS:
        return INT
    if type_oid in _FLOATS:
        return FLOAT
    if type_oid == _TIMESTAMPTZ:
        return TSTZ
    if type_oid in _ARRAYS:
        return ARRAY
    return TEXT


class Encoded:
    """One change, encoded but for its `state_lsn`: `body(state_lsn)` is its Avro body."""

    __slots__ = ("commit_ms", "head", "key", "op", "rebuild", "state_lsn", "table", "tail")

    def __init__(
        self, key: bytes, table: str, op: str, head: bytes, tail: bytes, commit_ms: int,
        rebuild: Callable[[], tuple[bytes, ChangeEvent]],
    ) -> None:  # fmt: skip
        self.key, self.table, self.op = key, table, op
        self.head, self.tail, self.commit_ms = head, tail, commit_ms
        self.rebuild = rebuild
        self.state_lsn: int | None = None

    def body(self, layout: Layout) -> bytes:
        return self.head + layout.optional_long(self.state_lsn) + self.tail

    def event(self) -> ChangeEvent:
        """The decoder's dict of this change, with this change's `state_lsn`."""
        _, event = self.rebuild()
        event["source"]["state_lsn"] = self.state_lsn
        return event


@dataclass(frozen=True)
class _Column:
    index: int  # in the tuple
    kind: int
    type_oid: int
    is_key: bool
    null: bytes  # the map entry's key, then the value's union index, per branch
    string: bytes
    long: bytes
    double: bytes
    true: bytes
    false: bytes
    array: bytes


@dataclass(frozen=True)
class RowPlan:
    """What every change of one relation shares."""

    table: str  # as emitted (contract name)
    state: bool  # a state table: its keys are tracked (StateKeys)
    width: int  # the tuple's column count
    columns: tuple[_Column, ...]  # the carried ones, in tuple order
    key_columns: tuple[_Column, ...]  # those of them that are replica-identity key columns
    pk: tuple[str, ...]  # primary key, emitted names
    pk_index: tuple[int | None, ...]  # each one's tuple index (None: not carried)
    pk_oids: tuple[int, ...]  # each one's type OID (0: not carried)
    is_key: tuple[bool, ...]  # by tuple index: a replica-identity key column
    text_pk: bool  # every primary-key column is carried as its text (uuid, text, ...)
    pk_bytes: bytes  # the primary_key array
    source: bytes  # connector, db, schema, table
    id_prefix: str  # '<db>:'
    id_table: str  # ':<table>:'


class RowPlans:
    """Row plans by relation oid, built on first use from the decoder's relation cache;
    `forget()` at every Relation message (its columns or keys may have changed)."""

    def __init__(self, decoder: ChangeDecoder, layout: Layout | None) -> None:
        self.decoder = decoder
        self.layout = layout
        self._plans: dict[int, RowPlan | None] = {}
        self._tx: Begin | None = None
        self._tx_head = self._tx_tail = self._commit_bytes = self._now_bytes = b""
        self._now = -1

    def forget(self) -> None:
        self._plans.clear()

    def prepare(self, data: bytes, lsn: int) -> Encoded | None:
        """The encoded change of row message `data` at `lsn`, or None for the decoder to
        take it (including a table the rules leave out: the decoder skips it)."""
        tx = self.decoder.tx
        if self.layout is None or tx is None:
            return None
        try:
            return self._prepare(data, lsn, tx)
        except (_Fallback, DecodeError, ValueError, IndexError, struct.error, UnicodeError):
            return None

    def _plan(self, oid: int) -> RowPlan | None:
        if oid not in self._plans:
            self._plans[oid] = self._build(oid)
        return self._plans[oid]

    def _build(self, oid: int) -> RowPlan | None:
        dec, layout = self.decoder, self.layout
        rel, carried = dec.relations.get(oid), dec.carried.get(oid)
        if rel is None or carried is None or layout is None:
            return None
        qualified = f"{rel.namespace}.{rel.name}"
        table, names = carried
        if not dec.rules.wants(qualified) or rewrites_values(table):
            return None
        v = layout.value
        columns = []
        for i, col in enumerate(rel.columns):
            name = names.get(col.name)
            if name is None:
                continue
            entry = avro_string(name)
            columns.append(_Column(
                i, _kind(col.type_oid), col.type_oid, col.is_key, entry + v["null"],
                entry + v["string"], entry + v["long"], entry + v["double"],
                entry + v["boolean"] + b"\x01", entry + v["boolean"] + b"\x00",
                entry + v["array"],
            ))  # fmt: skip
        pk = dec.primary_keys.get(qualified) or tuple(c.name for c in rel.columns if c.is_key)
        index = {names[c.name]: i for i, c in enumerate(rel.columns) if c.name in names}
        oids = {names[c.name]: c.type_oid for c in rel.columns if c.name in names}
        pk = tuple(names.get(c, c) for c in pk)
        oids_pk = [oids.get(c, 0) for c in pk]
        pk_bytes = b"".join([avro_long(len(pk)), *map(avro_string, pk)]) if pk else b""
        return RowPlan(
            table=table, state=table in dec.keys.state_tables, width=len(rel.columns),
            columns=tuple(columns), key_columns=tuple(c for c in columns if c.is_key), pk=pk,
            pk_index=tuple(index.get(c) for c in pk), pk_oids=tuple(oids.get(c, 0) for c in pk),
            is_key=tuple(c.is_key for c in rel.columns),
            text_pk=all(_kind(oid) == TEXT for oid in oids_pk), pk_bytes=pk_bytes + b"\x00",
            source=b"".join(map(avro_string, (CONNECTOR, dec.db, rel.namespace, table))),
            id_prefix=f"{dec.db}:", id_table=f":{table}:",
        )  # fmt: skip

    def _prepare(self, data: bytes, lsn: int, tx: Begin) -> Encoded | None:
        op = _OPS.get(data[0])
        if op is None:
            return None
        (oid,) = struct.unpack_from(">I", data, 1)
        plan = self._plan(oid)
        if plan is None:
            return None
        old: list[bytes | None] | None = None
        old_is_key = False
        pos = 5
        marker = data[pos]
        if op != "c" and marker in (0x4B, 0x4F):  # K, O
            old_is_key = marker == 0x4B
            old, pos = _tuple(data, pos + 1, plan.width)
            marker = data[pos] if op == "u" else 0x4E
        new: list[bytes | None] | None = None
        if op != "d":
            if marker != 0x4E:  # N
                raise _Fallback
            new, pos = _tuple(data, pos + 1, plan.width)
        elif old is None:
            raise _Fallback
        return self._encode(plan, op, old, old_is_key, new, lsn, tx, data)

    def _encode(
        self, plan: RowPlan, op: str, old: list[bytes | None] | None, old_is_key: bool,
        new: list[bytes | None] | None, lsn: int, tx: Begin, data: bytes,
    ) -> Encoded:  # fmt: skip
        layout = self.layout
        assert layout is not None
        if tx is not self._tx:  # the transaction's own fields, once per transaction
            self._tx = tx
            self._tx_head = layout.long_value + avro_long(tx.final_lsn)
            self._tx_tail = (layout.long_value + avro_long(tx.xid) + avro_long(tx.commit_ts_ms)
                             + b"\x00")  # fmt: skip
            self._commit_bytes = avro_long(tx.commit_ts_ms)
        row = new if new is not None else old
        assert row is not None
        key_only = new is None and old_is_key  # a key image carries its key columns only
        pk_row: dict[str, ColumnValue] = {}
        for name, i, oid in zip(plan.pk, plan.pk_index, plan.pk_oids, strict=True):
            text = None if i is None or (key_only and not plan.is_key[i]) else row[i]
            if text is None:
                pk_row[name] = None
            elif plan.text_pk:  # uuid, text: the text itself, as convert() gives it
                pk_row[name] = text.decode("utf-8", "replace")
            else:
                pk_row[name] = convert(oid, text.decode("utf-8", "replace"))
        pk = primary_key_text(plan.pk, pk_row)
        key = f"{plan.table}:{pk}".encode()
        event_id = (plan.id_prefix + str(lsn) + plan.id_table + pk).encode()
        parts = [_length(len(event_id)), event_id, layout.ops[op]]
        if old is None:
            parts.append(layout.row_null)
        else:
            self._map(parts, plan.key_columns if old_is_key else plan.columns, old)
        if new is None:
            parts.append(layout.row_null)
        else:
            self._map(parts, plan.columns, new)
        parts += (plan.pk_bytes, plan.source, layout.long_value, avro_long(lsn), self._tx_head)
        now = self.decoder.now_ms()
        if now != self._now:
            self._now, self._now_bytes = now, avro_long(now)
        tail = self._tx_tail + self._now_bytes + self._commit_bytes
        if plan.state:
            self.decoder.keys.track_row(plan.table, op, key, pk_row)
        decoder = self.decoder
        return Encoded(key, plan.table, op, b"".join(parts), tail, tx.commit_ts_ms,
                       lambda: decoder.rebuild(data, lsn, tx))  # fmt: skip

    def _map(self, parts: list[bytes], columns: tuple[_Column, ...],
             values: list[bytes | None]) -> None:  # fmt: skip
        """One row image as the before/after map, appended to `parts`."""
        layout = self.layout
        assert layout is not None
        append = parts.append
        append(layout.row_map)
        if columns:
            append(_length(len(columns)))
        for col in columns:
            value = values[col.index]
            if value is None:
                append(col.null)
                continue
            kind = col.kind
            if kind == TEXT:
                if not value.isascii():
                    value = value.decode("utf-8", "replace").encode()
                append(col.string)
                n = len(value)
                append(_LENGTHS[n] if n < _CACHED else avro_long(n))
                append(value)
            elif kind == INT:
                append(col.long)
                append(avro_long(int(value)))
            elif kind == TSTZ:
                text = _iso(value)
                append(col.string)
                append(_LENGTHS[len(text)])
                append(text)
            elif kind == BOOL:
                append(col.true if value in (b"t", b"true") else col.false)
            elif kind == FLOAT:
                append(col.double)
                append(DOUBLE(float(value)))
            else:
                items = convert(col.type_oid, value.decode("utf-8", "replace"))
                assert isinstance(items, list)
                append(col.array)
                append(layout.array(items))
        append(b"\x00")


_CACHED = 4096
_LENGTHS = [avro_long(n) for n in range(_CACHED)]
_ISO: dict[bytes, bytes] = {}  # timestamptz text -> ISO text: rows of a transaction share now()


def _length(n: int) -> bytes:
    return _LENGTHS[n] if n < _CACHED else avro_long(n)


def _iso(value: bytes) -> bytes:
    """A timestamptz's text as the decoder carries it (`values._timestamptz`), remembered:
    the rows of one transaction often share a timestamp (a column defaulting to now())."""
    text = _ISO.get(value)
    if text is None:
        if len(_ISO) >= 1024:
            _ISO.clear()
        text = _ISO[value] = _timestamptz(value.decode()).encode()
    if len(text) >= _CACHED:
        raise _Fallback
    return text


def _tuple(data: bytes, pos: int, width: int) -> tuple[list[bytes | None], int]:
    """One tuple's values as raw text (None for NULL); _Fallback for anything else (an
    unchanged TOAST value, a width other than the relation's, a value overrunning)."""
    (count,) = _I16.unpack_from(data, pos)
    if count != width:
        raise _Fallback
    pos += 2
    size = len(data)
    values: list[bytes | None] = []
    append = values.append
    for _ in range(count):
        kind = data[pos]
        pos += 1
        if kind == 0x74:  # t
            (length,) = _I32.unpack_from(data, pos)
            end = pos + 4 + length
            if length < 0 or end > size:
                raise _Fallback
            append(data[pos + 4 : end])
            pos = end
        elif kind == 0x6E:  # n
            append(None)
        else:
            raise _Fallback
    return values, pos
