"""A refused delivery is not lost to a newer record of the same supplier: the real sink
runtime and CRM connector on Apache Kafka, against the CRM fake, which refuses one attempt
with 503 while the supplier's newer form response goes out. And where a delivery really is
superseded (an older date change of one wedding), its result names the newer delivery.

The module's sink has a consumer group of its own whose offsets start at the current end of
the CRM topics, so it reads only this module's records on the session's shared broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.crm.config import CrmConfig
from connectors.sinks.crm.sink import CrmSink
from connectors.sinks.outbound import OutboundPolicy
from connectors.sinks.runtime import SinkRuntime
from connectors.sinks.settings import SinkSettings
from streams.dev.fakes.crm import CrmFake
from streams.dev.fakes.kit import FakeServer
from streams.kafka.codec import TopicCodecs
from streams.topics import DELIVER, Destination

from tests.integration.sinks.support import FAST, RunningSink, results, wait_until

pytestmark = pytest.mark.integration

CRM = DELIVER[Destination.CRM]
KEY = "crm_key_superseded_0123"
SETTINGS: dict[str, Any] = {**FAST, "retry_schedule_s": (1.0, 1.0)}  # the newer goes first
FINAL = frozenset({"delivered", "skipped_stale", "skipped_duplicate", "dead_lettered"})


@dataclass
class Rig:
    bootstrap: str
    codecs: TopicCodecs
    fake: CrmFake
    url: str

    def send(self, *records: dict[str, Any]) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        codec = self.codecs[CRM.deliver]
        for record in records:
            producer.produce(
                CRM.deliver.name, codec.encode(record), record["aggregate_id"].encode()
            )
        assert producer.flush(10) == 0

    def results_of(self, delivery_id: str) -> list[dict[str, Any]]:
        return [r for r in results(self.bootstrap, self.codecs) if r["delivery_id"] == delivery_id]

    def wait_final(self, delivery_id: str) -> list[dict[str, Any]]:
        """The delivery's results once one of them is final."""
        return wait_until(
            lambda: (
                (found := self.results_of(delivery_id))
                and any(r["outcome"] in FINAL for r in found)
                and found
            )
        )


def start_at_the_end(bootstrap: str, group_id: str) -> None:
    """Commit `group_id`'s offsets at the current end of the CRM deliver and retry topics."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                         "enable.auto.commit": False})  # fmt: skip

    def end(tp: TopicPartition) -> TopicPartition | None:
        try:  # a topic just created may not have its leader yet
            return TopicPartition(tp.topic, tp.partition, consumer.get_watermark_offsets(tp, 5)[1])
        except KafkaException:
            return None

    try:
        parts = [TopicPartition(t.name, p) for t in (CRM.deliver, CRM.retry)
                 for p in range(t.partitions)]  # fmt: skip
        ends = [wait_until(partial(end, tp)) for tp in parts]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def rig(kafka_bootstrap: str, codecs: TopicCodecs) -> Iterator[Rig]:
    fake = CrmFake([KEY])
    group_id = f"wedsync-sink-crm-{uuid.uuid4().hex[:8]}"
    start_at_the_end(kafka_bootstrap, group_id)
    with FakeServer(fake) as server:
        runtime = SinkRuntime(
            CrmSink(CrmConfig(), OutboundPolicy.loopback_for_tests(server.port)),
            bootstrap=kafka_bootstrap,
            codecs=codecs,
            credentials=CrmStore(),
            settings=SinkSettings(**SETTINGS),
            group_id=group_id,
        )
        sink = RunningSink(runtime)
        yield Rig(kafka_bootstrap, codecs, fake, server.url)
        sink.stop()


class CrmStore(MemoryCredentialStore):
    """Every integration id has the fake's key."""

    async def get(self, kind: Any, key: str) -> Any:
        self.rows.setdefault((kind, key), {"integration_type": "photography_crm",
                                           "api_key": KEY, "settings": {}})  # fmt: skip
        return await super().get(kind, key)


def crm_record(rig: Rig, event_type: str, aggregate: str, version: int,
               integration: str) -> dict[str, Any]:  # fmt: skip
    """A photography-CRM delivery as routing writes it."""
    event = f"evt-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    return {
        "delivery_id": f"dlv-{event}", "event_id": event, "event_type": event_type,
        "aggregate_id": aggregate, "aggregate_version": version, "source_ts_ms": now,
        "routed_at_ms": now, "recipient_id": "supplier-1", "integration_id": integration,
        "attempt": 0, "crm_kind": "photography_crm",
        "endpoint_url": f"{rig.url}/photography/webhook", "auth_scheme": "bearer",
        "payload": {"event_type": "form_response", "wedding_id": f"w-{event}",
                    "client_name": "Ann & Bob"},
    }  # fmt: skip


def test_a_refused_form_response_is_delivered_after_a_newer_one_of_its_supplier(
    rig: Rig,
) -> None:
    supplier, integration = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    older = crm_record(rig, "form.response_received", supplier, 100, integration)
    newer = crm_record(rig, "form.response_received", supplier, 200, integration)
    rig.fake.switches.fail_next = 1  # the next request, the older one's, answers 503
    rig.send(older, newer)
    newer_done = rig.wait_final(newer["delivery_id"])
    older_done = rig.wait_final(older["delivery_id"])
    assert [(r["outcome"], r["status_code"]) for r in older_done] == [
        ("retry_scheduled", 503), ("delivered", 200),
    ]  # fmt: skip
    assert newer_done[-1]["completed_at_ms"] < older_done[-1]["completed_at_ms"]
    bodies = [r["body"]["wedding_id"] for r in rig.fake.stats()["received"]]
    assert older["payload"]["wedding_id"] in bodies


def test_an_older_date_change_of_one_wedding_is_skipped_naming_the_newer_delivery(
    rig: Rig,
) -> None:
    wedding, integration = f"w-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    newer = crm_record(rig, "wedding.date_changed", wedding, 200, integration)
    older = crm_record(rig, "wedding.date_changed", wedding, 100, integration)
    rig.send(newer)
    rig.wait_final(newer["delivery_id"])
    rig.send(older)
    skipped = rig.wait_final(older["delivery_id"])
    assert [(r["outcome"], r.get("superseded_by")) for r in skipped] == [
        ("skipped_stale", newer["delivery_id"]),
    ]  # fmt: skip
