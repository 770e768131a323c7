"""`wedsync route`: the routing engine as its own process (`streams.routing.process`).

SIGTERM/SIGINT finish the current batch, flush, commit and exit 0."""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import replace

from streams import topics
from streams.app import shell
from streams.collect import collect_less
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.logic.routing import load_rules
from streams.routing.engine import RouteEngine, RouteSettings
from streams.routing.process import internal_topics, wait_for_state_agent
from streams.routing.state_reader import ChangelogState
from streams.settings import Settings

log = logging.getLogger("streams.routing.process")


def run_route(settings: Settings) -> int:
    """Route until SIGTERM/SIGINT; needs KAFKA_BOOTSTRAP_SERVERS (the worker's broker)."""
    from streams.app.broker import kafka_broker

    config = RouteSettings()
    loaded = threading.Event()
    with kafka_broker(settings, f"{settings.app_id}-route") as bootstrap:
        # ready once the routing state is loaded
        shell.start(settings, bootstrap, access="route", metrics="route", ready=loaded.is_set)
        create_topics(bootstrap, replication_factor=settings.replication_factor)
        create_topics(
            bootstrap, internal_topics(settings.app_id, config),
            replication_factor=settings.replication_factor,
        )  # fmt: skip
        wait_for_state_agent(bootstrap, settings.app_id)
        state = ChangelogState(bootstrap, settings.app_id)
        tables = state.load()
        engine = RouteEngine(
            bootstrap=bootstrap,
            group_id=f"{settings.app_id}-route",
            app_id=settings.app_id,
            codecs=TopicCodecs.from_settings(settings),
            rules=replace(load_rules(), default_time_zone=config.default_time_zone),
            state=tables,
            bookings_topic=topics.app_topics(settings.app_id).bookings_by_supplier.name,
            config=config,
            state_ready=state.wait_for,
        )
        # the state and every module are loaded: move them out of the collector's sight and
        # collect young objects less often (a routed event allocates many short-lived dicts),
        # which trims the latency tail that GC pauses add
        gc.collect()
        collect_less(50_000, 20, 20)
        loaded.set()
        try:
            shell.run_blocking(engine.run)
        finally:
            state.close()
        log.info("route: stopped after %d events routed", engine.routed)
    return 0
