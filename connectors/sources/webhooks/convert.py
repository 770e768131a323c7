"""Pure: change payloads sent over HTTP -> our CDC `ChangeEvent` (schemas/ingest/change_event).

Two shapes are understood:

* Supabase database webhooks: ``{"type": "INSERT|UPDATE|DELETE", "table", "schema",
  "record", "old_record"}`` (sent by pg_net, no retries and no commit time: `source_ts_ms` is
  the `commit_timestamp` when present, else the time we received it), optionally with
  Realtime's ``columns: [{name, type}]``. The supabase-js client shape (``eventType``,
  ``new``, ``old``: values already through JavaScript numbers) is refused, naming the shape
  to send.
* Debezium JSON envelopes, with or without the ``{"schema": ..., "payload": ...}`` wrapper:
  ``{"op": "c|u|d|r", "before", "after", "source": {"db", "schema", "table", "lsn", "txId",
  "ts_ms", "snapshot"}, "ts_ms"}``; the schema's types undo Debezium's encodings
  (`debezium.py`).

The source contract (`streams.logic.contract`) is applied as the PostgreSQL CDC source
applies it: a table outside it is refused (`UnknownTable`, 422), columns are renamed to
contract names, only carried columns are kept (never a secret), the key is the contract's.
Values are decoded by the payload's own types, else the contract's declared types, into
exactly what the CDC source emits for the same value (`typed.py`); numbers must be parsed
exactly (`json.loads(..., parse_float=Decimal)`).

Identity, never a payload hash (the same values may legitimately come back: A -> B -> A):
the provider's delivery id when the gateway has one, else for Debezium the source position
(db, schema.table, primary key, lsn, txId), else nothing. `Converted.identity` is what
duplicates share (the gateway dedupes on it; None: it must not dedupe), and the event id is
derived from it, or from the gateway's per-request id when there is none, so that a change
that comes back is a new event downstream too.

Failure means `ConversionError` (a `PoisonMessage`) with a reason a sender can act on; the
gateway answers its `status` (400, 422 for `UnknownTable`) with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from streams.errors import PoisonMessage
from streams.logic.contract import Contract, TableContract, public_row
from streams.models import ChangeEvent, ColumnValue
from streams.topics import change_key

from connectors.sources.webhooks import debezium as dbz
from connectors.sources.webhooks.typed import PgType, decode, pg_type

_SUPABASE_OPS: dict[str, Literal["c", "u", "d"]] = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}
_DEBEZIUM_OPS: dict[str, Literal["c", "u", "d", "r"]] = {"c": "c", "u": "u", "d": "d", "r": "r"}
_UNKNOWN = PgType("")
_JSON = frozenset({"json", "jsonb"})


class ConversionError(PoisonMessage):
    """The payload is JSON but not a change event we understand; the message says why."""

    status = 400
    reason = "bad_change_event"


class UnknownTable(ConversionError):
    """The change is of a table the source contract does not declare: refused, as nothing
    downstream reads it and its columns (secrets included) are not known."""

    status = 422
    reason = "unknown_table"


class Converted(NamedTuple):
    """A change event and what its duplicates share (None: nothing identifies it)."""

    change: ChangeEvent
    identity: str | None


def _table(contract: Contract, table: str) -> TableContract:
    found = contract.by_db_name().get(table)
    if found is None:
        raise UnknownTable(
            f"table {table!r} is not in the source contract; send changes of "
            f"{', '.join(sorted(contract.by_db_name()))} only (streams/logic/contract.py)"
        )
    return found


def _column_type(payload: PgType | None, declared: str | None, generic: bool) -> PgType:
    """What to decode a column as: the payload's own type, unless it says less than the
    contract's declared type (no type, a plain string, numeric without its scale)."""
    known = pg_type(declared) if declared else None
    if payload is None or (generic and known is not None):
        return known or _UNKNOWN
    if known is not None and payload.name == known.name == "numeric" and payload.scale is None:
        return known
    return payload


Types = Mapping[str, tuple[PgType, bool]]  # platform column -> (payload type, only generic)


