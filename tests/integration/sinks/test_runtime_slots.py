"""The sink runtime's concurrency slots on a real broker: a record parked for its paused
integration gives its slot back exactly once, however often it is probed, so the sink never
has more than `concurrency` deliveries in flight."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from connectors.sinks.answer import Answer
from connectors.sinks.base import DeliveryContext
from streams.kafka.codec import TopicCodecs

from tests.integration.sinks.support import (
    RunningSink,
    ScriptedConnector,
    make_runtime,
    outcomes,
    own_broker,
    produce,
    slack_record,
    wait_until,
)

pytestmark = pytest.mark.integration

CONCURRENCY = 2


@dataclass
class CountingConnector(ScriptedConnector):
    """Scripted answers, each call taking `delay_s`; counts the calls in flight at once."""

    in_flight: int = 0
    most_in_flight: int = 0
    per_delivery: dict[str, int] = field(default_factory=dict)

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().deliver(record, ctx)
        finally:
            self.in_flight -= 1


@pytest.fixture
def sink(codecs: TopicCodecs) -> Iterator[tuple[str, CountingConnector]]:
    with own_broker() as bootstrap:
        connector = CountingConnector(delay_s=0.02)
        runtime = make_runtime(
            connector, bootstrap, codecs, concurrency=CONCURRENCY, pause_probe_s=0.02
        )
        running = RunningSink(runtime)
        yield bootstrap, connector
        running.stop()


def test_a_parked_record_probed_many_times_leaves_the_concurrency_bound_intact(
    sink: tuple[str, CountingConnector], codecs: TopicCodecs
) -> None:
    bootstrap, connector = sink
    paused = uuid.uuid4().hex
    connector.reauth_until_reconnected.add(f"integration:{paused}")
    parked = slack_record(channel="CPARKED", integration_id=paused)
    produce(bootstrap, codecs, [parked])
    wait_until(lambda: len(connector.attempts_of(parked["delivery_id"])) >= 12, timeout=60)
    flowing = [
        slack_record(n, channel=f"C{n:04d}", integration_id=uuid.uuid4().hex) for n in range(40)
    ]
    connector.most_in_flight = 0
    produce(bootstrap, codecs, flowing)
    wait_until(
        lambda: all("delivered" in outcomes(bootstrap, codecs, r["delivery_id"]) for r in flowing),
        timeout=60,
    )
    assert connector.most_in_flight == CONCURRENCY


def test_an_integration_reconnected_after_probes_delivers_its_parked_record(
    sink: tuple[str, CountingConnector], codecs: TopicCodecs
) -> None:
    bootstrap, connector = sink
    paused = uuid.uuid4().hex
    key = f"integration:{paused}"
    connector.reauth_until_reconnected.add(key)
    parked = slack_record(channel="CPARKED2", integration_id=paused)
    produce(bootstrap, codecs, [parked])
    wait_until(lambda: len(connector.attempts_of(parked["delivery_id"])) >= 4, timeout=60)
    connector.reauth_until_reconnected.discard(key)
    wait_until(lambda: "delivered" in outcomes(bootstrap, codecs, parked["delivery_id"]))
    assert connector.side_effects[parked["delivery_id"]] == 1
