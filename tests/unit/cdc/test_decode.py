"""The pgoutput decoder: hand-built protocol messages in, change events out."""

from __future__ import annotations

from typing import Any

import pytest
from connectors.sources.postgres_cdc.decode import ChangeDecoder, TableRules, convert
from connectors.sources.postgres_cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Relation,
    Truncate,
    parse_message,
)
from streams.errors import DecodeError
from streams.kafka.codec import TopicCodecs
from streams.topics import INGEST_CDC

from tests.unit.cdc import pgwire

COMMIT_MS = 1_790_000_000_123
NOW_MS = 1_790_000_000_500
TEXT, INT4, INT8, BOOL, FLOAT8, NUMERIC, JSONB, TEXT_ARRAY, DATE = (
    25, 23, 20, 16, 701, 1700, 3802, 1009, 1082,
)  # fmt: skip

WEDDINGS = pgwire.relation(
    16400, "public", "wedding_details",
    [("id", TEXT, True), ("wedding_date", DATE, False), ("guests", INT4, False)],
)  # fmt: skip


def decoder(rules: TableRules | None = None, **pks: tuple[str, ...]) -> ChangeDecoder:
    primary_keys = {f"public.{table}": cols for table, cols in pks.items()}
    return ChangeDecoder("wedsync", rules or TableRules(), primary_keys, lambda: NOW_MS)


def in_tx(dec: ChangeDecoder, *messages: bytes, xid: int = 777) -> list[tuple[bytes, dict]]:
    dec.feed(pgwire.begin(5000, COMMIT_MS, xid), 4000)
    events: list[tuple[bytes, dict]] = []
    for i, message in enumerate(messages):
        events += [(k, dict(e)) for k, e in dec.feed(message, 4000 + 8 * (i + 1)).events]
    dec.feed(pgwire.commit(5000, 5008, COMMIT_MS), 5008)
    return events


def test_begin_carries_final_lsn_commit_time_and_xid():
    assert parse_message(pgwire.begin(0x1_0000_0010, COMMIT_MS, 4242)) == Begin(
        0x1_0000_0010, COMMIT_MS, 4242
    )


def test_commit_carries_commit_and_end_lsn():
    assert parse_message(pgwire.commit(100, 180, COMMIT_MS)) == Commit(100, 180, COMMIT_MS)


def test_relation_lists_columns_with_type_and_key_flag():
    rel = parse_message(WEDDINGS)
    assert isinstance(rel, Relation)
    assert (rel.oid, rel.namespace, rel.name) == (16400, "public", "wedding_details")
    assert [(c.name, c.type_oid, c.is_key) for c in rel.columns] == [
        ("id", TEXT, True), ("wedding_date", DATE, False), ("guests", INT4, False),
    ]  # fmt: skip


def test_truncate_lists_relations_and_options():
    assert parse_message(pgwire.truncate([1, 2], cascade=True)) == Truncate((1, 2), True, False)


def test_unchanged_toast_value_is_marked():
    message = parse_message(pgwire.update(16400, ["w-1", pgwire.UNCHANGED_TOAST, "5"]))
    assert message.new[1] is UNCHANGED  # type: ignore[union-attr]


def test_unknown_message_type_is_a_decode_error():
    with pytest.raises(DecodeError, match="unknown pgoutput message type"):
        parse_message(b"Z\x00")


def test_truncated_message_is_a_decode_error():
    with pytest.raises(DecodeError, match="truncated"):
        parse_message(pgwire.begin(1, COMMIT_MS, 1)[:10])


def test_origin_message_is_ignored():
    dec = decoder()
    assert dec.feed(pgwire.origin(10, "upstream"), 10).events == []


