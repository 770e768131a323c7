"""The row keys of the state tables that the routing state holds, so that a TRUNCATE of a
state table becomes a delete (op `d`, key columns only) of every one of them. Pure.

Why the source keeps them: pgoutput's Truncate message names relations, never rows, and by
the time it is decoded the rows are gone from the database. The routing state is the fold of
`wedsync.ingest.state` (compacted: the latest record of every key is kept forever), and
this source is its only writer, so the keys it holds are exactly the keys whose latest
record there is not a delete. The source reads them back from that topic at start
(`state_read.py`) and then tracks every change it decodes, in decode (commit) order, so a
restart, even while a TRUNCATE is waiting in the slot, loses none. Keeping more keys than
the state holds is harmless: a delete of a row the state lacks changes nothing.
"""

from __future__ import annotations

from streams.models import ChangeEvent, ColumnValue

KeyRow = dict[str, ColumnValue]  # the primary-key columns of one row


class StateKeys:
    """Row keys by state table (contract name): `track` every change, `take` at a TRUNCATE."""

    def __init__(self, state_tables: frozenset[str]) -> None:
        self.state_tables = state_tables
        self.rows: dict[str, dict[bytes, KeyRow]] = {}

    def track(self, key: bytes, change: ChangeEvent) -> None:
        """Follow one change (or a record read back from wedsync.ingest.state)."""
        table = change["source"]["table"]
        if table not in self.state_tables:
            return
        row = change["after"] or {}
        self.track_row(table, change["op"], key, {c: row.get(c) for c in change["primary_key"]})

    def track_row(self, table: str, op: str, key: bytes, pk_row: KeyRow) -> None:
        """Follow one change of `table` given its key columns (what `track` reads of it)."""
        if table not in self.state_tables:
            return
        if op == "d":
            self.rows.get(table, {}).pop(key, None)
            return
        self.rows.setdefault(table, {})[key] = pk_row

    def take(self, table: str) -> dict[bytes, KeyRow]:
        """Every key of `table` held so far (now forgotten): the rows a TRUNCATE removes."""
        return self.rows.pop(table, {})

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.rows.values())
