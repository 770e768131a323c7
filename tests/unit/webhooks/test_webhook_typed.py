"""JSON column values of a known type -> what the PostgreSQL CDC source emits for the same
value (`typed.py`), and Debezium's encodings undone (`debezium.py`), hostile input included."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from connectors.sources.webhooks.convert import ConversionError, from_debezium, from_supabase
from connectors.sources.webhooks.typed import decode, pg_type
from connectors.sources.webhooks.verify import Rejected, parse_json
from streams.logic.contract import Contract

CONTRACT = Contract.default()


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("numeric", Decimal("1234567890123456789012345678901234567890.0123456789"),
         "1234567890123456789012345678901234567890.0123456789"),
        ("numeric(5,2)", Decimal("40.5"), "40.50"),
        ("numeric(5,2)", 40, "40.00"),
        ("numeric(5,2)", "40.5", "40.50"),
        ("numeric", Decimal("1E+3"), "1000"),
        ("numeric(38,10)", Decimal("-0.1"), "-0.1000000000"),
        ("timestamptz", "2026-06-19T16:30:00.25+02:00", "2026-06-19T14:30:00.250000+00:00"),
        ("timestamp with time zone", "2026-06-19T14:30:00Z", "2026-06-19T14:30:00+00:00"),
        ("timestamp", "2026-06-19T14:30:00.500", "2026-06-19 14:30:00.5"),
        ("timetz", "14:30:00+02:00", "14:30:00+02"),
        ("timetz", "14:30:00.123-05:30", "14:30:00.123-05:30"),
        ("time", "24:00:00", "24:00:00"),
        ("uuid", "3F2C1E9A7B4D4C8E9A1F2B3C4D5E6F70", "3f2c1e9a-7b4d-4c8e-9a1f-2b3c4d5e6f70"),
        ("jsonb", {"bb": [Decimal("1.50")], "a": None}, '{"a": null, "bb": [1.50]}'),
        ("jsonb", "just text", '"just text"'),
        ("text[]", ["a", None, "b,c"], ["a", None, "b,c"]),
        ("_int4", [1, 2], [1, 2]),
        ("numeric[]", [Decimal("1.0")], ["1.0"]),
        ("uuid[]", ["3F2C1E9A-7B4D-4C8E-9A1F-2B3C4D5E6F70"],
         ["3f2c1e9a-7b4d-4c8e-9a1f-2b3c4d5e6f70"]),
        ("boolean", False, False),
        ("bigint", 2**62, 2**62),
        ("double precision", Decimal("1.5"), 1.5),
        ("interval", "1 day", "1 day"),  # a type not known: as it comes, as the CDC source
        ("character varying(20)", "x", "x"),
        ("timestamptz", "infinity", "infinity"),  # as PostgreSQL prints it, kept
        ("date", "-infinity", "-infinity"),
        ("timestamp(3) with time zone", "2026-06-19T14:30:00.123Z",
         "2026-06-19T14:30:00.123000+00:00"),
        ("numeric(10)", Decimal("7"), "7"),
        ("time(0) with time zone", "09:00:00+05:30", "09:00:00+05:30"),
    ],
)  # fmt: skip
def test_a_value_becomes_what_the_postgres_path_emits(
    type_name: str, value: Any, expected: Any
) -> None:
    assert decode(pg_type(type_name), value) == expected


@pytest.mark.parametrize(
    ("type_name", "value", "reason"),
    [
        ("numeric(5,2)", Decimal("40.505"), "more decimals than numeric.5,2."),
        ("numeric(5,2)", Decimal("1234.5"), "more digits than numeric.5,2."),
        ("numeric", "forty", "not a number"),
        ("numeric", 1.5, "exact number"),  # a float has already lost digits
        ("timestamptz", "2026-06-19T14:30:00", "needs its offset"),
        ("timetz", "14:30:00", "needs its offset"),
        ("time", "14:30:00+02:00", "has no offset"),
        ("uuid", "not-a-uuid", "badly formed"),
        ("integer", "12", "expected an integer"),
        ("integer", 1.0, "expected an integer"),
        ("boolean", "t", "true or false"),
        ("text[]", "{a,b}", "JSON array"),
        ("int4[]", [[1], [2]], "multi-dimensional"),
        ("date", 20623, "as a string"),
    ],
)
def test_a_value_not_of_its_type_is_refused(type_name: str, value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode(pg_type(type_name), value)


def test_exact_parsing_keeps_every_digit_and_the_scale() -> None:
    body = b'{"a": 1234567890123456789012345678901234567890.0123456789, "b": 40.50}'
    assert parse_json(body, exact_numbers=True) == {
        "a": Decimal("1234567890123456789012345678901234567890.0123456789"),
        "b": Decimal("40.50"),
    }
    assert str(parse_json(body, exact_numbers=True)["b"]) == "40.50"


def test_exact_parsing_refuses_nan() -> None:
    with pytest.raises(Rejected, match="NaN"):
        parse_json(b'{"a": NaN}', exact_numbers=True)


def test_a_supabase_numeric_5_2_without_trailing_zero_gets_the_declared_scale() -> None:
    doc = {"type": "INSERT", "table": "journey_progress", "schema": "public", "old_record": None,
           "record": {"id": "j-1", "completion_percentage": Decimal("40.5")}}  # fmt: skip
    change = from_supabase(doc, contract=CONTRACT, database="w", received_ms=0, request_id="r")
    assert change.change["after"]["completion_percentage"] == "40.50"  # type: ignore[index]


def test_a_supabase_value_not_of_its_declared_type_is_refused_naming_the_column() -> None:
    doc = {"type": "INSERT", "table": "wedding_details", "schema": "public", "old_record": None,
           "record": {"id": "w-1", "wedding_date": "next june"}}  # fmt: skip
    with pytest.raises(ConversionError, match=r"record\.wedding_date is not a date"):
        from_supabase(doc, contract=CONTRACT, database="w", received_ms=0, request_id="r")


# ---- Debezium ---------------------------------------------------------------------------
def envelope(field: dict[str, Any], value: Any, before: Any = None, op: str = "c") -> Any:
    columns = [{"type": "string", "optional": False, "field": "id"},
               {"optional": True, "field": "completion_percentage", **field}]  # fmt: skip
    row = {"type": "struct", "optional": True, "fields": columns}
    return {
        "schema": {"type": "struct", "fields": [{**row, "field": "before"},
                                                {**row, "field": "after"}]},
        "payload": {"op": op, "before": before, "ts_ms": 1,
                    "after": {"id": "j-1", "completion_percentage": value},
                    "source": {"db": "p", "schema": "public", "table": "journey_progress",
                               "lsn": 5, "txId": 1, "ts_ms": 1}},
    }  # fmt: skip


def debezium(document: Any) -> Any:
    return from_debezium(document, contract=CONTRACT, database="w", received_ms=0,
                         request_id="r").change  # fmt: skip


DECIMAL = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
           "parameters": {"scale": "2", "connect.decimal.precision": "5"}}  # fmt: skip


@pytest.mark.parametrize(("encoded", "text"), [("AfM=", "4.99"), ("F3A=", "60.00"),
                                               ("/gw=", "-5.00"), ("AA==", "0.00")])  # fmt: skip
def test_a_debezium_decimal_is_its_exact_number(encoded: str, text: str) -> None:
    assert debezium(envelope(DECIMAL, encoded))["after"]["completion_percentage"] == text


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        (DECIMAL, "not base64!", "is not base64"),
        (DECIMAL, "", "empty decimal bytes"),
        (DECIMAL, 499, "expected base64 text"),
        ({**DECIMAL, "parameters": {"scale": "two"}}, "AfM=", "valid parameters.scale"),
        ({**DECIMAL, "parameters": {}}, "AfM=", "valid parameters.scale"),
        ({**DECIMAL, "parameters": {"scale": "3", "connect.decimal.precision": "5"}}, "AfM=",
         None),  # 0.499 in a numeric(5,2) column: the payload's scale is used
        ({"type": "string", "name": "io.debezium.data.Geometry"}, "x", "logical type"),
        ({"type": "int64", "name": "io.debezium.time.MicroDuration"}, 1, "logical type"),
        ({"type": "map"}, {}, "unknown field type"),
    ],
)  # fmt: skip
def test_hostile_debezium_values_are_refused_with_the_reason(
    field: dict[str, Any], value: Any, reason: str | None
) -> None:
    if reason is None:
        assert debezium(envelope(field, value))["after"]["completion_percentage"] == "0.499"
        return
    with pytest.raises(ConversionError, match=reason):
        debezium(envelope(field, value))


def test_a_debezium_decimal_without_its_schema_is_refused_saying_what_to_send() -> None:
    bare = envelope(DECIMAL, "AfM=")["payload"]
    with pytest.raises(ConversionError, match=r"not a numeric.*schemas\.enable=true"):
        debezium(bare)


def test_a_debezium_decimal_in_string_mode_without_a_schema_is_exact() -> None:
    bare = envelope(DECIMAL, "4.9")["payload"]
    assert debezium(bare)["after"]["completion_percentage"] == "4.90"


def test_the_unavailable_placeholder_leaves_the_column_unchanged() -> None:
    field = {"type": "string"}
    change = debezium(envelope(field, "__debezium_unavailable_value", op="u"))
    assert "completion_percentage" not in change["after"]


def test_a_base64_placeholder_of_a_bytes_column_leaves_it_unchanged() -> None:
    placeholder = base64.b64encode(b"__debezium_unavailable_value").decode()
    change = debezium(envelope(DECIMAL, placeholder, op="u"))
    assert "completion_percentage" not in change["after"]


def test_the_placeholder_takes_the_before_value_when_the_before_image_has_it() -> None:
    before = {"id": "j-1", "completion_percentage": "AfM="}
    change = debezium(envelope(DECIMAL, "__debezium_unavailable_value", before, op="u"))
    assert change["after"]["completion_percentage"] == "4.99"


def test_an_array_placeholder_leaves_the_column_unchanged() -> None:
    field = {"type": "array", "items": {"type": "string"}}
    doc = envelope(field, ["__debezium_unavailable_value"], op="u")
    schema_row = doc["schema"]["fields"][1]["fields"]
    schema_row[1]["field"] = "completion_percentage"
    assert "completion_percentage" not in debezium(doc)["after"]


def test_debezium_json_columns_are_jsonb_text() -> None:
    doc = envelope({"type": "string", "name": "io.debezium.data.Json"}, '{"b":1, "a":2.50}')
    doc["payload"]["source"]["table"] = "suppliers"
    doc["payload"]["after"] = {"id": "s-1", "notification_preferences": '{"b":1, "a":2.50}'}
    for image in doc["schema"]["fields"]:
        image["fields"][1]["field"] = "notification_preferences"
    assert debezium(doc)["after"]["notification_preferences"] == '{"a": 2.50, "b": 1}'


def test_bad_debezium_json_text_is_refused() -> None:
    doc = envelope({"type": "string", "name": "io.debezium.data.Json"}, "{not json")
    doc["payload"]["source"]["table"] = "suppliers"
    doc["payload"]["after"] = {"id": "s-1", "notification_preferences": "{not json"}
    for image in doc["schema"]["fields"]:
        image["fields"][1]["field"] = "notification_preferences"
    with pytest.raises(ConversionError, match="not JSON"):
        debezium(doc)


def test_debezium_jsonb_without_a_schema_is_read_as_the_json_text_it_is() -> None:
    doc = {"op": "c", "before": None, "ts_ms": 1,
           "after": {"id": "s-1", "notification_preferences": '{"b":1, "a":2.50}'},
           "source": {"db": "p", "schema": "public", "table": "suppliers", "ts_ms": 1}}  # fmt: skip
    after = debezium(doc)["after"]
    assert after["notification_preferences"] == '{"a": 2.50, "b": 1}'


def test_a_debezium_bytea_is_postgres_hex_text() -> None:
    doc = envelope({"type": "bytes"}, "AQL/")
    doc["payload"]["source"]["table"] = "core_fields"  # whose profile columns are carried
    assert debezium(doc)["after"]["completion_percentage"] == "\\x0102ff"
