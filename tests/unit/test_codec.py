"""The codec: Confluent wire format, schema resolution, and one exception for bad bytes."""

from __future__ import annotations

import struct

import pytest
from streams import topics
from streams.dev.samples import demo_changes
from streams.errors import DecodeError
from streams.kafka.codec import AvroCodec, TopicCodecs
from streams.kafka.registry import EmbeddedRegistry
from streams.kafka.schema_store import SchemaStore


def _domain_event_v1() -> dict:
    return {
        "event_id": "e-1",
        "event_type": "wedding.date_changed",
        "aggregate_type": "wedding",
        "aggregate_id": "w-1",
        "aggregate_version": 7,
        "occurred_at_ms": 1_700_000_000_000,
        "source_ts_ms": 1_700_000_000_000,
        "source": {
            "kind": "cdc",
            "topic": "t",
            "partition": 0,
            "offset": 3,
            "lsn": 7,
            "delivery_id": None,
            "table": "wedding_details",
        },
        "payload": {"old_date": "2027-06-12", "new_date": "2027-06-19"},
    }


def test_encoded_record_starts_with_magic_byte_and_big_endian_schema_id(
    codecs: TopicCodecs,
) -> None:
    codec = codecs[topics.INGEST_CDC]
    data = codec.encode(demo_changes()[0])
    assert data[0] == 0
    assert struct.unpack(">I", data[1:5])[0] == codec.schema_id


def test_change_event_round_trips(codecs: TopicCodecs) -> None:
    codec = codecs[topics.INGEST_CDC]
    for change in demo_changes():
        assert codec.decode(codec.encode(change)) == change


def test_v2_reader_decodes_v1_record_with_defaults(schema_store: SchemaStore) -> None:
    registry = EmbeddedRegistry(schema_store)
    v1, v2 = schema_store.versions("events/domain_event")[:2]
    writer = AvroCodec(registry, topics.EVENTS.subject, v1.raw)
    reader = AvroCodec(registry, topics.EVENTS.subject, v2.raw)
    decoded = reader.decode(writer.encode(_domain_event_v1()))
    assert decoded["payload"] == {"old_date": "2027-06-12", "new_date": "2027-06-19"}
    assert decoded["correlation_id"] is None
    assert decoded["organization_id"] is None


def test_v1_and_v2_get_different_schema_ids(schema_store: SchemaStore) -> None:
    registry = EmbeddedRegistry(schema_store)
    v1, v2 = schema_store.versions("events/domain_event")[:2]
    assert AvroCodec(registry, "s", v1.raw).schema_id != AvroCodec(registry, "s", v2.raw).schema_id


def test_wrong_magic_byte_raises_decode_error(codecs: TopicCodecs) -> None:
    codec = codecs[topics.INGEST_CDC]
    data = bytearray(codec.encode(demo_changes()[0]))
    data[0] = 1
    with pytest.raises(DecodeError, match="magic byte"):
        codec.decode(bytes(data))


def test_unknown_schema_id_raises_decode_error(codecs: TopicCodecs) -> None:
    codec = codecs[topics.INGEST_CDC]
    data = codec.encode(demo_changes()[0])
    unknown = struct.pack(">bI", 0, (codec.schema_id + 1) & 0x7FFFFFFF) + data[5:]
    with pytest.raises(DecodeError, match="unknown schema id"):
        codec.decode(unknown)


@pytest.mark.parametrize("cut", [0, 3, 5, 9, 20])
def test_truncated_payload_raises_decode_error(codecs: TopicCodecs, cut: int) -> None:
    data = codecs[topics.INGEST_CDC].encode(demo_changes()[0])
    with pytest.raises(DecodeError):
        codecs[topics.INGEST_CDC].decode(data[:cut])


def test_trailing_garbage_raises_decode_error(codecs: TopicCodecs) -> None:
    data = codecs[topics.INGEST_CDC].encode(demo_changes()[0])
    with pytest.raises(DecodeError, match="trailing"):
        codecs[topics.INGEST_CDC].decode(data + b"\x00\x01")


def test_tombstone_raises_decode_error(codecs: TopicCodecs) -> None:
    with pytest.raises(DecodeError, match="tombstone"):
        codecs[topics.INGEST_CDC].decode(None)


def test_record_of_another_type_raises_decode_error(codecs: TopicCodecs) -> None:
    """A change event written to the events topic cannot be read as a domain event."""
    data = codecs[topics.INGEST_CDC].encode(demo_changes()[0])
    with pytest.raises(DecodeError):
        codecs[topics.EVENTS].decode(data)


def test_raw_topics_have_no_codec(codecs: TopicCodecs) -> None:
    with pytest.raises(KeyError, match="raw bytes"):
        codecs[topics.EVENTS_DLQ]


def test_payload_values_of_every_branch_round_trip(codecs: TopicCodecs) -> None:
    event = {**_domain_event_v1(), "correlation_id": None, "organization_id": "org-1"}
    event["source"] = {**event["source"], "commit_lsn": 9, "state_lsn": 8}
    event["payload"] = {
        "flag": True, "count": 3, "ratio": 0.5, "name": "x", "none": None, "fields": ["a", "b"],
    }  # fmt: skip
    codec = codecs[topics.EVENTS]
    assert codec.decode(codec.encode(event)) == event


def test_value_of_a_type_the_schema_lacks_is_refused(codecs: TopicCodecs) -> None:
    event = {**_domain_event_v1(), "correlation_id": None, "organization_id": None}
    event["payload"] = {"when": object()}
    with pytest.raises((ValueError, TypeError)):
        codecs[topics.EVENTS].encode(event)
