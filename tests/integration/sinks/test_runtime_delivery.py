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


def test_a_result_says_when_the_sink_read_the_record(codecs: TopicCodecs) -> None:
    """picked_up_at_ms: the wait inside the sink (here for a rate-limit token) is readable
    from the ledger, apart from the wait in Kafka before it and the call after it."""
    from connectors.sinks.base import Limits

    with own_broker() as bootstrap:
        records = [slack_record(n, channel="C-slow") for n in range(3)]
        connector = ScriptedConnector(limits={"C-slow": Limits(rate_per_s=4.0, burst=1)})
        sink = RunningSink(make_runtime(connector, bootstrap, codecs))
        produce(bootstrap, codecs, records)
        wait_until(lambda: len(connector.calls) >= 3)
        sink.stop()
        calls = {c.delivery_id: c.at * 1000 for c in connector.calls}
        delivered = [r for r in results(bootstrap, codecs) if r["outcome"] == "delivered"]
        assert len(delivered) == 3
        for r in delivered:
            assert r["routed_at_ms"] <= r["picked_up_at_ms"] <= calls[r["delivery_id"]] + 1
        waited = sorted(calls[r["delivery_id"]] - r["picked_up_at_ms"] for r in delivered)
        assert waited[-1] >= 400  # the third waited for two tokens at 4/s
