"""A sink when Kafka itself fails under it: a fatal error of its idempotent producer, a
broker that comes back empty (the embedded Tansu broker keeps its data in memory only), and
an Apache Kafka node killed mid-flight and started again on its data.

The connector counts every call, independently of the ledger: a delivery sent twice shows
there; one never sent shows as missing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from connectors.sinks.base import Limits
from streams.dev.broker import EmbeddedBroker
from streams.dev.kraft import KafkaCluster
from streams.errors import BrokerUnavailable
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.replay import wait_for_group

from tests.integration.kafka_faults import fatal_error
from tests.integration.sinks.support import (
    SLACK,
    RunningSink,
    ScriptedConnector,
    make_runtime,
    produce,
    results,
    slack_record,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        create_topics(running.bootstrap_servers)
        yield running


def delivered(bootstrap: str, codecs: TopicCodecs) -> set[str]:
    return {r["delivery_id"] for r in results(bootstrap, codecs) if r["outcome"] == "delivered"}


def committed_to_the_end(bootstrap: str, group: str) -> bool:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return not wait_for_group(reader, SLACK.deliver.name, SLACK.deliver.partitions, timeout=30)
    finally:
        reader.close()


def produce_within(
    bootstrap: str, codecs: TopicCodecs, records: list[dict], timeout: float
) -> None:
    """`produce`, waiting up to `timeout` s for acks (partition leaders after a restart)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        producer.produce(SLACK.deliver.name, codecs[SLACK.deliver].encode(record),
                         record["aggregate_id"].encode())  # fmt: skip
    assert producer.flush(timeout) == 0


def test_a_fatal_producer_error_loses_no_outcome_and_sends_nothing_twice(
    broker: EmbeddedBroker, codecs: TopicCodecs
) -> None:
    bootstrap = broker.bootstrap_servers
    connector = ScriptedConnector(delay_s=0.1, limits={"C0001": Limits(concurrency=4)})
    runtime = make_runtime(connector, bootstrap, codecs)
    sink = RunningSink(runtime)
    records = [slack_record(n) for n in range(60)]
    produce(bootstrap, codecs, records)
    wait_until(lambda: len(connector.calls) >= 12, every=0.01)
    broker.pause()  # outcome records pile up unacknowledged ...
    wait_until(lambda: len(runtime.producer) >= 4, every=0.01)
    fatal_error(runtime.producer.client)  # ... when the producer loses its producer id
    broker.resume()
    wait_until(lambda: len(delivered(bootstrap, codecs)) >= 60 or sink.error, timeout=60)
    sink.stop()
    assert delivered(bootstrap, codecs) == {r["delivery_id"] for r in records}
    assert runtime.producer.renewed == 1
    assert committed_to_the_end(bootstrap, runtime.group_id)
    assert Counter(c.delivery_id for c in connector.calls).most_common(1)[0][1] == 1


def test_after_the_broker_came_back_empty_every_new_delivery_is_made(
    broker: EmbeddedBroker, codecs: TopicCodecs
) -> None:
    """The first sink stops saying Kafka lost data; the restarted one makes every delivery
    routed since. Only what the first made from the new log before it noticed (its fetches
    can go on for about a heartbeat) may be made twice: its results were not stored, as
    they could not be told from results about records of the lost log."""
    bootstrap = broker.bootstrap_servers
    connector = ScriptedConnector()
    first = RunningSink(make_runtime(connector, bootstrap, codecs))
    produce(bootstrap, codecs, [slack_record(n) for n in range(20)])
    wait_until(lambda: len(connector.calls) >= 20)
    assert committed_to_the_end(bootstrap, first.runtime.group_id)
    broker.stop()
    broker.start()  # same port, nothing in it
    back = time.monotonic()
    create_topics(bootstrap)
    after = [slack_record(100 + n) for n in range(20)]  # offsets the first 20 had
    produce(bootstrap, codecs, after)
    wait_until(lambda: first.error, timeout=60)
    stopped_after = time.monotonic() - back
    with pytest.raises(BrokerUnavailable, match="Kafka lost data this sink had read"):
        first.stop()
    made_by_first = {c.delivery_id for c in connector.calls[20:]}
    second = RunningSink(make_runtime(connector, bootstrap, codecs))
    wanted = {r["delivery_id"] for r in after}
    wait_until(lambda: wanted <= delivered(bootstrap, codecs), timeout=60)
    second.stop()
    calls = Counter(c.delivery_id for c in connector.calls if c.delivery_id in wanted)
    assert set(calls) == wanted
    assert {d for d, times in calls.items() if times > 1} <= made_by_first
    print(f"after the loss: the first sink stopped {stopped_after:.1f} s after the broker was "
          f"back; {len(wanted)} delivered, {len(made_by_first)} by the first sink before it "
          f"stopped, {sum(calls.values()) - len(calls)} made twice")  # fmt: skip


def test_a_kafka_node_killed_mid_flight_and_restarted_on_its_data_loses_and_repeats_nothing(
    codecs: TopicCodecs,
) -> None:
    """No false alarm: the group's commits survive, so the sink goes on (no data-loss stop),
    records its in-flight outcomes once the node is back, and delivers what came since."""
    with KafkaCluster(nodes=1) as cluster:
        bootstrap = cluster.bootstrap_servers
        create_topics(bootstrap)
        connector = ScriptedConnector(delay_s=0.2, limits={"C0001": Limits(concurrency=4)})
        runtime = make_runtime(connector, bootstrap, codecs)
        sink = RunningSink(runtime)  # started at once: partition leaders may not be elected
        before = [slack_record(n) for n in range(40)]
        produce_within(bootstrap, codecs, before, 60)
        wait_until(lambda: len(connector.calls) >= 16 and runtime.tracker.confirmed,
                   timeout=120, every=0.02)  # fmt: skip
        cluster.kill(1)
        wait_until(lambda: not runtime.consumer.assignment(), timeout=60)  # the group is gone
        cluster.start_node(1)
        after = [slack_record(100 + n) for n in range(20)]
        produce_within(bootstrap, codecs, after, 60)
        wanted = {r["delivery_id"] for r in before + after}
        wait_until(lambda: wanted <= delivered(bootstrap, codecs) or sink.error, timeout=180)
        sink.stop()
        assert delivered(bootstrap, codecs) == wanted
        assert committed_to_the_end(bootstrap, runtime.group_id)
    assert Counter(c.delivery_id for c in connector.calls) == Counter(wanted)