@pytest.mark.parametrize(
    ("type_oid", "text", "value"),
    [
        (BOOL, "t", True), (BOOL, "f", False), (INT4, "42", 42), (INT8, "9007199254740993",
        9007199254740993), (FLOAT8, "4.5", 4.5), (NUMERIC, "12.50", "12.50"),
        (JSONB, '{"a": 1}', '{"a": 1}'), (TEXT_ARRAY, "{a,b}", ["a", "b"]),
        (DATE, "2027-06-12", "2027-06-12"),
    ],
)  # fmt: skip
def test_values_convert_by_type_oid(type_oid, text, value):
    assert convert(type_oid, text) == value


def test_insert_becomes_a_create_event_with_source_position():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((key, event),) = in_tx(dec, pgwire.insert(16400, ["w-1", "2027-06-12", "80"]))
    assert key == b"wedding_details:w-1"
    assert event["op"] == "c"
    assert event["before"] is None
    assert event["after"] == {"id": "w-1", "wedding_date": "2027-06-12", "guests": 80}
    assert event["primary_key"] == ["id"]
    assert event["event_id"] == "wedsync:4008:wedding_details:w-1"
    assert event["source"] == {
        "connector": "postgres", "db": "wedsync", "schema": "public",
        "table": "wedding_details", "lsn": 4008, "commit_lsn": 5000, "state_lsn": None,
        "tx_id": 777, "ts_ms": COMMIT_MS, "snapshot": False,
    }  # fmt: skip
    assert (event["ts_ms"], event["source_ts_ms"]) == (NOW_MS, COMMIT_MS)


def test_update_with_full_identity_has_before_and_after():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((_, event),) = in_tx(
        dec,
        pgwire.update(16400, ["w-1", "2027-06-19", "80"], old=["w-1", "2027-06-12", "80"]),
    )
    assert event["op"] == "u"
    assert event["before"]["wedding_date"] == "2027-06-12"
    assert event["after"]["wedding_date"] == "2027-06-19"


def test_update_without_old_tuple_has_no_before():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((_, event),) = in_tx(dec, pgwire.update(16400, ["w-1", "2027-06-19", "80"]))
    assert event["before"] is None


def test_delete_with_key_tuple_keeps_only_key_columns():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((key, event),) = in_tx(dec, pgwire.delete(16400, ["w-1", None, None], kind="K"))
    assert event["op"] == "d"
    assert event["before"] == {"id": "w-1"}
    assert event["after"] is None
    assert key == b"wedding_details:w-1"


def test_unchanged_toast_takes_the_old_value_when_known():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((_, event),) = in_tx(
        dec,
        pgwire.update(16400, ["w-1", pgwire.UNCHANGED_TOAST, "90"], ["w-1", "2027-06-12", "80"]),
    )
    assert event["after"] == {"id": "w-1", "wedding_date": "2027-06-12", "guests": 90}


def test_unchanged_toast_is_left_out_when_the_old_value_is_unknown():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((_, event),) = in_tx(dec, pgwire.update(16400, ["w-1", pgwire.UNCHANGED_TOAST, "90"]))
    assert event["after"] == {"id": "w-1", "guests": 90}


def test_null_values_stay_null():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    ((_, event),) = in_tx(dec, pgwire.insert(16400, ["w-1", None, None]))
    assert event["after"] == {"id": "w-1", "wedding_date": None, "guests": None}


def test_catalog_primary_key_wins_over_full_identity_key_flags():
    full = pgwire.relation(
        16500, "public", "vendors", [("org", TEXT, True), ("id", INT4, True), ("n", TEXT, True)]
    )
    dec = decoder(vendors=("org", "id"))
    dec.feed(full, 0)
    ((key, event),) = in_tx(dec, pgwire.insert(16500, ["acme", "7", "Snap"]))
    assert key == b"vendors:acme,7"
    assert event["primary_key"] == ["org", "id"]
    assert event["event_id"] == "wedsync:4008:vendors:acme,7"


