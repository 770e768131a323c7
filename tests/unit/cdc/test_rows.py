"""Row plans (`rows.py`) write exactly the bytes the codec writes for the decoder's event, or
leave the message to the decoder."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from connectors.sources.postgres_cdc.avro import Layout, avro_long
from connectors.sources.postgres_cdc.decode import ChangeDecoder, TableRules
from connectors.sources.postgres_cdc.rows import RowPlans
from hypothesis import given, settings
from hypothesis import strategies as st
from streams.kafka.codec import TopicCodecs
from streams.logic.contract import Contract
from streams.topics import INGEST_CDC

from tests.unit.cdc import pgwire

COMMIT_MS, NOW_MS = 1_790_000_000_123, 1_790_000_000_500
TEXT, INT4, INT8, BOOL, FLOAT8, TSTZ, NUMERIC, TEXT_ARRAY, INT_ARRAY, UUID = (
    25, 23, 20, 16, 701, 1184, 1700, 1009, 1007, 2950,
)  # fmt: skip
COLUMNS = [("id", UUID, True), ("title", TEXT, False), ("guests", INT4, False),
           ("budget", INT8, False), ("paid", BOOL, False), ("score", FLOAT8, False),
           ("starts_at", TSTZ, False), ("price", NUMERIC, False), ("tags", TEXT_ARRAY, False),
           ("counts", INT_ARRAY, False)]  # fmt: skip
TABLE = pgwire.relation(16400, "public", "things", COLUMNS, "f")

texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                max_size=12)  # fmt: skip
ints = st.integers(-(2**31), 2**31 - 1).map(str)
values = {
    TEXT: texts,
    UUID: st.uuids().map(str),
    INT4: ints,
    INT8: st.integers(-(2**63), 2**63 - 1).map(str),
    BOOL: st.sampled_from(["t", "f"]),
    FLOAT8: st.floats(allow_nan=False).map(repr),
    TSTZ: st.sampled_from(
        [
            "2026-06-01 12:00:00.5+00",
            "2026-11-22 03:22:00+00",
            "infinity",
            "0044-03-15 10:00:00+00 BC",
        ]
    ),
    NUMERIC: st.sampled_from(["1.50", "-0.001", "NaN"]),
    TEXT_ARRAY: st.lists(texts.filter(lambda t: t.isalnum()), max_size=3).map(
        lambda xs: "{" + ",".join(xs) + "}"
    ),
    INT_ARRAY: st.lists(ints, max_size=3).map(lambda xs: "{" + ",".join(xs) + "}"),
}
rows = st.tuples(*(st.one_of(st.none(), values[oid]) if not key else values[oid]
                   for _, oid, key in COLUMNS)).map(list)  # fmt: skip


def plans(**pks: tuple[str, ...]) -> tuple[ChangeDecoder, RowPlans, Layout]:
    decoder = ChangeDecoder("wedsync", TableRules(), {"public.things": ("id",), **pks},
                            lambda: NOW_MS, Contract.default())  # fmt: skip
    layout = Layout.of(_schema())
    assert layout is not None
    decoder.feed(TABLE, 100)
    decoder.feed(pgwire.begin(5000, COMMIT_MS, 77), 4000)
    return decoder, RowPlans(decoder, layout), layout


_SCHEMA: dict = {}


def _schema() -> dict:
    return _SCHEMA["schema"]


@pytest.fixture(autouse=True)
def _codec_schema(codecs: TopicCodecs) -> None:
    _SCHEMA["schema"] = codecs[INGEST_CDC].schema
    _SCHEMA["codec"] = codecs[INGEST_CDC]


def assert_same_as_decoder(message: bytes, state_lsn: int | None = 4000) -> None:
    decoder, rows, layout = plans()
    encoded = rows.prepare(message, 4008)
    assert encoded is not None
    encoded.state_lsn = state_lsn
    key, event = decoder.rebuild(message, 4008, decoder.tx)  # type: ignore[arg-type]
    event["source"]["state_lsn"] = state_lsn
    codec = _SCHEMA["codec"]
    assert encoded.key == key
    assert struct.pack(">bI", 0, codec.schema_id) + encoded.body(layout) == codec.encode(event)
    assert encoded.event() == event


def test_the_change_event_schema_is_the_layout_the_writer_writes(codecs: TopicCodecs) -> None:
    assert Layout.of(codecs[INGEST_CDC].schema) is not None


def test_a_schema_with_another_field_has_no_layout(codecs: TopicCodecs) -> None:
    schema = dict(codecs[INGEST_CDC].schema)
    schema["fields"] = [*schema["fields"], {"name": "extra", "type": "string"}]
    assert Layout.of(schema) is None


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, -65, 300, 2**40, -(2**63), 2**63 - 1])
def test_a_long_is_zigzag_varint(n: int) -> None:
    zigzag = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        out.append((zigzag & 0x7F) | (0x80 if zigzag > 0x7F else 0))
        zigzag >>= 7
        if not zigzag:
            break
    assert avro_long(n) == bytes(out)


@settings(max_examples=150, deadline=None)
@given(rows)
def test_an_insert_is_the_codecs_bytes_of_the_decoders_event(row: list) -> None:
    assert_same_as_decoder(pgwire.insert(16400, row))


@settings(max_examples=80, deadline=None)
@given(rows, rows)
def test_an_update_with_its_old_row_is_the_codecs_bytes(old: list, new: list) -> None:
    assert_same_as_decoder(pgwire.update(16400, new, old, kind="O"))


@settings(max_examples=40, deadline=None)
@given(rows)
def test_a_delete_of_a_key_image_is_the_codecs_bytes(old: list) -> None:
    key_image = [old[0]] + [None] * (len(old) - 1)
    assert_same_as_decoder(pgwire.delete(16400, key_image, kind="K"))


def test_an_update_without_an_old_row_and_without_a_state_lsn() -> None:
    row = ["6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01", "Ünïcode ✓", "12", None, "t", "1.5",
           "2026-06-01 12:00:00.5+00", "3.10", '{a,"b c",NULL}', "{1,2}"]  # fmt: skip
    assert_same_as_decoder(pgwire.update(16400, row), state_lsn=None)


@pytest.mark.parametrize("why, row", [
    ("an int column's text is not an int", ["k", None, "twelve"] + [None] * 7),
    ("an unchanged TOAST value", ["k", pgwire.UNCHANGED_TOAST] + [None] * 8),
    ("a multi-dimensional array", ["k"] + [None] * 7 + ["{{a},{b}}", None]),
    ("a tuple narrower than the relation", ["k", None]),
])  # fmt: skip
def test_what_the_writer_cannot_write_exactly_is_left_to_the_decoder(why: str, row: list) -> None:
    _, rows, _ = plans()
    assert rows.prepare(pgwire.insert(16400, row), 4008) is None, why


def test_a_change_outside_a_transaction_is_left_to_the_decoder() -> None:
    decoder, rows, _ = plans()
    decoder.feed(pgwire.commit(5000, 5008, COMMIT_MS), 5008)
    assert rows.prepare(pgwire.insert(16400, ["k"] + [None] * 9), 6000) is None


def test_a_table_whose_urls_are_redacted_is_left_to_the_decoder() -> None:
    decoder, rows, _ = plans()
    decoder.feed(pgwire.relation(16600, "public", "webhook_endpoints", [
        ("id", TEXT, True), ("supplier_id", TEXT, False), ("endpoint_url", TEXT, False),
        ("secret_key", TEXT, False), ("subscribed_events", TEXT_ARRAY, False),
        ("is_active", BOOL, False),
    ]), 100)  # fmt: skip
    rows.forget()
    insert = pgwire.insert(16600, ["e-1", "s-1", "https://u:p@h.example/x", "whsec", "{}", "t"])
    assert rows.prepare(insert, 4008) is None


def test_a_state_tables_keys_are_tracked_as_the_decoder_tracks_them() -> None:
    decoder, rows, _ = plans()
    decoder.feed(pgwire.relation(16500, "public", "wedding_vendors", [
        ("id", TEXT, True), ("wedding_id", TEXT, False), ("vendor_id", TEXT, False),
        ("vendor_type", TEXT, False), ("notes", TEXT, False),
    ]), 100)  # fmt: skip
    rows.forget()
    ids = ["6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01", "0f6c1d6e-8b7a-4f35-b0a4-5d1e2c3b4a50"]
    row = [ids[0], ids[1], ids[1], "photo", "n"]
    encoded = rows.prepare(pgwire.insert(16500, row), 4008)
    assert encoded is not None and encoded.table == "wedding_vendors"
    assert decoder.keys.rows["wedding_vendors"] == {encoded.key: {"id": ids[0]}}
    assert rows.prepare(pgwire.delete(16500, [ids[0], None, None, None, None]), 4016) is not None
    assert decoder.keys.rows["wedding_vendors"] == {}


class _Producer:
    """Records what the emitter produces (no broker)."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def produce(self, topic: str, **record: object) -> None:
        self.records.append({"topic": topic, **record})

    def poll(self, timeout: float = 0) -> int:
        return 0


