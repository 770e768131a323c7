"""The change event's Avro body (`schemas/ingest/change_event`), written by hand for the
streaming hot path. Pure: values in, bytes out.

fastavro resolves every union and walks the schema per record (~15 us a change here); the
row plans (`rows.py`) write a change's bytes straight from pgoutput's text instead, with the
constant parts precomputed once per relation. This module holds the pieces they use and
`Layout`: the union branch indexes read from the schema itself. `Layout.of(schema)` is None
when the schema is not one this writer can write (a field added, moved or retyped): the
source then encodes every change with the codec, as before, and says so in a warning.

Avro binary, as the specification writes it: a long is zig-zag then base-128 varint; a
string its byte length (a long) then its UTF-8 bytes; a union its branch index (a long)
then the value; a map or array one block (its count, then the items) and a 0 count, or
only the 0 count when empty; a double 8 bytes little-endian; a boolean one byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["DOUBLE", "Layout", "avro_long", "avro_string"]

DOUBLE = struct.Struct("<d").pack
_SMALL = [bytes([(n << 1) if n >= 0 else ((-n << 1) - 1)]) for n in range(-64, 64)]

EVENT_FIELDS = ("event_id", "op", "before", "after", "primary_key", "source", "ts_ms",
                "source_ts_ms")  # fmt: skip
SOURCE_FIELDS = ("connector", "db", "schema", "table", "lsn", "commit_lsn", "state_lsn",
                 "tx_id", "ts_ms", "snapshot")  # fmt: skip
_NULLABLE_LONGS = ("lsn", "commit_lsn", "state_lsn", "tx_id")
_SCALARS = ("null", "boolean", "long", "double", "string")


def avro_long(n: int) -> bytes:
    """A long: zig-zag, then 7 bits a byte, low bits first."""
    if -64 <= n < 64:
        return _SMALL[n + 64]
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(text: str) -> bytes:
    raw = text.encode()
    return avro_long(len(raw)) + raw


def _branches(union: Any) -> dict[str, int] | None:
    """Branch name -> index of a union of named primitives (an array branch is 'array')."""
    if not isinstance(union, list):
        return None
    out: dict[str, int] = {}
    for i, branch in enumerate(union):
        name = branch if isinstance(branch, str) else branch.get("type")
        if not isinstance(name, str) or name in out:
            return None
        out[name] = i
    return out


@dataclass(frozen=True)
class Layout:
    """Precomputed union indexes (as bytes) of the change event schema."""

    ops: dict[str, bytes]  # op symbol -> its enum index
    row_null: bytes  # before/after: null
    row_map: bytes  # before/after: the map branch
    value: dict[str, bytes]  # map value branch ('null', 'boolean', ... 'array') -> index
    item: dict[str, bytes]  # array item branch -> index
    long_null: bytes  # source.lsn & co: null
    long_value: bytes  # source.lsn & co: long

    @classmethod
    def of(cls, schema: dict[str, Any]) -> Layout | None:
        """The layout of `schema`, or None when it is not the record this module writes."""
        try:
            return cls._read(schema)
        except (KeyError, TypeError, AttributeError, ValueError):
            return None

    @classmethod
    def _read(cls, schema: dict[str, Any]) -> Layout | None:
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        if tuple(fields) != EVENT_FIELDS or fields["event_id"] != "string":
            return None
        if fields["ts_ms"] != "long" or fields["source_ts_ms"] != "long":
            return None
        op = fields["op"]
        if op["type"] != "enum":
            return None
        pk = fields["primary_key"]
        if pk != {"type": "array", "items": "string"}:
            return None
        row = _branches(fields["before"])
        if row is None or fields["before"] != fields["after"] or set(row) != {"null", "map"}:
            return None
        values_schema = fields["before"][row["map"]]["values"]
        value = _branches(values_schema)
        if value is None or set(value) != {*_SCALARS, "array"}:
            return None
        item = _branches(values_schema[value["array"]]["items"])
        if item is None or set(item) != set(_SCALARS):
            return None
        source = {f["name"]: f["type"] for f in fields["source"]["fields"]}
        if tuple(source) != SOURCE_FIELDS:
            return None
        if any(source[n] != "string" for n in ("connector", "db", "schema", "table")):
            return None
        if source["ts_ms"] != "long" or source["snapshot"] != "boolean":
            return None
        longs = {tuple(source[n]) for n in _NULLABLE_LONGS if isinstance(source[n], list)}
        if len(longs) != 1 or set(next(iter(longs))) != {"null", "long"}:
            return None
        nullable = _branches(list(next(iter(longs))))
        assert nullable is not None
        return cls(
            ops={s: avro_long(i) for i, s in enumerate(op["symbols"])},
            row_null=avro_long(row["null"]),
            row_map=avro_long(row["map"]),
            value={k: avro_long(i) for k, i in value.items()},
            item={k: avro_long(i) for k, i in item.items()},
            long_null=avro_long(nullable["null"]),
            long_value=avro_long(nullable["long"]),
        )

    def optional_long(self, n: int | None) -> bytes:
        return self.long_null if n is None else self.long_value + avro_long(n)

    def array(self, items: list[Any]) -> bytes:
        """An array column's value (after its union index): one block of tagged items."""
        if not items:
            return b"\x00"
        parts = [avro_long(len(items))]
        for item in items:
            parts.append(self._tagged(item, self.item))
        parts.append(b"\x00")
        return b"".join(parts)

    @staticmethod
    def _tagged(value: Any, branch: dict[str, bytes]) -> bytes:
        if value is None:
            return branch["null"]
        kind = type(value)
        if kind is bool:
            return branch["boolean"] + (b"\x01" if value else b"\x00")
        if kind is int:
            return branch["long"] + avro_long(value)
        if kind is float:
            return branch["double"] + DOUBLE(value)
        if kind is str:
            return branch["string"] + avro_string(value)
        raise TypeError(f"no Avro branch for {kind.__name__}")