def test_excluded_columns_are_dropped_from_both_images():
    rules = TableRules(excluded_columns={"public.wedding_details": frozenset({"guests"})})
    dec = decoder(rules)
    dec.feed(WEDDINGS, 0)
    ((_, event),) = in_tx(
        dec, pgwire.update(16400, ["w-1", "2027-06-19", "90"], old=["w-1", "2027-06-12", "80"])
    )
    assert "guests" not in event["before"]
    assert "guests" not in event["after"]


def test_tables_outside_the_filter_produce_nothing():
    dec = decoder(TableRules(tables=frozenset({"public.form_responses"})))
    dec.feed(WEDDINGS, 0)
    assert in_tx(dec, pgwire.insert(16400, ["w-1", "2027-06-12", "80"])) == []


def test_commit_step_reports_the_end_lsn():
    dec = decoder()
    dec.feed(pgwire.begin(5000, COMMIT_MS, 1), 4000)
    step = dec.feed(pgwire.commit(5000, 5008, COMMIT_MS), 5008)
    assert step.commit is not None and step.commit.end_lsn == 5008
    assert dec.tx is None


def test_truncate_produces_no_events_but_names_the_tables():
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    dec.feed(pgwire.begin(5000, COMMIT_MS, 1), 4000)
    step = dec.feed(pgwire.truncate([16400]), 4008)
    assert step.events == []
    assert step.truncated == ("public.wedding_details",)


def test_row_for_an_unknown_relation_is_a_decode_error():
    dec = decoder()
    dec.feed(pgwire.begin(5000, COMMIT_MS, 1), 4000)
    with pytest.raises(DecodeError, match="before its Relation"):
        dec.feed(pgwire.insert(99, ["x"]), 4008)


def test_every_decoded_event_encodes_with_the_cdc_schema(codecs: TopicCodecs):
    dec = decoder()
    dec.feed(WEDDINGS, 0)
    events = in_tx(
        dec,
        pgwire.insert(16400, ["w-1", "2027-06-12", "80"]),
        pgwire.update(16400, ["w-1", "2027-06-19", "80"], old=["w-1", "2027-06-12", "80"]),
        pgwire.delete(16400, ["w-1", None, None]),
    )
    codec = codecs[INGEST_CDC]
    for _, event in events:
        assert codec.decode(codec.encode(event)) == event


def _tx_events(*tables: str) -> list[Any]:
    from streams.dev.samples import change_event

    return [(b"k", change_event(t, "c", after={"id": str(i)}, lsn=100 + i))
            for i, t in enumerate(tables)]  # fmt: skip


def test_a_transaction_that_changes_state_waits_for_its_own_commit() -> None:
    from connectors.sources.postgres_cdc.decode import stamp_transaction

    events = _tx_events("wedding_details", "wedding_vendors")  # the move, then the link
    last = stamp_transaction(events, 5000, 4000, frozenset({"wedding_vendors"}))
    assert last == 5000
    assert [e["source"]["state_lsn"] for _, e in events] == [5000, 5000]


def test_a_transaction_without_state_changes_waits_for_the_last_state_change() -> None:
    from connectors.sources.postgres_cdc.decode import stamp_transaction

    events = _tx_events("form_responses")
    assert stamp_transaction(events, 5000, 4000, frozenset({"wedding_vendors"})) == 4000
    assert events[0][1]["source"]["state_lsn"] == 4000


def test_each_relation_says_its_carried_columns_types_under_contract_names() -> None:
    from streams.logic.contract import Contract, ContractMapping, TableMapping

    mapping = ContractMapping(tables={"wedding_vendors": TableMapping(
        columns={"vendor_id": "supplier_id"})})  # fmt: skip
    dec = ChangeDecoder("wedsync", TableRules(), {}, lambda: NOW_MS,
                        Contract.default().mapped(mapping))  # fmt: skip
    dec.feed(pgwire.relation(16500, "public", "wedding_vendors", [
        ("id", TEXT, True), ("wedding_id", TEXT, False), ("supplier_id", TEXT, False),
        ("vendor_type", TEXT, False), ("notes", TEXT, False),
    ]), 100)  # fmt: skip
    assert dec.column_types[("public", "wedding_vendors")] == {
        "id": TEXT, "wedding_id": TEXT, "vendor_id": TEXT, "vendor_type": TEXT,
    }  # fmt: skip


