"""Supabase and Debezium JSON change payloads -> our ChangeEvent (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from connectors.sources.webhooks.convert import (
    ConversionError,
    from_debezium,
    from_supabase,
)
from streams.codec import TopicCodecs
from streams.topics import INGEST_CDC, change_key

RECEIVED = 1_790_000_000_123


def supabase(document: Any, **keys: tuple[str, ...]) -> Any:
    return from_supabase(document, database="wedsync", primary_keys=keys, received_ms=RECEIVED)


def debezium(document: Any, **keys: tuple[str, ...]) -> Any:
    return from_debezium(document, database="wedsync", primary_keys=keys, received_ms=RECEIVED)


UPDATE = {
    "type": "UPDATE",
    "table": "wedding_details",
    "schema": "public",
    "record": {"id": "w-1", "wedding_date": "2027-06-19", "guests": 120},
    "old_record": {"id": "w-1", "wedding_date": "2027-06-12", "guests": 120},
}


def test_supabase_update_maps_to_op_u_with_before_and_after() -> None:
    change = supabase(UPDATE)
    assert (change["op"], change["before"]["wedding_date"], change["after"]["wedding_date"]) == (
        "u", "2027-06-12", "2027-06-19",
    )  # fmt: skip


def test_supabase_insert_has_no_before() -> None:
    change = supabase({**UPDATE, "type": "INSERT", "old_record": None})
    assert (change["op"], change["before"]) == ("c", None)


def test_supabase_delete_keeps_the_old_record_as_before() -> None:
    change = supabase({**UPDATE, "type": "DELETE", "record": None})
    assert (change["op"], change["after"], change["before"]["id"]) == ("d", None, "w-1")


def test_supabase_source_names_the_connector_and_table() -> None:
    source = supabase(UPDATE)["source"]
    assert (source["connector"], source["db"], source["schema"], source["table"]) == (
        "supabase-webhook", "wedsync", "public", "wedding_details",
    )  # fmt: skip


def test_supabase_without_commit_time_uses_the_receive_time() -> None:
    assert supabase(UPDATE)["source_ts_ms"] == RECEIVED


def test_supabase_commit_timestamp_becomes_source_ts() -> None:
    change = supabase({**UPDATE, "commit_timestamp": "2026-01-02T03:04:05.678Z"})
    assert change["source_ts_ms"] == 1767323045678


def test_nested_json_columns_become_json_text() -> None:
    doc = {**UPDATE, "record": {"id": "s-1", "prefs": {"realtime_channels": ["email"]}}}
    assert supabase(doc)["after"]["prefs"] == '{"realtime_channels":["email"]}'


def test_integers_beyond_long_become_text() -> None:
    doc = {**UPDATE, "record": {"id": 2**70}}
    assert supabase(doc)["after"]["id"] == str(2**70)


def test_same_payload_gives_the_same_event_id() -> None:
    assert supabase(UPDATE)["event_id"] == supabase(dict(UPDATE))["event_id"]


def test_different_payloads_give_different_event_ids() -> None:
    other = {**UPDATE, "record": {**UPDATE["record"], "guests": 121}}  # type: ignore[dict-item]
    assert supabase(UPDATE)["event_id"] != supabase(other)["event_id"]


def test_supabase_rejects_an_unknown_type() -> None:
    with pytest.raises(ConversionError, match="INSERT, UPDATE or DELETE"):
        supabase({**UPDATE, "type": "TRUNCATE"})


def test_supabase_rejects_a_missing_table() -> None:
    with pytest.raises(ConversionError, match="table"):
        supabase({k: v for k, v in UPDATE.items() if k != "table"})


def test_supabase_rejects_a_row_without_its_primary_key() -> None:
    with pytest.raises(ConversionError, match="primary-key"):
        supabase(UPDATE, wedding_details=("wedding_id",))


def test_configured_composite_primary_key_shapes_the_kafka_key() -> None:
    doc = {**UPDATE, "table": "wedding_vendors", "record": {"wedding_id": "w", "vendor_id": "v"}}
    change = supabase(doc, wedding_vendors=("wedding_id", "vendor_id"))
    assert change_key(change) == b"wedding_vendors:w,v"


DEBEZIUM = {
    "before": None,
    "after": {"id": 7, "form_id": "f-1", "answered": True},
    "source": {
        "connector": "postgresql",
        "db": "platform",
        "schema": "public",
        "table": "form_responses",
        "lsn": 24023128,
        "txId": 555,
        "ts_ms": 1_789_999_999_000,
        "snapshot": "false",
    },
    "op": "c",
    "ts_ms": 1_790_000_000_000,
}


def test_debezium_insert_keeps_lsn_tx_and_commit_time() -> None:
    change = debezium(DEBEZIUM)
    source = change["source"]
    assert (change["op"], source["lsn"], source["tx_id"], change["source_ts_ms"]) == (
        "c", 24023128, 555, 1_789_999_999_000,
    )  # fmt: skip


def test_debezium_uses_the_envelope_db_name() -> None:
    assert debezium(DEBEZIUM)["source"]["db"] == "platform"


def test_debezium_payload_wrapper_is_unwrapped() -> None:
    wrapped = {"schema": {"type": "struct"}, "payload": DEBEZIUM}
    assert debezium(wrapped)["after"] == DEBEZIUM["after"]


def test_debezium_snapshot_read_is_marked_snapshot() -> None:
    doc = {**DEBEZIUM, "op": "r", "source": {**DEBEZIUM["source"], "snapshot": "true"}}  # type: ignore[dict-item]
    change = debezium(doc)
    assert (change["op"], change["source"]["snapshot"]) == ("r", True)


def test_debezium_delete_has_no_after() -> None:
    doc = {**DEBEZIUM, "op": "d", "before": DEBEZIUM["after"], "after": None}
    change = debezium(doc)
    assert (change["after"], change_key(change)) == (None, b"form_responses:7")


def test_debezium_rejects_a_truncate_op() -> None:
    with pytest.raises(ConversionError, match="op"):
        debezium({**DEBEZIUM, "op": "t"})


def test_debezium_rejects_a_missing_source_block() -> None:
    with pytest.raises(ConversionError, match="source"):
        debezium({k: v for k, v in DEBEZIUM.items() if k != "source"})


@pytest.mark.parametrize("document", [UPDATE, DEBEZIUM])
def test_converted_events_encode_with_the_cdc_codec(codecs: TopicCodecs, document: Any) -> None:
    convert = supabase if "type" in document else debezium
    codec = codecs[INGEST_CDC]
    assert codec.decode(codec.encode(dict(convert(document)))) == convert(document)
