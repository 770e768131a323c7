"""Codec throughput: our AvroCodec against confluent-kafka's AvroSerializer/AvroDeserializer
(the reference implementation of the same wire format), same records, same run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from streams import topics
from streams.dev.samples import demo_changes
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import ConfluentRegistry
from streams.kafka.schema_store import SchemaStore
from streams.settings import REPO_ROOT

N = 20_000


def _rate(func: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    func()
    return n / (time.perf_counter() - start)


def run() -> list[str]:
    raw = SchemaStore(REPO_ROOT / "schemas").latest("ingest/change_event").raw
    client = SchemaRegistryClient.new_client({"url": "mock://bench-codec"})
    ctx = SerializationContext(topics.INGEST_CDC.name, MessageField.VALUE)
    ours = AvroCodec(
        ConfluentRegistry("mock://bench-codec", client=client), topics.INGEST_CDC.subject, raw
    )
    theirs_ser = AvroSerializer(client, json.dumps(raw))
    theirs_de = AvroDeserializer(client)
    records = (demo_changes() * (N // 5 + 1))[:N]
    encoded = [ours.encode(r) for r in records]

    ours_rate = _rate(lambda: [ours.decode(ours.encode(r)) for r in records], N)
    theirs_rate = _rate(lambda: [theirs_de(theirs_ser(r, ctx), ctx) for r in records], N)
    decode_ours = _rate(lambda: [ours.decode(b) for b in encoded], N)
    decode_theirs = _rate(lambda: [theirs_de(b, ctx) for b in encoded], N)
    return [
        "codec (change event, encode+decode, in process)",
        f"  wedsync AvroCodec           {ours_rate:>10,.0f} records/s",
        f"  confluent-kafka Avro serde  {theirs_rate:>10,.0f} records/s (baseline)",
        f"  ratio                       {ours_rate / theirs_rate:>10.2f}x",
        f"  decode only: ours {decode_ours:,.0f}/s, confluent {decode_theirs:,.0f}/s, "
        f"ratio {decode_ours / decode_theirs:.2f}x",
    ]