ENDPOINTS = pgwire.relation(16600, "public", "webhook_endpoints", [
    ("id", TEXT, True), ("supplier_id", TEXT, False), ("endpoint_url", TEXT, False),
    ("secret_key", TEXT, False), ("subscribed_events", TEXT_ARRAY, False),
    ("is_active", BOOL, False),
])  # fmt: skip


def test_a_row_the_event_cannot_hold_is_reported_with_its_column_and_never_its_secret() -> None:
    from streams.logic.contract import Contract

    dec = ChangeDecoder("wedsync", TableRules(), {"public.webhook_endpoints": ("id",)},
                        lambda: NOW_MS, Contract.default())  # fmt: skip
    dec.feed(ENDPOINTS, 100)
    dec.feed(pgwire.begin(5000, COMMIT_MS, 7), 4000)
    step = dec.feed(pgwire.insert(16600, ["e-1", "s-1", "https://h.example", "whsec_x",
                                          "{{a,b},{c,d}}", "t"]), 4008)  # fmt: skip
    assert (step.events, step.dead is not None) == ([], True)
    assert step.dead is not None
    assert (step.dead.key, step.dead.column, step.dead.table) == (
        b"webhook_endpoints:e-1", "subscribed_events", "public.webhook_endpoints",
    )  # fmt: skip
    assert b"whsec_x" not in step.dead.value()


def endpoints_decoder() -> ChangeDecoder:
    from streams.logic.contract import Contract

    dec = ChangeDecoder("wedsync", TableRules(), {"public.webhook_endpoints": ("id",)},
                        lambda: NOW_MS, Contract.default())  # fmt: skip
    dec.feed(ENDPOINTS, 100)
    return dec


def endpoint(row_id: str) -> bytes:
    return pgwire.insert(16600, [row_id, "s-1", "https://h.example", "whsec_x", "{a}", "t"])


def test_a_truncate_of_a_state_table_deletes_every_key_at_its_place_in_the_transaction() -> None:
    dec = endpoints_decoder()
    in_tx(dec, endpoint("e-1"))
    events = in_tx(dec, endpoint("e-2"), pgwire.truncate([16600]), endpoint("e-3"))
    assert [(k.decode(), e["op"], e["before"]) for k, e in events] == [
        ("webhook_endpoints:e-2", "c", None),
        ("webhook_endpoints:e-1", "d", {"id": "e-1"}),
        ("webhook_endpoints:e-2", "d", {"id": "e-2"}),
        ("webhook_endpoints:e-3", "c", None),
    ]


def test_a_deleted_row_is_not_deleted_again_by_a_truncate() -> None:
    dec = endpoints_decoder()
    in_tx(dec, endpoint("e-1"), endpoint("e-2"), pgwire.delete(16600, ["e-1", *[None] * 5]))
    events = in_tx(dec, pgwire.truncate([16600]))
    assert [k.decode() for k, _ in events] == ["webhook_endpoints:e-2"]


def test_a_truncate_of_an_event_table_deletes_nothing_and_is_reported() -> None:
    dec = endpoints_decoder()
    timestamptz = 1184
    dec.feed(pgwire.relation(16700, "public", "form_responses", [
        ("id", TEXT, True), ("supplier_id", TEXT, False), ("couple_id", TEXT, False),
        ("client_name", TEXT, False), ("form_name", TEXT, False),
        ("question_count", INT4, False), ("submitted_at", timestamptz, False),
    ]), 100)  # fmt: skip
    dec.feed(pgwire.begin(5000, COMMIT_MS, 7), 4000)
    step = dec.feed(pgwire.truncate([16700]), 4008)
    assert (step.events, step.truncated, step.truncated_state) == (
        [], ("public.form_responses",), (),
    )  # fmt: skip
