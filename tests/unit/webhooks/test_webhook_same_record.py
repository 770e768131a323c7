"""The same row change gives the same change-event record whichever path it took: the
PostgreSQL CDC source (pgoutput text decoded by `ChangeDecoder`, the source contract applied)
or `POST /changes/<source>` (a Supabase database webhook, a Debezium envelope with its schema).

The PostgreSQL side is the server's text output of each value (session TimeZone=UTC); the
HTTP side is what Supabase's `to_jsonb(NEW)` and Debezium's JsonConverter send for the same
values, following their documented shapes."""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from typing import Any

from connectors.sources.postgres_cdc.decode import ChangeDecoder, TableRules
from connectors.sources.webhooks.convert import from_debezium, from_supabase
from streams.logic.contract import Contract
from streams.topics import change_key

from tests.unit.cdc import pgwire

UUID, TEXT, INT4, BOOL, NUMERIC, JSONB, TEXT_ARRAY, INT4_ARRAY = (
    2950, 25, 23, 16, 1700, 3802, 1009, 1007,
)  # fmt: skip
DATE, TIME, TIMETZ, TIMESTAMPTZ = 1082, 1083, 1266, 1184
CONTRACT = Contract.default()
ROW_ID = "3f2c1e9a-7b4d-4c8e-9a1f-2b3c4d5e6f70"
COUPLE = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
# core_fields carries its profile columns too: every real shape in one table
CORE = [("id", UUID, True), ("couple_id", UUID, False), ("profile", JSONB, False),
        ("tags", TEXT_ARRAY, False), ("seats", INT4_ARRAY, False),
        ("budget", NUMERIC, False), ("contact_time", TIMETZ, False),
        ("updated_at", TIMESTAMPTZ, False), ("wedding_day", DATE, False),
        ("call_at", TIME, False), ("vip", BOOL, False), ("guest_count", INT4, False)]  # fmt: skip
BIG = "1234567890123456789012345678901234567890.0123456789"
PG_TEXT = [ROW_ID, COUPLE, '{"a": 1, "bb": [1, 2.50], "note": "x\\ny"}', '{email,"in app","a,b"}',
           "{1,2,3}", BIG, "12:30:00.5+00", "2026-06-19 14:30:00.25+00", "2026-06-19",
           "14:30:00", "t", "120"]  # fmt: skip


def postgres(table: str, columns: list[tuple[str, int, bool]], *messages: bytes) -> Any:
    """Events of `messages` on the PostgreSQL path, with the default source contract."""
    decoder = ChangeDecoder("wedsync", TableRules(), {f"public.{table}": ("id",)},
                            lambda: 0, contract=CONTRACT)  # fmt: skip
    decoder.feed(pgwire.relation(16500, "public", table, columns), 100)
    decoder.feed(pgwire.begin(900, 1_790_000_000_000, 7), 200)
    events = [e for m in messages for e in decoder.feed(m, 300).events]
    decoder.feed(pgwire.commit(900, 908, 1_790_000_000_000), 908)
    return events


def same(pg: tuple[bytes, Any], http: Any) -> None:
    key, event = pg
    assert (change_key(http), http["op"], http["source"]["table"], http["primary_key"]) == (
        key, event["op"], event["source"]["table"], event["primary_key"],
    )  # fmt: skip
    assert http["before"] == event["before"]
    assert http["after"] == event["after"]


def body(document: dict[str, Any]) -> str:
    """JSON text with each Decimal written as the number it is (as to_jsonb writes it)."""
    text = json.dumps(document, default=lambda d: f"@@{d}@@")
    return re.sub(r'"@@([^@]+)@@"', r"\1", text)


def supabase(document: dict[str, Any]) -> Any:
    # the body as the gateway parses it: numbers exactly
    parsed = json.loads(body(document), parse_float=Decimal)
    return from_supabase(parsed, contract=CONTRACT, database="wedsync", received_ms=0,
                         request_id="r").change  # fmt: skip


def debezium(document: dict[str, Any]) -> Any:
    return from_debezium(document, contract=CONTRACT, database="wedsync", received_ms=0,
                         request_id="r").change  # fmt: skip


SUPABASE_RECORD = {
    "id": ROW_ID, "couple_id": COUPLE,
    "profile": {"note": "x\ny", "bb": [1, Decimal("2.50")], "a": 1},
    "tags": ["email", "in app", "a,b"], "seats": [1, 2, 3], "budget": Decimal(BIG),
    "contact_time": "12:30:00.5+00:00", "updated_at": "2026-06-19T16:30:00.25+02:00",
    "wedding_day": "2026-06-19", "call_at": "14:30:00", "vip": True, "guest_count": 120,
}  # fmt: skip