def _row(
    value: Any,
    what: str,
    table: TableContract,
    types: Types,
    undo: Mapping[str, dbz.FieldType] | None = None,
    before: dict[str, ColumnValue] | None = None,
    placeholder: str | None = None,
) -> dict[str, ColumnValue] | None:
    """A row image with the contract applied: only carried columns (never a secret), under
    contract names, each decoded as its type. With `placeholder` (Debezium): the placeholder
    leaves the column out (unchanged), or takes `before`'s value when the before image has
    it, as pgoutput's unchanged TOAST values do on the PostgreSQL path; and a json/jsonb
    value that is a string is the JSON text Debezium always sends for those types."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConversionError(f"{what} must be an object or null, not {type(value).__name__}")
    declared = {c.name: c.pg_type for c in table.columns}
    row: dict[str, ColumnValue] = {}
    for platform, ours in table.carried([str(k) for k in value]).items():
        raw = value[platform]
        field = undo.get(platform) if undo else None
        if placeholder is not None and dbz.unavailable(raw, bool(field and field.binary),
                                                      placeholder):  # fmt: skip
            if before is not None and ours in before:
                row[ours] = before[ours]
            continue
        payload, generic = types.get(platform, (None, False))
        kind = _column_type(payload, declared.get(ours), generic)
        try:
            if field is not None and raw is not None:
                raw = field.undo(raw)
            if placeholder is not None and kind.name in _JSON and isinstance(raw, str):
                raw = dbz.json_text(raw)
            row[ours] = decode(kind, raw)
        except (ValueError, ArithmeticError) as exc:
            name = kind.name or "value"
            raise ConversionError(f"{what}.{platform} is not a {name}: {exc}") from None
    return public_row(table.name, row)  # endpoint URLs without their credentials


def _text(document: Mapping[str, Any], name: str, where: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ConversionError(f"{where}{name} is missing or not a string")
    return value


def _identified(
    kind: str, change: ChangeEvent, delivery_id: str | None, request_id: str
) -> Converted:
    """Give `change` its identity and the event id derived from it (see the module doc)."""
    identity: str | None = None
    source = change["source"]
    if delivery_id:
        identity = f"delivery:{delivery_id}"
    elif source["lsn"] is not None:
        where = f"{source['db']}:{source['schema']}.{change_key(change).decode()}"
        read = ":r" if change["op"] == "r" else ""
        identity = f"position:{where}@{source['lsn']}/{source['tx_id']}{read}"
    basis = identity if identity is not None else f"request:{request_id}"
    change["event_id"] = f"{kind}:" + hashlib.blake2b(basis.encode(), digest_size=16).hexdigest()
    return Converted(change, identity)


def _check_key(row: dict[str, ColumnValue], table: TableContract) -> None:
    missing = [col for col in table.key if row.get(col) is None]
    if missing:
        names = ", ".join(table.db_column(c) for c in missing)
        raise ConversionError(f"row of {table.db_name} lacks primary-key column(s) {names}")


def _iso_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


_BROWSER_SHAPE = (
    "this is the supabase-js client shape (eventType, new, old); POST the Database Webhooks "
    "payload {type, table, schema, record, old_record} instead (a database webhook, or "
    "Realtime's server payload with its columns)"
)


def _supabase_types(columns: Any) -> dict[str, tuple[PgType, bool]]:
    """Supabase Realtime's `columns` ([{name, type}]) as column -> type; {} without them."""
    if columns is None:
        return {}
    if not isinstance(columns, list):
        raise ConversionError("columns must be a list of {name, type}")
    found: dict[str, tuple[PgType, bool]] = {}
    for column in columns:
        if not (isinstance(column, dict) and isinstance(column.get("name"), str)
                and isinstance(column.get("type"), str)):  # fmt: skip
            raise ConversionError("columns must be a list of {name, type}")
        found[column["name"]] = (pg_type(column["type"]), False)
    return found


