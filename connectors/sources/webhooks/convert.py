"""Pure: change payloads sent over HTTP -> our CDC `ChangeEvent` (schemas/ingest/change_event).

Two shapes are understood:

* Supabase database webhooks: ``{"type": "INSERT|UPDATE|DELETE", "table", "schema",
  "record", "old_record"}`` (sent by pg_net, no retries and no commit time: `source_ts_ms` is
  the `commit_timestamp` when present, else the time we received it).
* Debezium JSON envelopes, with or without the ``{"schema": ..., "payload": ...}`` wrapper:
  ``{"op": "c|u|d|r", "before", "after", "source": {"db", "schema", "table", "lsn", "txId",
  "ts_ms", "snapshot"}, "ts_ms"}``. Temporal and decimal columns arrive in Debezium's own
  encodings (epoch numbers, base64) and are passed through as they are.

Column values become null, boolean, long, double or string; nested JSON (json/jsonb, arrays)
becomes its JSON text; integers outside the long range become text. The event id is a hash of
the payload, so the same payload sent twice yields the same id (the gateway dedupes on it).

Failure means `ConversionError` (a `PoisonMessage`) with a reason a sender can act on; the
gateway answers 400 with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from streams.errors import PoisonMessage
from streams.models import ChangeEvent, ColumnValue

_SUPABASE_OPS: dict[str, Literal["c", "u", "d"]] = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}
_DEBEZIUM_OPS = frozenset({"c", "u", "d", "r"})
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class ConversionError(PoisonMessage):
    """The payload is JSON but not a change event we understand; the message says why."""


def _column(value: Any) -> ColumnValue:
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return value if _LONG_MIN <= value <= _LONG_MAX else str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _row(value: Any, what: str) -> dict[str, ColumnValue] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConversionError(f"{what} must be an object or null, not {type(value).__name__}")
    return {str(k): _column(v) for k, v in value.items()}


def _text(document: Mapping[str, Any], name: str, where: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ConversionError(f"{where}{name} is missing or not a string")
    return value


def _payload_id(kind: str, document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, separators=(",", ":"), sort_keys=True, default=str)
    return f"{kind}:" + hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


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
) -> ChangeEvent:
    """A Supabase database-webhook payload as a ChangeEvent; ConversionError if it is not one."""
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
    return ChangeEvent(
        event_id=_payload_id("supabase", document),
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
            "tx_id": None,
            "ts_ms": commit_ms,
            "snapshot": False,
        },
        ts_ms=received_ms,
        source_ts_ms=commit_ms,
    )


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
) -> ChangeEvent:
    """A Debezium JSON envelope (value part) as a ChangeEvent; ConversionError if it is not."""
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        document = document["payload"]  # the JsonConverter's schemas.enable=true wrapper
    if not isinstance(document, dict):
        raise ConversionError("expected a Debezium envelope {op, before, after, source, ts_ms}")
    op = document.get("op")
    if op not in _DEBEZIUM_OPS:
        raise ConversionError(f"op must be one of c, u, d, r, not {op!r}")
    source = document.get("source")
    if not isinstance(source, dict):
        raise ConversionError("source is missing or not an object")
    table, schema = _text(source, "table", "source."), _text(source, "schema", "source.")
    before, after = _row(document.get("before"), "before"), _row(document.get("after"), "after")
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
    return ChangeEvent(
        event_id=_payload_id("debezium", document),
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
            "tx_id": _optional_long(source.get("txId"), "txId"),
            "ts_ms": commit_ms,
            "snapshot": snapshot is True or snapshot in ("true", "last", "first", "incremental"),
        },
        ts_ms=received_ms,
        source_ts_ms=commit_ms,
    )
