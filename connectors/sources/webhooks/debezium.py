"""Pure: what a Debezium envelope's own schema says of each column, and Debezium's encodings
undone, before `typed.decode` gives the PostgreSQL CDC source's value.

Debezium's JsonConverter with `schemas.enable=true` sends `{"schema", "payload"}`; the
envelope schema's `before` and `after` structs give each column's Connect type and, for
many, a logical name (`name`) with `parameters`:

    org.apache.kafka.connect.data.Decimal  base64 big-endian two's complement, scale in
                                           parameters.scale  -> numeric (exact)
    io.debezium.data.VariableScaleDecimal  {"scale", "value": base64}  -> numeric (exact)
    io.debezium.time.* / Connect Date, Time, Timestamp  -> date, time, timetz, timestamp,
                                           timestamptz (`temporal.py`)
    io.debezium.data.Uuid                  -> uuid
    io.debezium.data.Json                  JSON text  -> jsonb
    io.debezium.data.Enum, Xml, Ltree       text  -> text
    int8/16 int32 int64 float32/64 boolean string, array of those  -> their PostgreSQL types
    bytes without a name                   base64  -> bytea's hex text '\\x0102ff'
    string without a name                  -> text (the contract's declared type wins)

A logical name not listed is refused (`ValueError` naming it): guessing its encoding would
store a wrong value. `UNAVAILABLE` marks a value Debezium replaced by its placeholder
(`__debezium_unavailable_value`: an unchanged TOAST value); the column is then unchanged,
never the placeholder.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.sources.webhooks.temporal import to_text
from connectors.sources.webhooks.typed import PgType, pg_type

PLACEHOLDER = "__debezium_unavailable_value"
UNAVAILABLE: Any = object()

_TEMPORAL: dict[str, str] = {
    "io.debezium.time.Date": "date",
    "org.apache.kafka.connect.data.Date": "date",
    "io.debezium.time.Time": "time without time zone",
    "org.apache.kafka.connect.data.Time": "time without time zone",
    "io.debezium.time.MicroTime": "time without time zone",
    "io.debezium.time.NanoTime": "time without time zone",
    "io.debezium.time.ZonedTime": "time with time zone",
    "io.debezium.time.Timestamp": "timestamp without time zone",
    "org.apache.kafka.connect.data.Timestamp": "timestamp without time zone",
    "io.debezium.time.MicroTimestamp": "timestamp without time zone",
    "io.debezium.time.NanoTimestamp": "timestamp without time zone",
    "io.debezium.time.ZonedTimestamp": "timestamp with time zone",
}
_TEXT_NAMES = frozenset({"io.debezium.data.Enum", "io.debezium.data.Xml", "io.debezium.data.Ltree"})
_PLAIN: dict[str, str] = {
    "int8": "smallint",
    "int16": "smallint",
    "int32": "integer",
    "int64": "bigint",
    "float32": "real",
    "float64": "double precision",
    "boolean": "boolean",
    "string": "text",
}


@dataclass(frozen=True, slots=True)
class FieldType:
    """One column as the envelope schema describes it."""

    kind: PgType  # what it is in PostgreSQL; `generic` True: only "a string", say
    undo: Callable[[Any], Any]  # Debezium's encoding -> the JSON value `typed.decode` reads
    generic: bool = False  # a plain string: the contract's declared type says more
    binary: bool = False  # bytes (base64): the placeholder arrives base64-encoded


def _same(value: Any) -> Any:
    return value


def _bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"expected base64 text, not {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{value[:40]!r} is not base64") from None


def _bytea(value: Any) -> str:
    """bytea as PostgreSQL prints it (bytea_output=hex), as the CDC source carries it."""
    return "\\x" + _bytes(value).hex()


def _unscaled(value: Any) -> int:
    raw = _bytes(value)
    if not raw:
        raise ValueError("empty decimal bytes")
    return int.from_bytes(raw, "big", signed=True)


def _scale(parameters: Any) -> int:
    scale = parameters.get("scale") if isinstance(parameters, dict) else None
    try:
        number = int(scale) if isinstance(scale, str | int) and not isinstance(scale, bool) else -1
    except ValueError:
        number = -1
    if not 0 <= number <= 1000:
        raise ValueError(f"Decimal without a valid parameters.scale ({scale!r})")
    return number


def _exact(unscaled: int, scale: int) -> Decimal:
    """unscaled * 10**-scale with every digit (Decimal arithmetic would round to 28)."""
    return Decimal(f"{unscaled}E{-scale}")


def _decimal(scale: int) -> Callable[[Any], Any]:
    return lambda value: _exact(_unscaled(value), scale)


def _variable_decimal(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("scale"), int):
        raise ValueError("a VariableScaleDecimal is {scale, value}")
    return _exact(_unscaled(value.get("value")), value["scale"])


def json_text(value: Any) -> Any:
    """JSON text (how Debezium sends json/jsonb values) parsed, numbers exactly."""
    if not isinstance(value, str):
        raise ValueError(f"expected JSON text, not {type(value).__name__}")
    try:
        return json.loads(value, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None


def _temporal(name: str) -> Callable[[Any], Any]:
    return lambda value: to_text(name, value)


def field_type(schema: Any) -> FieldType:
    """The type of one column's schema entry; ValueError for a logical type not known."""
    if not isinstance(schema, dict):
        raise ValueError("a field schema must be an object")
    name, kind = schema.get("name"), schema.get("type")
    if name is None and kind == "array":
        item = field_type(schema.get("items"))
        element = item.kind
        return FieldType(
            PgType(element.name, True, element.precision, element.scale),
            lambda value: [item.undo(v) if v is not None else None for v in value]
            if isinstance(value, list) else value,
            item.generic,
        )  # fmt: skip
    if name is None:
        if kind == "bytes":
            return FieldType(pg_type("bytea"), _bytea, binary=True)
        if kind not in _PLAIN:
            raise ValueError(f"unknown field type {kind!r}")
        return FieldType(pg_type(_PLAIN[kind]), _same, generic=kind == "string")
    if name == "org.apache.kafka.connect.data.Decimal":
        parameters = schema.get("parameters")
        scale = _scale(parameters)
        precision = parameters.get("connect.decimal.precision") if parameters else None
        digits = int(precision) if isinstance(precision, str) and precision.isdigit() else None
        return FieldType(PgType("numeric", False, digits, scale), _decimal(scale), binary=True)
    if name == "io.debezium.data.VariableScaleDecimal":
        return FieldType(pg_type("numeric"), _variable_decimal)
    if name in _TEMPORAL:
        return FieldType(pg_type(_TEMPORAL[name]), _temporal(name))
    if name == "io.debezium.data.Uuid":
        return FieldType(pg_type("uuid"), _same)
    if name == "io.debezium.data.Json":
        return FieldType(pg_type("jsonb"), json_text)
    if name in _TEXT_NAMES:
        return FieldType(pg_type("text"), _same)
    raise ValueError(
        f"logical type {name!r} is not one this gateway decodes (Decimal, "
        "VariableScaleDecimal, io.debezium.time.*, Uuid, Json, Enum, Xml, Ltree); "
        "exclude the column in the connector or use a string handling mode"
    )