def from_supabase(
    document: Any,
    *,
    contract: Contract,
    database: str,
    received_ms: int,
    request_id: str,
    delivery_id: str | None = None,
) -> Converted:
    """A Supabase database-webhook payload as a ChangeEvent with the source contract applied;
    ConversionError if it is not one (UnknownTable for a table outside the contract).

    `request_id` is unique per accepted request (the event id when nothing identifies the
    change); `delivery_id` the provider's delivery id, qualified by the gateway source."""
    if not isinstance(document, dict):
        raise ConversionError("expected a JSON object {type, table, schema, record, old_record}")
    if "eventType" in document and "type" not in document:
        raise ConversionError(_BROWSER_SHAPE)
    kind = document.get("type")
    op = _SUPABASE_OPS.get(kind) if isinstance(kind, str) else None
    if op is None:
        raise ConversionError(f"type must be INSERT, UPDATE or DELETE, not {kind!r}")
    table_name, schema = _text(document, "table", ""), _text(document, "schema", "")
    table = _table(contract, table_name)
    types = _supabase_types(document.get("columns"))
    after = _row(document.get("record"), "record", table, types) if op != "d" else None
    before = _row(document.get("old_record"), "old_record", table, types) if op != "c" else None
    row = after if after is not None else before
    if row is None:
        raise ConversionError(f"{kind} without {'record' if op != 'd' else 'old_record'}")
    _check_key(row, table)
    commit_ms = _iso_ms(document.get("commit_timestamp")) or received_ms
    change = ChangeEvent(
        event_id="",
        op=op,
        before=before,
        after=after,
        primary_key=list(table.key),
        source={
            "connector": "supabase-webhook",
            "db": database,
            "schema": schema,
            "table": table.name,
            "lsn": None,
            "commit_lsn": None,
            "state_lsn": None,
            "tx_id": None,
            "ts_ms": commit_ms,
            "snapshot": False,
        },
        ts_ms=received_ms,
        source_ts_ms=commit_ms,
    )
    return _identified("supabase", change, delivery_id, request_id)


def _optional_long(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConversionError(f"source.{name} must be an integer or null")
    return value


def from_debezium(
    document: Any,
    *,
    contract: Contract,
    database: str,
    received_ms: int,
    request_id: str,
    delivery_id: str | None = None,
    placeholder: str = dbz.PLACEHOLDER,
) -> Converted:
    """A Debezium JSON envelope (value part) as a ChangeEvent with the source contract
    applied; ConversionError if it is not (UnknownTable outside the contract). Columns are
    decoded by the envelope's schema when it has one, else by the contract's declared types;
    a column whose value is `placeholder` is unchanged. `request_id` and `delivery_id` as
    for `from_supabase`."""
    images: dict[str, dict[str, dbz.FieldType]] = {}
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        try:
            images = dbz.field_types(document.get("schema"))
        except ValueError as exc:
            raise ConversionError(f"schema: {exc}") from None
        document = document["payload"]  # the JsonConverter's schemas.enable=true wrapper
    if not isinstance(document, dict):
        raise ConversionError("expected a Debezium envelope {op, before, after, source, ts_ms}")
    raw_op = document.get("op")
    op = _DEBEZIUM_OPS.get(raw_op) if isinstance(raw_op, str) else None
    if op is None:
        raise ConversionError(f"op must be one of c, u, d, r, not {raw_op!r}")
    source = document.get("source")
    if not isinstance(source, dict):
        raise ConversionError("source is missing or not an object")
    table_name, schema = _text(source, "table", "source."), _text(source, "schema", "source.")
    table = _table(contract, table_name)

    def image(name: str, prior: dict[str, ColumnValue] | None) -> dict[str, ColumnValue] | None:
        fields = images.get(name, {})
        types = {column: (f.kind, f.generic) for column, f in fields.items()}
        return _row(document.get(name), name, table, types, fields, prior, placeholder)

    try:
        before = image("before", None)
        after = image("after", before) if op != "d" else None
    except ConversionError as exc:
        if images:
            raise
        raise ConversionError(
            f"{exc}; without the envelope's schema each column is read as the contract "
            "declares it: send the envelope with its schema (JsonConverter "
            "schemas.enable=true) so Debezium's encodings can be undone"
        ) from None
    row = after if op != "d" else before
    if row is None:
        raise ConversionError(f"op {op} without {'after' if op != 'd' else 'before'}")
    _check_key(row, table)
    commit_ms = source.get("ts_ms")
    if isinstance(commit_ms, bool) or not isinstance(commit_ms, int):
        commit_ms = received_ms
    snapshot = source.get("snapshot", False)
    db = source.get("db")
    change = ChangeEvent(
        event_id="",
        op=op,
        before=before,
        after=after,
        primary_key=list(table.key),
        source={
            "connector": "debezium-http",
            "db": db if isinstance(db, str) and db else database,
            "schema": schema,
            "table": table.name,
            "lsn": _optional_long(source.get("lsn"), "lsn"),
            "commit_lsn": None,  # Debezium names the previous commit, not this one's
            "state_lsn": None,
            "tx_id": _optional_long(source.get("txId"), "txId"),
            "ts_ms": commit_ms,
            "snapshot": snapshot is True or snapshot in ("true", "last", "first", "incremental"),
        },
        ts_ms=received_ms,
        source_ts_ms=commit_ms,
    )
    return _identified("debezium", change, delivery_id, request_id)
