"""Our codec and confluent-kafka's own Avro serde read each other's bytes, both ways."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from streams import topics
from streams.dev.samples import demo_changes
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import ConfluentRegistry, EmbeddedRegistry, fingerprint_id
from streams.kafka.schema_store import SchemaStore

CTX = SerializationContext(topics.INGEST_CDC.name, MessageField.VALUE)


_MockClient = type(SchemaRegistryClient.new_client({"url": "mock://base"}))


class EmbeddedIdsClient(_MockClient):  # type: ignore[misc,valid-type]
    """confluent-kafka's in-process mock registry, answering our embedded ids with our
    schema files (the registry has never seen them: only get_schema is asked)."""

    def __init__(self, store: SchemaStore) -> None:
        super().__init__({"url": "mock://embedded-ids"})
        self._by_id = {fingerprint_id(v.raw): v.raw for v in store.all_versions()}

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Schema:
        return Schema(json.dumps(self._by_id[schema_id]), "AVRO")


def test_confluent_deserializer_reads_what_our_embedded_codec_writes(
    schema_store: SchemaStore,
) -> None:
    raw = schema_store.latest("ingest/change_event").raw
    ours = AvroCodec(EmbeddedRegistry(schema_store), topics.INGEST_CDC.subject, raw)
    theirs = AvroDeserializer(EmbeddedIdsClient(schema_store))
    change = demo_changes()[2]
    assert theirs(ours.encode(change), CTX) == change


def test_our_codec_reads_what_confluent_serializer_writes(schema_store: SchemaStore) -> None:
    raw = schema_store.latest("ingest/change_event").raw
    client = SchemaRegistryClient.new_client({"url": "mock://interop-1"})
    theirs = AvroSerializer(client, json.dumps(raw))
    ours = AvroCodec(
        ConfluentRegistry("mock://interop-1", client=client), topics.INGEST_CDC.subject, raw
    )
    change = demo_changes()[1]
    assert ours.decode(theirs(change, CTX)) == change


def test_confluent_registry_mode_round_trips_with_confluent_deserializer(
    schema_store: SchemaStore,
) -> None:
    raw = schema_store.latest("ingest/change_event").raw
    client = SchemaRegistryClient.new_client({"url": "mock://interop-2"})
    ours = AvroCodec(
        ConfluentRegistry("mock://interop-2", client=client), topics.INGEST_CDC.subject, raw
    )
    change = demo_changes()[0]
    data = ours.encode(change)
    assert AvroDeserializer(client)(data, CTX) == change
    registered = client.get_latest_version(topics.INGEST_CDC.subject)
    assert registered.schema_id == ours.schema_id
