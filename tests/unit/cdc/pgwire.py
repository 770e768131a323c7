"""Builders for pgoutput (protocol version 1) messages, written from the documented format
("Logical Replication Message Formats" in the PostgreSQL manual), not from our parser."""

from __future__ import annotations

import struct

PG_EPOCH_MS = 946_684_800_000

Value = str | None  # None = SQL NULL; "\x00u" = unchanged TOAST
UNCHANGED_TOAST = "\x00u"


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def micros_since_2000(unix_ms: int) -> int:
    return (unix_ms - PG_EPOCH_MS) * 1000


def begin(final_lsn: int, commit_unix_ms: int, xid: int) -> bytes:
    return b"B" + struct.pack(">qqi", final_lsn, micros_since_2000(commit_unix_ms), xid)


def commit(commit_lsn: int, end_lsn: int, commit_unix_ms: int) -> bytes:
    return b"C" + struct.pack(">bqqq", 0, commit_lsn, end_lsn, micros_since_2000(commit_unix_ms))


def relation(
    oid: int, namespace: str, name: str, columns: list[tuple[str, int, bool]], identity: str = "d"
) -> bytes:
    out = b"R" + struct.pack(">I", oid) + _s(namespace) + _s(name) + identity.encode()
    out += struct.pack(">h", len(columns))
    for col, type_oid, is_key in columns:
        out += struct.pack(">b", 1 if is_key else 0) + _s(col) + struct.pack(">Ii", type_oid, -1)
    return out


def tuple_data(values: list[Value]) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value == UNCHANGED_TOAST:
            out += b"u"
        else:
            raw = value.encode()
            out += b"t" + struct.pack(">i", len(raw)) + raw
    return out


def insert(oid: int, new: list[Value]) -> bytes:
    return b"I" + struct.pack(">I", oid) + b"N" + tuple_data(new)


def update(oid: int, new: list[Value], old: list[Value] | None = None, kind: str = "O") -> bytes:
    out = b"U" + struct.pack(">I", oid)
    if old is not None:
        out += kind.encode() + tuple_data(old)
    return out + b"N" + tuple_data(new)


def delete(oid: int, old: list[Value], kind: str = "K") -> bytes:
    return b"D" + struct.pack(">I", oid) + kind.encode() + tuple_data(old)


def truncate(oids: list[int], cascade: bool = False, restart_identity: bool = False) -> bytes:
    options = (1 if cascade else 0) | (2 if restart_identity else 0)
    return (
        b"T" + struct.pack(">ib", len(oids), options) + b"".join(struct.pack(">I", o) for o in oids)
    )


def origin(lsn: int, name: str) -> bytes:
    return b"O" + struct.pack(">q", lsn) + _s(name)
