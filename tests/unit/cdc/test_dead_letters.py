"""A pgoutput row message that cannot even be parsed is dead-lettered without its bytes:
they hold every column of the row, secrets included."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.source import PostgresCdcSource
from streams.kafka.codec import TopicCodecs

from tests.unit.cdc import pgwire

TEXT, TEXT_ARRAY, BOOL = 25, 1009, 16


@dataclass
class Replicated:
    payload: bytes
    data_start: int


def test_an_unparseable_row_message_is_dead_lettered_without_its_bytes(
    codecs: TopicCodecs,
) -> None:
    source = PostgresCdcSource(PostgresCdcConfig(), Producer({"bootstrap.servers": "127.0.0.1:9"}),
                               codecs)  # fmt: skip
    letters: list[tuple[Any, ...]] = []
    source.emit.dead_letter = lambda *a, **kw: letters.append((a, kw))  # type: ignore[method-assign]
    source.decoder.feed(pgwire.relation(16600, "public", "webhook_endpoints", [
        ("id", TEXT, True), ("supplier_id", TEXT, False), ("endpoint_url", TEXT, False),
        ("secret_key", TEXT, False), ("subscribed_events", TEXT_ARRAY, False),
        ("is_active", BOOL, False),
    ]), 100)  # fmt: skip
    # an insert whose tuple says 6 values and then stops after the secret
    broken = pgwire.insert(16600, ["e-1", "s-1", "https://h.example", "whsec_leak"])
    broken = broken[:6] + struct.pack(">h", 6) + broken[8:]
    source._handle(None, Replicated(broken, 4242), {})
    ((args, kwargs),) = letters
    assert (args[2], kwargs["table"]) == (None, "public.webhook_endpoints")
