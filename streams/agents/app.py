"""The Faust application: settings tuned for the embedded broker, agents registered explicitly.

Faust defaults that do not fit us are overridden here (see FACTS.md): replication factor from
settings, short session/rebalance timeouts so group joins take seconds not 30 s, web server on
loopback, at-least-once processing (aiokafka's transactional producer fails on Tansu), and
the consumer's fetch wait (`streams.kafka.faust_transport`: 1500 ms hard-coded by Faust).

What the agents emit goes through `streams.kafka.faust_output` (librdkafka); Faust's own
producer writes only the tables' changelogs. It lingers `PRODUCER_LINGER_MS` and batches up to
`PRODUCER_MAX_BATCH_BYTES` per partition (what follows was measured when it wrote the
events too). aiokafka keeps one produce request in flight per broker and writes each to its
socket on the worker's event loop, so with 1 ms linger the loop sent a request per
millisecond: profiled (py-spy, 1,000 changes/s, one partition, Apache Kafka) the socket
writes of produce requests were 28-31 % of the worker's main thread, and a full 16 KB batch
(about 50 domain events) made the agent's `send` wait for the request in flight. With 10 ms
and 256 KB: 11 %, and the worker's CPU per change fell from 0.82-0.90 ms to 0.51-0.73 ms (same
session, alternating runs). Ten milliseconds is the most it adds to a record's latency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException

from streams import metrics, topics
from streams.agents import Agents
from streams.errors import BrokerDataLost
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka, client_config, connection
from streams.kafka.faust_output import DirectOutput, Output
from streams.kafka.faust_transport import App
from streams.kafka.topic_watch import TopicWatch
from streams.settings import Settings

log = logging.getLogger(__name__)

PRODUCER_LINGER_MS = 10
PRODUCER_MAX_BATCH_BYTES = 256 * 1024

GONE = frozenset({KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC,
                  KafkaError.UNKNOWN_TOPIC_OR_PART})  # fmt: skip


@dataclass
class Context:
    """What agents need besides the app: settings and the shared codecs."""

    settings: Settings
    codecs: TopicCodecs
    output: Output  # where agents write (streams.kafka.faust_output)
    kafka: Kafka = ""
    environ: Mapping[str, str] = field(default_factory=dict)  # for the child processes
    agents: Agents | None = None


def create_app(
    settings: Settings, kafka: Kafka, route_environ: Mapping[str, str] | None = None
) -> tuple[faust.App, Context]:
    """The Faust app of the worker. With `route_environ` (`wedsync worker --with-route`,
    development) it also supervises a `wedsync route` child started with that environment."""
    metrics.export("worker")  # this process's /metrics serves them
    conn = connection(kafka).named(f"{settings.app_id}-worker")
    app = App(
        settings.app_id,
        fetch_max_wait_ms=settings.faust_fetch_wait_ms,
        broker=[f"kafka://{server}" for server in conn.bootstrap_servers.split(",")],
        broker_credentials=conn.faust_credentials(),
        broker_client_id=conn.client_id,
        store="memory://",
        processing_guarantee="at_least_once",
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.partitions,  # co-partitioned with the catalog (topics.configure)
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=PRODUCER_LINGER_MS,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    output = DirectOutput(conn, app.send_failures, client_id=f"{conn.client_id}-out")
    app.outputs.append(output)
    context = Context(
        settings=settings,
        codecs=TopicCodecs.from_settings(settings),
        output=output,
        kafka=conn,
        environ=dict(route_environ or {}),
    )
    from streams.agents import register_all

    context.agents = register_all(app, context, with_route=route_environ is not None)
    watch_topics(app, settings.app_id, conn)
    return app, context


def watch_topics(app: faust.App, app_id: str, bootstrap_servers: Kafka) -> None:
    """Every few seconds: if a topic the worker's tables and inputs live on was recreated or
    is gone (its topic id changed), the cluster lost data: crash the app with BrokerDataLost
    (the worker exits saying so, `streams.app.worker.exit_code`) instead of going on with tables
    Kafka no longer backs."""
    own = topics.app_topics(app_id)
    watched = [topics.INGEST_CDC.name, topics.INGEST_STATE.name, own.state_rows_changelog.name]
    watch = TopicWatch()
    probe: list[Any] = []

    def topic_ids() -> dict[str, str | None] | None:
        """The watched topics' ids (DescribeTopics); None when Kafka does not answer (down
        or slow is not a data loss)."""
        from confluent_kafka import TopicCollection
        from confluent_kafka.admin import AdminClient

        if not probe:
            probe.append(AdminClient(client_config(bootstrap_servers, {
                                     "log.connection.close": False})))  # fmt: skip
        ids: dict[str, str | None] = {}
        futures = probe[0].describe_topics(TopicCollection(watched), request_timeout=5)
        for name, future in futures.items():
            try:
                ids[name] = str(future.result(timeout=10).topic_id)
            except KafkaException as exc:
                if exc.args[0].code() not in GONE:
                    log.debug("topic %s not described: %s", name, exc)
                    return None
                ids[name] = None
        return ids

    @app.timer(interval=5.0)
    async def check_topics() -> None:
        now = await asyncio.to_thread(topic_ids)
        if now is None:
            metrics.KAFKA_DATA_CHECKS.labels("unanswered").inc()
            return
        try:
            watch.check(now)
        except BrokerDataLost as exc:
            metrics.KAFKA_DATA_CHECKS.labels("lost").inc()
            log.critical("%s", exc)
            await app.crash(exc)
            return
        metrics.KAFKA_DATA_CHECKS.labels("ok").inc()
