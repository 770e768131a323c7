"""The Faust application: settings tuned for the embedded broker, agents registered explicitly.

Faust defaults that do not fit us are overridden here (see FACTS.md): replication factor from
settings, short session/rebalance timeouts so group joins take seconds not 30 s, web server on
loopback, at-least-once processing (aiokafka's transactional producer fails on Tansu), and
the consumer's fetch wait (`streams.kafka.faust_transport`: 1500 ms hard-coded by Faust).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams import topics
from streams.agents import Agents
from streams.kafka.codec import TopicCodecs
from streams.kafka.faust_transport import App
from streams.settings import Settings


@dataclass
class Context:
    """What agents need besides the app: settings and the shared codecs."""

    settings: Settings
    codecs: TopicCodecs
    bootstrap_servers: str = ""
    agents: Agents | None = None


def create_app(settings: Settings, bootstrap_servers: str) -> tuple[faust.App, Context]:
    app = App(
        settings.app_id,
        fetch_max_wait_ms=settings.faust_fetch_wait_ms,
        broker=[f"kafka://{server}" for server in bootstrap_servers.split(",")],
        store="memory://",
        processing_guarantee="at_least_once",
        topic_replication_factor=settings.replication_factor,
        topic_partitions=topics.deployment_partitions(),  # co-partitioned with the catalog
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=1,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    context = Context(
        settings=settings,
        codecs=TopicCodecs.from_settings(settings),
        bootstrap_servers=bootstrap_servers,
    )
    from streams.agents import register_all

    context.agents = register_all(app, context)
    return app, context