def field_types(schema: Any) -> dict[str, dict[str, FieldType]]:
    """{"before" | "after": {column: FieldType}} from an envelope schema; {} when there is
    none (nothing but the contract says what a column is). ValueError naming the column
    whose schema is not one we decode."""
    found: dict[str, dict[str, FieldType]] = {}
    fields = schema.get("fields") if isinstance(schema, dict) else None
    for struct in fields if isinstance(fields, list) else []:
        if not isinstance(struct, dict) or struct.get("field") not in ("before", "after"):
            continue
        columns = struct.get("fields")
        image: dict[str, FieldType] = {}
        for column in columns if isinstance(columns, list) else []:
            if isinstance(column, dict) and isinstance(column.get("field"), str):
                try:
                    image[column["field"]] = field_type(column)
                except ValueError as exc:
                    raise ValueError(f"{struct['field']}.{column['field']}: {exc}") from None
        found[struct["field"]] = image
    return found


def unavailable(value: Any, binary: bool, placeholder: str = PLACEHOLDER) -> bool:
    """Whether `value` is Debezium's placeholder for a value it did not have."""
    if isinstance(value, list):
        return len(value) == 1 and unavailable(value[0], binary, placeholder)
    if not isinstance(value, str):
        return False
    if value == placeholder:
        return True
    return binary and value == base64.b64encode(placeholder.encode()).decode()
