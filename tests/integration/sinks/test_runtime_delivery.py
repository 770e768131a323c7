"""The sink runtime on a real broker: deliveries recorded on the ledger, committed, and never
repeated after a restart."""

from __future__ import annotations

import time

import pytest
from streams.kafka.codec import TopicCodecs

from tests.integration.sinks.support import (
    RunningSink,
    ScriptedConnector,
    make_runtime,
    outcomes,
    own_broker,
    produce,
    results,
    slack_record,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_each_delivery_is_attempted_once_and_recorded_as_delivered(codecs: TopicCodecs) -> None:
    with own_broker() as bootstrap:
        connector = ScriptedConnector()
        records = [slack_record(n) for n in range(20)]
        started = time.monotonic()
        sink = RunningSink(make_runtime(connector, bootstrap, codecs))
        produce(bootstrap, codecs, records)
        wait_until(lambda: len(connector.calls) >= 20)
        print(f"20 delivered in {time.monotonic() - started:.1f} s")
        sink.stop()
        delivered = [r for r in results(bootstrap, codecs) if r["outcome"] == "delivered"]
        assert sorted(r["delivery_id"] for r in delivered) == sorted(
            r["delivery_id"] for r in records
        )
        assert all(r["provider_id"] == f"ts-{r['delivery_id']}" for r in delivered)
        assert len(connector.calls) == 20
        assert outcomes(bootstrap, codecs, records[0]["delivery_id"]) == ["delivered"]
