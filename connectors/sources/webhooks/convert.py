"""Pure: change payloads sent over HTTP -> our CDC `ChangeEvent` (schemas/ingest/change_event).

Two shapes are understood:

* Supabase database webhooks: ``{"type": "INSERT|UPDATE|DELETE", "table", "schema",
  "record", "old_record"}`` (sent by pg_net, no retries and no commit time: `source_ts_ms` is
  the `commit_timestamp` when present, else the time we received it).
* Debezium JSON envelopes, with or without the ``{"schema": ..., "payload": ...}`` wrapper:
  ``{"op": "c|u|d|r", "before", "after", "source": {"db", "schema", "table", "lsn", "txId",
  "ts_ms", "snapshot"}, "ts_ms"}``. Temporal columns that the wrapper's schema names become
  the PostgreSQL CDC source's text forms (`temporal.py`); without a schema they, and decimal
  columns (base64), are passed through as they are.

Column values become null, boolean, long, double or string; nested JSON (json/jsonb, arrays)
becomes its JSON text; integers outside the long range become text.

Identity, never a payload hash (the same values may legitimately come back: A -> B -> A):
the provider's delivery id when the gateway has one, else for Debezium the source position
(db, schema.table, primary key, lsn, txId), else nothing. `Converted.identity` is what
duplicates share (the gateway dedupes on it; None: it must not dedupe), and the event id is
derived from it, or from the gateway's per-request id when there is none, so that a change
that comes back is a new event downstream too.

Failure means `ConversionError` (a `PoisonMessage`) with a reason a sender can act on; the
gateway answers 400 with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from streams.errors import PoisonMessage
from streams.models import ChangeEvent, ColumnValue
from streams.topics import change_key

from connectors.sources.webhooks.temporal import temporal_columns, to_text

_SUPABASE_OPS: dict[str, Literal["c", "u", "d"]] = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}
_DEBEZIUM_OPS: dict[str, Literal["c", "u", "d", "r"]] = {"c": "c", "u": "u", "d": "d", "r": "r"}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class ConversionError(PoisonMessage):
    """The payload is JSON but not a change event we understand; the message says why."""


class Converted(NamedTuple):
    """A change event and what its duplicates share (None: nothing identifies it)."""

    change: ChangeEvent
    identity: str | None


def _column(value: Any) -> ColumnValue:
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return value if _LONG_MIN <= value <= _LONG_MAX else str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _row(
    value: Any, what: str, types: Mapping[str, str] | None = None
) -> dict[str, ColumnValue] | None:
    """A row image; columns named in `types` (column -> temporal type) are converted first."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConversionError(f"{what} must be an object or null, not {type(value).__name__}")
    if types:
        value = {k: _temporal(what, k, types[k], v) if k in types else v for k, v in value.items()}
    return {str(k): _column(v) for k, v in value.items()}


def _temporal(what: str, name: str, type_name: str, value: Any) -> Any:
    try:
        return to_text(type_name, value)
    except ValueError as exc:
        raise ConversionError(f"{what}.{name} is not a {type_name}: {exc}") from None


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


def _check_key(row: dict[str, ColumnValue], primary_key: tuple[str, ...], table: str) -> None:
    missing = [col for col in primary_key if col not in row]
    if missing:
        raise ConversionError(f"row of {table} lacks primary-key column(s) {', '.join(missing)}")


def _iso_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def from_supabase(
    document: Any,
    *,
    database: str,
    primary_keys: Mapping[str, tuple[str, ...]],
    received_ms: int,
    request_id: str,
    delivery_id: str | None = None,
) -> Converted:
    """A Supabase database-webhook payload as a ChangeEvent; ConversionError if it is not one.

    `request_id` is unique per accepted request (the event id when nothing identifies the
    change); `delivery_id` the provider's delivery id, qualified by the gateway source."""
    if not isinstance(document, dict):
        raise ConversionError("expected a JSON object {type, table, schema, record, old_record}")
    kind = document.get("type")
    op = _SUPABASE_OPS.get(kind) if isinstance(kind, str) else None
    if op is None:
        raise ConversionError(f"type must be INSERT, UPDATE or DELETE, not {kind!r}")
    table, schema = _text(document, "table", ""), _text(document, "schema", "")
    after = _row(document.get("record"), "record") if op != "d" else None
    before = _row(document.get("old_record"), "old_record") if op != "c" else None
    row = after if after is not None else before
    if row is None:
        raise ConversionError(f"{kind} without {'record' if op != 'd' else 'old_record'}")
    primary_key = primary_keys.get(table, ("id",))
    _check_key(row, primary_key, table)
    commit_ms = _iso_ms(document.get("commit_timestamp")) or received_ms
    change = ChangeEvent(
        event_id="",
        op=op,
        before=before,
        after=after,
        primary_key=list(primary_key),
        source={
            "connector": "supabase-webhook",
            "db": database,
            "schema": schema,
            "table": table,
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
    database: str,
    primary_keys: Mapping[str, tuple[str, ...]],
    received_ms: int,
    request_id: str,
    delivery_id: str | None = None,
) -> Converted:
    """A Debezium JSON envelope (value part) as a ChangeEvent; ConversionError if it is not.
    `request_id` and `delivery_id` as for `from_supabase`."""
    types: dict[str, dict[str, str]] = {}
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        types = temporal_columns(document.get("schema"))
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
    table, schema = _text(source, "table", "source."), _text(source, "schema", "source.")
    before = _row(document.get("before"), "before", types.get("before"))
    after = _row(document.get("after"), "after", types.get("after"))
    row = after if op != "d" else before
    if row is None:
        raise ConversionError(f"op {op} without {'after' if op != 'd' else 'before'}")
    primary_key = primary_keys.get(table, ("id",))
    _check_key(row, primary_key, table)
    commit_ms = source.get("ts_ms")
    if isinstance(commit_ms, bool) or not isinstance(commit_ms, int):
        commit_ms = received_ms
    snapshot = source.get("snapshot", False)
    db = source.get("db")
    change = ChangeEvent(
        event_id="",
        op=op,
        before=before,
        after=after if op != "d" else None,
        primary_key=list(primary_key),
        source={
            "connector": "debezium-http",
            "db": db if isinstance(db, str) and db else database,
            "schema": schema,
            "table": table,
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