# Supabase Realtime's server payload names each column's type (pg_type.typname)
REALTIME_COLUMNS = [{"name": n, "type": t} for n, t in [
    ("id", "uuid"), ("couple_id", "uuid"), ("profile", "jsonb"), ("tags", "_text"),
    ("seats", "_int4"), ("budget", "numeric"), ("contact_time", "timetz"),
    ("updated_at", "timestamptz"), ("wedding_day", "date"), ("call_at", "time"),
    ("vip", "bool"), ("guest_count", "int4")]]  # fmt: skip


def test_a_supabase_insert_of_every_shape_is_the_postgres_record() -> None:
    [pg] = postgres("core_fields", CORE, pgwire.insert(16500, PG_TEXT))
    doc = {"type": "INSERT", "table": "core_fields", "schema": "public",
           "record": SUPABASE_RECORD, "old_record": None, "columns": REALTIME_COLUMNS}  # fmt: skip
    same(pg, supabase(doc))


def test_supabase_arrays_without_column_types_are_still_arrays() -> None:
    doc = {"type": "INSERT", "table": "core_fields", "schema": "public",
           "record": SUPABASE_RECORD, "old_record": None}  # fmt: skip
    after = supabase(doc)["after"]
    assert (after["tags"], after["seats"], after["budget"]) == (
        ["email", "in app", "a,b"], [1, 2, 3], BIG,
    )  # fmt: skip


def b64(unscaled: int) -> str:
    size = (unscaled.bit_length() + 8) // 8
    return base64.b64encode(unscaled.to_bytes(size, "big", signed=True)).decode()


def _field(name: str, kind: str, logical: str | None = None, **extra: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"type": kind, "optional": True, "field": name, **extra}
    if logical is not None:
        field |= {"name": logical, "version": 1}
    return field


CORE_FIELDS = [
    _field("id", "string", "io.debezium.data.Uuid"),
    _field("couple_id", "string", "io.debezium.data.Uuid"),
    _field("profile", "string", "io.debezium.data.Json"),
    _field("tags", "array", items={"type": "string", "optional": True}),
    _field("seats", "array", items={"type": "int32", "optional": True}),
    _field("budget", "struct", "io.debezium.data.VariableScaleDecimal",
           fields=[{"type": "int32", "optional": False, "field": "scale"},
                   {"type": "bytes", "optional": False, "field": "value"}]),
    _field("contact_time", "string", "io.debezium.time.ZonedTime"),
    _field("updated_at", "string", "io.debezium.time.ZonedTimestamp"),
    _field("wedding_day", "int32", "io.debezium.time.Date"),
    _field("call_at", "int64", "io.debezium.time.MicroTime"),
    _field("vip", "boolean"),
    _field("guest_count", "int32"),
]  # fmt: skip
DEBEZIUM_ROW = {
    "id": ROW_ID, "couple_id": COUPLE, "profile": '{"a": 1, "bb": [1, 2.50], "note": "x\\ny"}',
    "tags": ["email", "in app", "a,b"], "seats": [1, 2, 3],
    "budget": {"scale": 10, "value": b64(int(BIG.replace(".", "")))},
    "contact_time": "12:30:00.5Z", "updated_at": "2026-06-19T14:30:00.25Z",
    "wedding_day": 20623, "call_at": 52_200_000_000, "vip": True, "guest_count": 120,
}  # fmt: skip


def envelope(table: str, fields: list[dict[str, Any]], op: str, before: Any, after: Any) -> Any:
    """A Debezium PostgreSQL connector change event as the JsonConverter writes it with
    schemas.enable=true: {schema, payload{before, after, source, op, ts_ms}}."""
    row = {"type": "struct", "optional": True, "name": f"pg.public.{table}.Value",
           "fields": fields}  # fmt: skip
    source = {"type": "struct", "optional": False, "field": "source",
              "name": "io.debezium.connector.postgresql.Source",
              "fields": [{"type": "string", "optional": False, "field": "table"}]}  # fmt: skip
    return {
        "schema": {"type": "struct", "optional": False, "name": f"pg.public.{table}.Envelope",
                   "fields": [{**row, "field": "before"}, {**row, "field": "after"}, source,
                              {"type": "string", "optional": False, "field": "op"},
                              {"type": "int64", "optional": True, "field": "ts_ms"}]},
        "payload": {"before": before, "after": after, "op": op,
                    "source": {"version": "2.7.0.Final", "connector": "postgresql",
                               "name": "pg", "db": "wedsync", "schema": "public",
                               "table": table, "lsn": 300, "txId": 7,
                               "ts_ms": 1_790_000_000_000, "snapshot": "false"},
                    "ts_ms": 1_790_000_000_100},
    }  # fmt: skip


