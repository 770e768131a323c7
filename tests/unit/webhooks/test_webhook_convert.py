"""Supabase and Debezium JSON change payloads -> our ChangeEvent (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from connectors.sources.webhooks.convert import (
    ConversionError,
    Converted,
    from_debezium,
    from_supabase,
)
from streams.kafka.codec import TopicCodecs
from streams.logic.contract import Contract
from streams.topics import INGEST_CDC, change_key

RECEIVED = 1_790_000_000_123
CONTRACT = Contract.default()


def supabase_converted(
    document: Any, request_id: str = "r-1", delivery_id: str | None = None
) -> Converted:
    return from_supabase(document, contract=CONTRACT, database="wedsync", received_ms=RECEIVED,
                         request_id=request_id, delivery_id=delivery_id)  # fmt: skip


def debezium_converted(
    document: Any, request_id: str = "r-1", delivery_id: str | None = None
) -> Converted:
    return from_debezium(document, contract=CONTRACT, database="wedsync", received_ms=RECEIVED,
                         request_id=request_id, delivery_id=delivery_id)  # fmt: skip


def supabase(document: Any) -> Any:
    return supabase_converted(document).change


def debezium(document: Any) -> Any:
    return debezium_converted(document).change


UPDATE = {
    "type": "UPDATE",
    "table": "wedding_details",
    "schema": "public",
    "record": {"id": "w-1", "wedding_date": "2027-06-19", "guest_count": 120},
    "old_record": {"id": "w-1", "wedding_date": "2027-06-12", "guest_count": 120},
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


def test_jsonb_columns_become_jsonb_text() -> None:
    prefs = {"realtime_channels": ["email"], "sms": True}
    doc = {
        **UPDATE,
        "table": "suppliers",
        "record": {"id": "s-1", "notification_preferences": prefs},
    }
    after = supabase(doc)["after"]
    assert after["notification_preferences"] == '{"sms": true, "realtime_channels": ["email"]}'


def test_integers_beyond_long_become_text() -> None:
    doc = {**UPDATE, "table": "core_fields", "record": {"id": 2**70}}
    assert supabase(doc)["after"]["id"] == str(2**70)


def test_supabase_rejects_an_unknown_type() -> None:
    with pytest.raises(ConversionError, match="INSERT, UPDATE or DELETE"):
        supabase({**UPDATE, "type": "TRUNCATE"})


def test_supabase_rejects_a_missing_table() -> None:
    with pytest.raises(ConversionError, match="table"):
        supabase({k: v for k, v in UPDATE.items() if k != "table"})


def test_supabase_rejects_a_row_without_its_primary_key() -> None:
    doc = {**UPDATE, "record": {"wedding_date": "2027-06-19"}}
    with pytest.raises(ConversionError, match=r"primary-key column.s. id"):
        supabase(doc)


DEBEZIUM = {
    "before": None,
    "after": {"id": 7, "form_name": "f-1", "question_count": 12},
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


@pytest.mark.parametrize("op", [{"c": 1}, ["c"], None])
def test_debezium_rejects_an_op_that_is_not_a_string(op: Any) -> None:
    with pytest.raises(ConversionError, match="op"):
        debezium({**DEBEZIUM, "op": op})


def test_supabase_rejects_a_type_that_is_not_a_string() -> None:
    with pytest.raises(ConversionError, match="type"):
        supabase({**UPDATE, "type": {"INSERT": 1}})


def test_debezium_rejects_a_missing_source_block() -> None:
    with pytest.raises(ConversionError, match="source"):
        debezium({k: v for k, v in DEBEZIUM.items() if k != "source"})


@pytest.mark.parametrize("document", [UPDATE, DEBEZIUM])
def test_converted_events_encode_with_the_cdc_codec(codecs: TopicCodecs, document: Any) -> None:
    convert = supabase if "type" in document else debezium
    codec, change = codecs[INGEST_CDC], convert(document)
    assert codec.decode(codec.encode(dict(change))) == change


# ---- identity: what duplicates share, never a payload hash ---------------------------------
def test_a_supabase_payload_sent_twice_gets_two_event_ids() -> None:
    first, again = supabase_converted(UPDATE, "r-1"), supabase_converted(UPDATE, "r-2")
    assert first.change["event_id"] != again.change["event_id"]


def test_a_supabase_payload_without_a_delivery_id_has_no_identity() -> None:
    assert supabase_converted(UPDATE).identity is None


def test_a_delivery_id_is_the_identity() -> None:
    assert supabase_converted(UPDATE, delivery_id="hook:d-1").identity == "delivery:hook:d-1"


def test_the_same_delivery_id_gives_the_same_event_id() -> None:
    first = supabase_converted(UPDATE, "r-1", delivery_id="hook:d-1")
    again = supabase_converted(UPDATE, "r-2", delivery_id="hook:d-1")
    assert first.change["event_id"] == again.change["event_id"]


def test_debezium_identity_is_the_source_position_table_and_key() -> None:
    assert debezium_converted(DEBEZIUM).identity == (
        "position:platform:public.form_responses:7@24023128/555"
    )


def test_debezium_resent_at_its_position_gets_the_same_event_id() -> None:
    first, again = debezium_converted(DEBEZIUM, "r-1"), debezium_converted(DEBEZIUM, "r-2")
    assert first.change["event_id"] == again.change["event_id"]


def test_debezium_same_row_values_at_a_new_position_get_a_new_event_id() -> None:
    moved = {**DEBEZIUM, "source": {**DEBEZIUM["source"], "lsn": 24023200}}  # type: ignore[dict-item]
    assert debezium(moved)["event_id"] != debezium(DEBEZIUM)["event_id"]


def test_debezium_snapshot_read_and_change_at_one_position_differ() -> None:
    read = {**DEBEZIUM, "op": "r"}
    assert debezium(read)["event_id"] != debezium(DEBEZIUM)["event_id"]


def test_debezium_without_an_lsn_has_no_identity() -> None:
    bare = {**DEBEZIUM, "source": {**DEBEZIUM["source"], "lsn": None}}  # type: ignore[dict-item]
    assert debezium_converted(bare).identity is None


def test_debezium_a_delivery_id_wins_over_the_position() -> None:
    assert debezium_converted(DEBEZIUM, delivery_id="dbz:9").identity == "delivery:dbz:9"
