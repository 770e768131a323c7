"""The sink runtime's pieces that decide without I/O: one outcome vocabulary (within the
ledger schema's and the model's), the ledger's answer as what to record, a credential's
fingerprint, and the collector's settings a sink process runs with."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from connectors.sinks.credentials import Credential
from connectors.sinks.envelope import Item
from connectors.sinks.runtime import Outcome
from connectors.sinks.runtime.ledger import ALREADY_PROCESSED, Ledger
from streams import models
from streams.kafka.codec import TopicCodecs
from streams.kafka.schema_store import SchemaStore
from streams.topics import DELIVER, DELIVERY_RESULTS, Destination

TOPIC = DELIVER[Destination.SLACK].deliver.name


def test_every_sink_outcome_is_one_the_model_knows() -> None:
    assert {o.value for o in Outcome} <= set(typing.get_args(models.Outcome))


def test_every_sink_outcome_is_a_symbol_of_the_ledger_schema(schema_store: SchemaStore) -> None:
    schema = schema_store.latest(str(DELIVERY_RESULTS.schema)).raw
    field = next(f for f in schema["fields"] if f["name"] == "outcome")
    assert {o.value for o in Outcome} <= set(field["type"]["symbols"])


def _item(offset: int, delivery: str = "d1", version: int = 10) -> Item:
    record = {"delivery_id": delivery, "aggregate_id": "w1", "aggregate_version": version,
              "event_type": "wedding.date_changed"}  # fmt: skip
    return Item(TOPIC, 0, offset, None, b"", record, 0, 0, f"{TOPIC}:0:{offset}", 0, None,
                None, None)  # fmt: skip


def _result(outcome: str, offset: int, delivery: str = "d1", version: int = 10) -> dict[str, Any]:
    return {
        "delivery_id": delivery, "destination": "slack", "target": "slack:C1",
        "outcome": outcome, "aggregate_id": "w1", "aggregate_version": version,
        "event_type": "wedding.date_changed",
        "source_topic": TOPIC, "source_partition": 0, "source_offset": offset,
    }  # fmt: skip


@pytest.fixture
def ledger(codecs: TopicCodecs) -> Ledger:
    return Ledger("slack", "127.0.0.1:1", "g", codecs[DELIVERY_RESULTS])


def test_a_new_record_is_delivered(ledger: Ledger) -> None:
    assert ledger.skip(_item(5), "slack:C1") is None


def test_a_record_recorded_at_its_own_position_records_nothing_more(ledger: Ledger) -> None:
    ledger.apply(_result("delivered", 5))
    assert ledger.skip(_item(5), "slack:C1") == ALREADY_PROCESSED


def test_a_copy_of_a_delivered_record_is_a_skipped_duplicate(ledger: Ledger) -> None:
    ledger.apply(_result("delivered", 5))
    assert ledger.skip(_item(9), "slack:C1") == (Outcome.SKIPPED_DUPLICATE, None)


def test_an_older_version_than_one_delivered_is_skipped_stale_naming_it(ledger: Ledger) -> None:
    ledger.apply(_result("delivered", 5, delivery="d2", version=11))
    assert ledger.skip(_item(9, version=10), "slack:C1") == (Outcome.SKIPPED_STALE, "d2")


def test_a_credential_fingerprint_follows_the_stored_values() -> None:
    first, same = Credential({"api_key": "a"}), Credential({"api_key": "a"})
    assert first.fingerprint == same.fingerprint
    assert first.fingerprint != Credential({"api_key": "b"}).fingerprint