def test_a_debezium_insert_of_every_shape_is_the_postgres_record() -> None:
    [pg] = postgres("core_fields", CORE, pgwire.insert(16500, PG_TEXT))
    same(pg, debezium(envelope("core_fields", CORE_FIELDS, "c", None, DEBEZIUM_ROW)))


JOURNEY = [("id", UUID, True), ("supplier_id", UUID, False), ("couple_id", UUID, False),
           ("client_name", TEXT, False), ("milestone_name", TEXT, False),
           ("completion_percentage", NUMERIC, False),
           ("completed_at", TIMESTAMPTZ, False)]  # fmt: skip
JOURNEY_OLD = [ROW_ID, COUPLE, COUPLE, "A & B", "Menu", "4.99", None]
JOURNEY_NEW = [ROW_ID, COUPLE, COUPLE, "A & B", "Menu", "60.00", "2026-06-19 14:30:00+00"]


def journey(values: list[Any]) -> dict[str, Any]:
    return dict(zip([c[0] for c in JOURNEY], values, strict=True))


def test_a_supabase_update_of_numeric_5_2_keeps_its_scale() -> None:
    [pg] = postgres("journey_progress", JOURNEY, pgwire.update(16500, JOURNEY_NEW, JOURNEY_OLD))
    old = journey([*JOURNEY_OLD[:5], Decimal("4.99"), None])
    new = journey([*JOURNEY_NEW[:5], Decimal("60.0"), "2026-06-19T14:30:00+00:00"])
    doc = {"type": "UPDATE", "table": "journey_progress", "schema": "public",
           "record": new, "old_record": old}  # fmt: skip
    same(pg, supabase(doc))


def test_a_debezium_update_of_decimal_bytes_is_the_postgres_record() -> None:
    [pg] = postgres("journey_progress", JOURNEY, pgwire.update(16500, JOURNEY_NEW, JOURNEY_OLD))
    decimal = _field("completion_percentage", "bytes", "org.apache.kafka.connect.data.Decimal",
                     parameters={"scale": "2", "connect.decimal.precision": "5"})  # fmt: skip
    fields = [_field(n, "string") for n, *_ in JOURNEY[:5]]
    fields += [decimal, _field("completed_at", "string", "io.debezium.time.ZonedTimestamp")]
    old = journey([*JOURNEY_OLD[:5], "AfM=", None])  # 4.99
    new = journey([*JOURNEY_NEW[:5], "F3A=", "2026-06-19T14:30:00Z"])  # 60.00
    same(pg, debezium(envelope("journey_progress", fields, "u", old, new)))


def test_a_debezium_unavailable_value_is_the_unchanged_toast_of_the_postgres_path() -> None:
    old = list(PG_TEXT)
    new = [*PG_TEXT[:2], pgwire.UNCHANGED_TOAST, *PG_TEXT[3:]]
    new[-1] = "121"
    [pg] = postgres("core_fields", CORE, pgwire.update(16500, new, old))
    after = {**DEBEZIUM_ROW, "profile": "__debezium_unavailable_value", "guest_count": 121}
    same(pg, debezium(envelope("core_fields", CORE_FIELDS, "u", DEBEZIUM_ROW, after)))


WEBHOOK_ENDPOINTS = [("id", UUID, True), ("supplier_id", UUID, False),
                     ("endpoint_url", TEXT, False), ("secret_key", TEXT, False),
                     ("subscribed_events", TEXT_ARRAY, False),
                     ("is_active", BOOL, False)]  # fmt: skip
ENDPOINT = [ROW_ID, COUPLE, "https://hooks.example/x", "whsec-do-not-leak",
            "{form_responses.insert}", "t"]  # fmt: skip


def test_a_supabase_delete_of_a_secret_bearing_row_is_the_postgres_record() -> None:
    [pg] = postgres("webhook_endpoints", WEBHOOK_ENDPOINTS, pgwire.delete(16500, ENDPOINT, "O"))
    old = dict(zip([c[0] for c in WEBHOOK_ENDPOINTS], ENDPOINT, strict=True))
    old |= {"subscribed_events": ["form_responses.insert"], "is_active": True}
    doc = {"type": "DELETE", "table": "webhook_endpoints", "schema": "public",
           "record": None, "old_record": old}  # fmt: skip
    same(pg, supabase(doc))
