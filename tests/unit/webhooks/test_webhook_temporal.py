"""Debezium temporal columns (JSON with schema) -> what the PostgreSQL CDC source emits for
the same value: date 'YYYY-MM-DD', time and timetz as PostgreSQL prints them ('HH:MM:SS[.f]',
offset '+00'), timestamp as its text ('YYYY-MM-DD HH:MM:SS[.f]'), timestamptz ISO 8601 in UTC.

The envelopes are shaped as Debezium's JsonConverter writes them with schemas.enable=true:
`schema.fields` names the before/after structs, whose fields carry the semantic type names."""

from __future__ import annotations

from typing import Any

import pytest
from connectors.sources.webhooks.convert import ConversionError, from_debezium
from streams.logic.contract import Contract

CONTRACT = Contract.default()

SOURCE_SCHEMA = {"type": "struct", "optional": False,
                 "name": "io.debezium.connector.postgresql.Source", "field": "source",
                 "fields": [{"type": "string", "optional": False, "field": "table"}]}  # fmt: skip


def envelope(columns: list[dict[str, Any]], after: dict[str, Any]) -> dict[str, Any]:
    """A Debezium change event with schema for core_fields (whose profile columns are
    carried whatever their names) with an int `id` and `columns`."""
    row = {"type": "struct", "optional": True, "name": "pg.public.core_fields.Value",
           "fields": [{"type": "int32", "optional": False, "field": "id"}, *columns]}  # fmt: skip
    return {
        "schema": {"type": "struct", "optional": False, "name": "pg.public.core_fields.Envelope",
                   "fields": [{**row, "field": "before"}, {**row, "field": "after"},
                              SOURCE_SCHEMA, {"type": "string", "optional": False, "field": "op"},
                              {"type": "int64", "optional": True, "field": "ts_ms"}]},
        "payload": {"before": None, "after": {"id": 1, **after}, "op": "c",
                    "source": {"db": "platform", "schema": "public", "table": "core_fields",
                               "lsn": 33227720, "txId": 565, "ts_ms": 1_559_033_904_863},
                    "ts_ms": 1_559_033_904_900},
    }  # fmt: skip


def column(value: Any, schema_type: str, name: str | None) -> Any:
    field: dict[str, Any] = {"type": schema_type, "optional": True, "field": "v"}
    if name is not None:
        field |= {"name": name, "version": 1}
    change = from_debezium(envelope([field], {"v": value}), database="wedsync", contract=CONTRACT,
                           received_ms=0, request_id="r").change  # fmt: skip
    return change["after"]["v"]


@pytest.mark.parametrize(
    ("value", "schema_type", "name", "text"),
    [
        (20623, "int32", "io.debezium.time.Date", "2026-06-19"),
        (-1, "int32", "io.debezium.time.Date", "1969-12-31"),
        (20623, "int32", "org.apache.kafka.connect.data.Date", "2026-06-19"),
        (52_200_000, "int32", "io.debezium.time.Time", "14:30:00"),
        (52_200_123, "int32", "org.apache.kafka.connect.data.Time", "14:30:00.123"),
        (52_200_000_005, "int64", "io.debezium.time.MicroTime", "14:30:00.000005"),
        (52_200_000_005_999, "int64", "io.debezium.time.NanoTime", "14:30:00.000005"),
        (86_400_000_000, "int64", "io.debezium.time.MicroTime", "24:00:00"),
        ("14:30:00.5Z", "string", "io.debezium.time.ZonedTime", "14:30:00.5+00"),
        ("14:30:00+02:00", "string", "io.debezium.time.ZonedTime", "14:30:00+02"),
        (1_781_879_400_000, "int64", "io.debezium.time.Timestamp", "2026-06-19 14:30:00"),
        (1_781_879_400_000, "int64", "org.apache.kafka.connect.data.Timestamp",
         "2026-06-19 14:30:00"),
        (1_781_879_400_000_001, "int64", "io.debezium.time.MicroTimestamp",
         "2026-06-19 14:30:00.000001"),
        (1_781_879_400_000_001_999, "int64", "io.debezium.time.NanoTimestamp",
         "2026-06-19 14:30:00.000001"),
        (-1, "int64", "io.debezium.time.MicroTimestamp", "1969-12-31 23:59:59.999999"),
        ("2026-06-19T14:30:00Z", "string", "io.debezium.time.ZonedTimestamp",
         "2026-06-19T14:30:00+00:00"),
        ("2026-06-19T16:30:00.123456789+02:00", "string", "io.debezium.time.ZonedTimestamp",
         "2026-06-19T14:30:00.123456+00:00"),
    ],
)  # fmt: skip
def test_a_temporal_column_becomes_the_cdc_text_form(
    value: Any, schema_type: str, name: str, text: str
) -> None:
    assert column(value, schema_type, name) == text


def test_a_column_without_a_semantic_type_passes_through() -> None:
    assert column(20623, "int32", None) == 20623


def test_a_null_temporal_column_stays_null() -> None:
    assert column(None, "int32", "io.debezium.time.Date") is None


def test_without_a_schema_temporal_numbers_pass_through() -> None:
    bare = envelope([], {"v": 20623})["payload"]
    change = from_debezium(bare, database="wedsync", contract=CONTRACT, received_ms=0,
                           request_id="r").change  # fmt: skip
    assert change["after"]["v"] == 20623


def test_the_before_image_is_converted_by_its_own_schema() -> None:
    field = {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "v"}
    doc = envelope([field], {"v": 20623})
    doc["payload"] |= {"op": "u", "before": {"id": 1, "v": 20616}}
    change = from_debezium(doc, database="wedsync", contract=CONTRACT, received_ms=0,
                           request_id="r").change  # fmt: skip
    assert change["before"]["v"] == "2026-06-12"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("20623", "io.debezium.time.Date"),
        (True, "io.debezium.time.Date"),
        (10**12, "io.debezium.time.Date"),
        (90_000_000_000, "io.debezium.time.MicroTime"),
        (10**30, "io.debezium.time.MicroTimestamp"),
        ("yesterday", "io.debezium.time.ZonedTimestamp"),
        ("2026-06-19T14:30:00", "io.debezium.time.ZonedTimestamp"),
        (1_781_879_400_000, "io.debezium.time.ZonedTimestamp"),
        ("14:30:00", "io.debezium.time.ZonedTime"),
    ],
)
def test_a_value_that_is_not_of_its_temporal_type_is_refused_naming_the_column(
    value: Any, name: str
) -> None:
    with pytest.raises(ConversionError, match=r"after\.v"):
        column(value, "int64", name)
