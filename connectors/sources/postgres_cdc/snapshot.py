"""The initial snapshot of a new slot (source.py's lifecycle, step 2): every captured table
read, as read events (op `r`) at the consistent point of a temporary slot's exported
snapshot. I/O: PostgreSQL here, Kafka through the `Emitter`.

`create_slot` makes the TEMPORARY slot with EXPORT_SNAPSHOT; `SnapshotReader.read` writes
every row of the tables on that snapshot; `keep_slot` copies the temporary slot into the
permanent one, once Kafka acknowledged every row (the caller flushes first).

A row whose value cannot be converted (`values.convert_row`: a two-dimensional array) is
what the streaming path makes of a change it cannot carry: a dead letter (`dead.DeadRow`, op
`r`) with the column and the reason, the table, the row key and the snapshot's LSN in
headers, and as value the text of the columns a change event would carry (never a secret or
excluded column); the snapshot goes on. A row too large for one
record is cut or dead-lettered by the emitter, as a streamed change is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extensions
from streams.logic.contract import Contract
from streams.topics import cdc_key, primary_key_text

from connectors.sources.postgres_cdc.acks import TxAcks
from connectors.sources.postgres_cdc.catalog import live_columns, quote
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.dead import BadColumn, DeadRow
from connectors.sources.postgres_cdc.decode import TableRules, build_event
from connectors.sources.postgres_cdc.emit import Emitter
from connectors.sources.postgres_cdc.state_keys import StateKeys
from connectors.sources.postgres_cdc.values import convert_row

log = logging.getLogger(__name__)


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True)
class SnapshotPoint:
    temp_slot: str
    lsn: int  # the consistent point: the permanent slot starts streaming there
    name: str  # the exported snapshot


def create_slot(repl_cur: Any, slot_name: str) -> SnapshotPoint:
    """A TEMPORARY slot exporting its snapshot (dropped by PostgreSQL if we crash)."""
    temp_slot = f"{slot_name}_snap_{os.getpid()}"[:63]
    repl_cur.execute(
        f'CREATE_REPLICATION_SLOT "{temp_slot}" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT'
    )
    _, consistent_point, snapshot_name, _ = repl_cur.fetchone()
    log.info("snapshot %s at %s", snapshot_name, consistent_point)
    return SnapshotPoint(temp_slot, parse_lsn(consistent_point), snapshot_name)


def keep_slot(query: Any, point: SnapshotPoint, slot_name: str) -> None:
    """The permanent slot, a copy of the temporary one: streaming starts at the snapshot."""
    with query.cursor() as cur:
        cur.execute(
            "SELECT pg_copy_logical_replication_slot(%s, %s, false)", (point.temp_slot, slot_name)
        )


class SnapshotReader:
    """Reads the captured tables on an exported snapshot into the emitter."""

    def __init__(
        self,
        config: PostgresCdcConfig,
        rules: TableRules,
        contract: Contract,
        primary_keys: Mapping[str, tuple[str, ...]],
        emit: Emitter,
        column_types: MutableMapping[tuple[str, str], dict[str, int]],
        now_ms: Callable[[], int],
        keys: StateKeys,
    ) -> None:
        self.config = config
        self.rules = rules
        self.contract = contract
        self.primary_keys = primary_keys
        self.emit = emit
        self.column_types = column_types
        self.now_ms = now_ms
        self.keys = keys  # the state rows a later TRUNCATE removes
        self.rows = 0

    def read(self, point: SnapshotPoint, tables: list[str], tx: TxAcks) -> None:
        """Every row of `tables` (`schema.table`) as of `point`, counted against `tx`."""
        with contextlib.closing(psycopg2.connect(self.config.dsn())) as snap:
            snap.set_session(
                isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True
            )
            with snap.cursor() as cur:  # the first statement of the transaction
                cur.execute("SET TRANSACTION SNAPSHOT %s", (point.name,))
            for qualified in tables:
                self._table(snap, qualified, point.lsn, tx)
            snap.rollback()

    def _table(self, snap: Any, qualified: str, lsn: int, tx: TxAcks) -> None:
        excluded = self.rules.excluded(qualified)
        schema, table = qualified.split(".", 1)
        with snap.cursor() as cur:
            live = live_columns(cur, qualified)
        names = {name: name for name, _, _ in live}
        contract = self.contract.by_db_name().get(table)
        if contract is not None:  # only the carried columns, under their contract names
            names, table = contract.carried(list(names)), contract.name
        selected = [(n, oid) for n, oid, _ in live if n not in excluded and n in names]
        if not selected:
            return
        columns = [(names[n], oid) for n, oid in selected]  # contract names
        self.column_types[(schema, table)] = dict(columns)
        pk = tuple(names.get(c, c) for c in self.primary_keys.get(qualified, ()))
        select_list = ", ".join(f'"{name}"::text' for name, _ in selected)
        commit_ms = self.now_ms()
        with snap.cursor(name=f"wedsync_snapshot_{table}"[:63]) as cur:
            cur.itersize = 5000
            cur.execute(f"SELECT {select_list} FROM {quote(qualified)}")
            for texts in cur:
                try:
                    row = convert_row(columns, texts)
                except BadColumn as bad:  # a bad row is data: dead-letter it, go on
                    text_row = {name: t for (name, _), t in zip(columns, texts, strict=True)}
                    key = cdc_key(table, primary_key_text(pk, text_row))
                    dead = DeadRow(qualified, key, bad.column, bad.error, "r", None, text_row)
                    self.emit.dead_row(tx, dead, lsn=lsn)
                    continue
                key, event = build_event(
                    db=self.config.dbname, schema=schema, table=table, op="r", before=None,
                    after=row, primary_key=pk, lsn=lsn, commit_lsn=lsn, tx_id=None,
                    commit_ms=commit_ms, now_ms=commit_ms,
                )  # fmt: skip
                self.keys.track(key, event)
                self.emit.change(tx, key, event)
                self.rows += 1
                if self.rows % 1000 == 0:
                    self.emit.producer.poll(0)