def _emitter(codecs: TopicCodecs, decoder: ChangeDecoder, **config: int) -> tuple[Any, _Producer]:
    from connectors.sources.postgres_cdc.acks import AckTracker
    from connectors.sources.postgres_cdc.config import PostgresCdcConfig
    from connectors.sources.postgres_cdc.emit import Emitter

    producer = _Producer()
    emitter = Emitter(producer, codecs, AckTracker(), PostgresCdcConfig(**config),  # type: ignore[arg-type]
                      Contract.default(), decoder.column_types, lambda: NOW_MS)  # fmt: skip
    return emitter, producer


def test_an_encoded_change_is_produced_as_the_codec_writes_it(codecs: TopicCodecs) -> None:
    decoder, rows, _ = plans()
    emitter, producer = _emitter(codecs, decoder)
    message = pgwire.insert(16400, ["k", "a title"] + [None] * 8)
    encoded = rows.prepare(message, 4008)
    assert encoded is not None
    encoded.state_lsn = 4000
    emitter.change(emitter.tracker.begin(), encoded.key, encoded)
    ((record,),) = [producer.records]
    assert (record["topic"], record["key"], record["headers"]) == (
        INGEST_CDC.name,
        b"things:k",
        None,
    )
    assert codecs[INGEST_CDC].decode(record["value"]) == encoded.event()


def test_an_encoded_change_over_the_record_limit_is_cut_from_the_decoders_event(
    codecs: TopicCodecs,
) -> None:
    decoder, rows, _ = plans()
    emitter, producer = _emitter(codecs, decoder, max_record_bytes=65536, cut_value_bytes=1024)
    encoded = rows.prepare(pgwire.insert(16400, ["k", "x" * 70_000] + [None] * 8), 4008)
    assert encoded is not None
    emitter.change(emitter.tracker.begin(), encoded.key, encoded)
    ((record,),) = [producer.records]
    assert dict(record["headers"])["wedsync.cdc.cut_columns"] == b"title"
    assert len(codecs[INGEST_CDC].decode(record["value"])["after"]["title"]) <= 1024
