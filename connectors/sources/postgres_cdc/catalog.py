"""What the CDC source asks PostgreSQL's catalog at start: the publication (created if
missing), primary keys, the captured tables and their live columns, the slot. I/O on a cursor
of an autocommit query connection; the contract decision itself is `Contract.check` (pure).
"""

from __future__ import annotations

import logging
from typing import Any

from streams.errors import ConfigurationError, ContractViolation
from streams.logic.contract import Contract

from connectors.sources.postgres_cdc.config import PostgresCdcConfig

log = logging.getLogger(__name__)

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


def quote(qualified: str) -> str:
    """`schema.table` as a quoted SQL identifier."""
    schema, table = qualified.split(".", 1)
    return f'"{schema}"."{table}"'


PUBLISH = "insert, update, delete, truncate"


def ensure_publication(cur: Any, config: PostgresCdcConfig) -> None:
    """The publication, created (`FOR TABLE <tables>`, or `FOR ALL TABLES`, publishing
    every kind of change) if missing; ConfigurationError, saying the ALTER, when an existing
    one leaves a kind out (a TRUNCATE not published would leave its rows in the state)."""
    cur.execute(
        "SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication "
        "WHERE pubname = %s",
        (config.publication,),
    )
    found = cur.fetchone()
    if found:
        if not all(found):
            raise ConfigurationError(
                f"publication {config.publication} does not publish every change the source "
                f"needs ({PUBLISH}): run ALTER PUBLICATION {config.publication} "
                f"SET (publish = '{PUBLISH}'), then restart"
            )
        return
    target = (
        "FOR TABLE " + ", ".join(quote(t) for t in config.tables)
        if config.tables
        else "FOR ALL TABLES"
    )
    cur.execute(
        f"CREATE PUBLICATION \"{config.publication}\" {target} WITH (publish = '{PUBLISH}')"
    )
    log.info("created publication %s (%s)", config.publication, target)


def load_primary_keys(cur: Any, into: dict[str, tuple[str, ...]]) -> None:
    """`schema.table` -> primary-key columns of every table, into `into`."""
    cur.execute(_PRIMARY_KEYS_SQL)
    into.update({name: tuple(cols) for name, cols in cur.fetchall()})


def live_columns(cur: Any, qualified: str) -> list[tuple[str, int, str]]:
    """(name, type oid, format_type name) of a table's live columns, in order."""
    cur.execute(_COLUMNS_SQL, (quote(qualified),))
    return [(name, oid, type_name) for name, oid, type_name in cur.fetchall()]


def captured_tables(cur: Any, config: PostgresCdcConfig) -> list[str]:
    """The configured tables, or every table of the publication."""
    if config.tables:
        return list(config.tables)
    cur.execute(
        "SELECT schemaname || '.' || tablename FROM pg_publication_tables "
        "WHERE pubname = %s ORDER BY 1",
        (config.publication,),
    )
    return [row[0] for row in cur.fetchall()]


def check_contract(cur: Any, contract: Contract, tables: list[str]) -> None:
    """ContractViolation naming every `table.column` a captured contract table lacks or
    types differently (all tables at once, so one restart fixes everything)."""
    problems: list[str] = []
    for qualified in tables:
        table = qualified.split(".", 1)[1]
        if table not in contract.by_db_name():
            continue
        live = {name: type_name for name, _, type_name in live_columns(cur, qualified)}
        problems.extend(map(str, contract.check(table, live)))
    if problems:
        raise ContractViolation(
            "the database does not satisfy the source contract: " + "; ".join(problems)
        )


def slot_exists(cur: Any, slot_name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot_name,))
    return cur.fetchone() is not None


def slot_position(cur: Any, slot_name: str) -> int:
    """The slot's confirmed position (LSN as an int): where streaming from it resumes."""
    cur.execute(
        "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
        (slot_name,),
    )
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0
