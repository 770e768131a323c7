"""The hand-written InboundWebhook writer writes the codec's bytes."""

from __future__ import annotations

import pytest
from connectors.sources.webhooks.record import WebhookWriter
from hypothesis import given, settings
from hypothesis import strategies as st
from streams.kafka.codec import TopicCodecs
from streams.topics import INGEST_WEBHOOKS

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
records = st.fixed_dictionaries({
    "event_id": texts, "source": texts,
    "verification": st.sampled_from(["standard_webhooks", "hmac_sha256", "none"]),
    "delivery_id": texts, "headers": st.dictionaries(texts, texts, max_size=4),
    "content_type": texts, "body": st.binary(max_size=300),
    "received_at_ms": st.integers(-(2**63), 2**63 - 1),
    "source_ts_ms": st.integers(0, 2**50),
})  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(records)
def test_a_record_is_the_codecs_bytes(codecs: TopicCodecs, record: dict) -> None:
    codec = codecs[INGEST_WEBHOOKS]
    writer = WebhookWriter.of(codec.schema)
    assert writer is not None
    assert codec.encode(record)[5:] == writer.write(record)


def test_a_schema_with_another_field_has_no_writer(codecs: TopicCodecs) -> None:
    schema = dict(codecs[INGEST_WEBHOOKS].schema)
    schema["fields"] = [*schema["fields"], {"name": "extra", "type": "string"}]
    assert WebhookWriter.of(schema) is None


@pytest.mark.parametrize("field, value", [("delivery_id", "\ud800"), ("verification", "x")])
def test_what_the_schema_cannot_hold_is_a_value_error(
    codecs: TopicCodecs, field: str, value: str
) -> None:
    writer = WebhookWriter.of(codecs[INGEST_WEBHOOKS].schema)
    assert writer is not None
    record = {"event_id": "e", "source": "s", "verification": "none", "delivery_id": "d",
              "headers": {}, "content_type": "", "body": b"", "received_at_ms": 1,
              "source_ts_ms": 1, field: value}  # fmt: skip
    with pytest.raises(ValueError):
        writer.write(record)
