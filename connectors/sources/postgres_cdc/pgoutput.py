"""Parsing of PostgreSQL's `pgoutput` logical replication messages (protocol version 1).
Pure: bytes in, frozen dataclasses out; malformed bytes raise `DecodeError`.

Wire format (PostgreSQL docs, "Logical Replication Message Formats"); integers are big-endian,
strings are NUL-terminated UTF-8, timestamps are microseconds since 2000-01-01 UTC:

    B  Begin     int64 final_lsn, int64 commit_ts, int32 xid
    C  Commit    int8 flags, int64 commit_lsn, int64 end_lsn, int64 commit_ts
    O  Origin    int64 lsn, string name
    R  Relation  int32 oid, string namespace, string name, int8 replica_identity, int16 ncols,
                 ncols x (int8 flags [1 = key column], string name, int32 type_oid, int32 typmod)
    Y  Type      int32 oid, string namespace, string name
    I  Insert    int32 oid, 'N' tuple
    U  Update    int32 oid, ['K' tuple | 'O' tuple], 'N' tuple
    D  Delete    int32 oid, 'K' tuple | 'O' tuple
    T  Truncate  int32 nrels, int8 options, nrels x int32 oid
    M  Message   int8 flags, int64 lsn, string prefix, int32 length, bytes content
    tuple        int16 ncols, ncols x ('n' null | 'u' unchanged TOAST | 't' int32 len, bytes)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from streams.errors import DecodeError

PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix milliseconds

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


# ---- protocol messages ------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    is_key: bool


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_ts_ms: int
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_ts_ms: int


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[Column, ...]


# One tuple's values as text; None = SQL NULL; UNCHANGED = an unchanged TOAST value.
class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
TupleData = tuple[str | _Unchanged | None, ...]


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: TupleData


@dataclass(frozen=True)
class Update:
    relation_oid: int
    old: TupleData | None  # None unless REPLICA IDENTITY FULL ('O') or the key changed ('K')
    new: TupleData
    old_is_key: bool = False  # 'K': only the replica-identity columns are meaningful


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: TupleData  # the key columns ('K') or, with REPLICA IDENTITY FULL, all columns ('O')
    old_is_key: bool = True


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class Ignored:
    """Origin, Type and logical decoding messages: valid, but nothing for us to do."""

    kind: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Ignored


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: struct.Struct) -> int:
        try:
            (value,) = fmt.unpack_from(self.data, self.pos)
        except struct.error:
            raise DecodeError(f"pgoutput message truncated at byte {self.pos}") from None
        self.pos += fmt.size
        return int(value)

    def byte(self) -> str:
        if self.pos >= len(self.data):
            raise DecodeError(f"pgoutput message truncated at byte {self.pos}")
        self.pos += 1
        return chr(self.data[self.pos - 1])

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError(f"unterminated string at byte {self.pos}")
        value = self.data[self.pos : end].decode("utf-8", "replace")
        self.pos = end + 1
        return value

    def raw(self, length: int) -> bytes:
        if length < 0 or self.pos + length > len(self.data):
            raise DecodeError(f"value of {length} bytes overruns the message at {self.pos}")
        self.pos += length
        return self.data[self.pos - length : self.pos]

    def tuple_data(self) -> TupleData:
        """The hot path (one call per row image): locals, no per-value method calls."""
        data, pos, size = self.data, self.pos, len(self.data)
        values: list[str | _Unchanged | None] = []
        append = values.append
        try:
            (count,) = _I16.unpack_from(data, pos)
            pos += 2
            for _ in range(count):
                kind = data[pos]
                pos += 1
                if kind == 0x74:  # 't'
                    (length,) = _I32.unpack_from(data, pos)
                    end = pos + 4 + length
                    if length < 0 or end > size:
                        raise DecodeError(f"value of {length} bytes overruns the message")
                    append(data[pos + 4 : end].decode("utf-8", "replace"))
                    pos = end
                elif kind == 0x6E:  # 'n'
                    append(None)
                elif kind == 0x75:  # 'u'
                    append(UNCHANGED)
                else:  # 'b' needs the `binary` option, which we never ask for
                    raise DecodeError(f"unsupported tuple value kind {chr(kind)!r}")
        except (IndexError, struct.error):
            raise DecodeError(f"pgoutput tuple truncated at byte {pos}") from None
        self.pos = pos
        return tuple(values)


def _ts_ms(pg_micros: int) -> int:
    return PG_EPOCH_MS + pg_micros // 1000


def parse_message(data: bytes) -> Message:
    """Parse one pgoutput message; DecodeError when the bytes are not one."""
    r = _Reader(data)
    kind = r.byte()
    if kind == "B":
        return Begin(r.unpack(_I64), _ts_ms(r.unpack(_I64)), r.unpack(_U32))
    if kind == "C":
        r.unpack(_I8)
        return Commit(r.unpack(_I64), r.unpack(_I64), _ts_ms(r.unpack(_I64)))
    if kind == "R":
        oid, namespace, name = r.unpack(_U32), r.string(), r.string()
        identity = r.byte()
        columns = []
        for _ in range(r.unpack(_I16)):
            flags, col = r.unpack(_I8), r.string()
            type_oid = r.unpack(_U32)
            r.unpack(_I32)  # type modifier
            columns.append(Column(col, type_oid, bool(flags & 1)))
        return Relation(oid, namespace, name, identity, tuple(columns))
    if kind == "I":
        oid = r.unpack(_U32)
        if r.byte() != "N":
            raise DecodeError("insert without a new tuple")
        return Insert(oid, r.tuple_data())
    if kind == "U":
        oid = r.unpack(_U32)
        marker = r.byte()
        old, old_kind = None, marker
        if marker in ("K", "O"):
            old = r.tuple_data()
            marker = r.byte()
        if marker != "N":
            raise DecodeError(f"update without a new tuple (saw {marker!r})")
        return Update(oid, old, r.tuple_data(), old_kind == "K")
    if kind == "D":
        oid = r.unpack(_U32)
        old_kind = r.byte()
        if old_kind not in ("K", "O"):
            raise DecodeError("delete without an old tuple")
        return Delete(oid, r.tuple_data(), old_kind == "K")
    if kind == "T":
        count, options = r.unpack(_I32), r.unpack(_I8)
        oids = tuple(r.unpack(_U32) for _ in range(count))
        return Truncate(oids, bool(options & 1), bool(options & 2))
    if kind in ("O", "Y", "M"):
        return Ignored(kind)
    raise DecodeError(f"unknown pgoutput message type {kind!r}")
