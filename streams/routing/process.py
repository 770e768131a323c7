"""The routing engine as its own process (`wedsync route`, run by `streams.app.route`).

    <app id>-state_rows-changelog (written by the Faust `state` agent's table)
        --> ChangelogState (recovered to the end, then tailed; its watermark gates routing)
    wedsync.events --> RouteEngine --> wedsync.deliver.* (+ bookings regrouping, seen markers)

Why a process of its own: measured on the 2-core machine, the same engine thread ran at
~3.2-3.8k events/s standalone but ~1.9k events/s inside the Faust worker, where it shares the
GIL with Faust's event loop and aiokafka's consumer thread. As a separate process it uses the
second core and never waits for the GIL of the worker. The Faust worker starts one (see
`streams.routing.service.RouteService`) after its tables have recovered; more can be started
with `wedsync route` on other machines: they join the same consumer group and split the
partitions of wedsync.events.

SIGTERM/SIGINT finish the current batch, flush, commit and exit 0. A delivery that Kafka
refuses after librdkafka's retries ends the process non-zero without committing: the batch is
routed again after restart (at-least-once; the seen markers dedupe what was already routed).
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer

from streams import topics
from streams.kafka.connection import Kafka, client_config
from streams.kafka.replay import wait_for_group
from streams.routing.engine import RouteSettings

log = logging.getLogger(__name__)


def internal_topics(app_id: str, config: RouteSettings) -> list[topics.Topic]:
    """The catalog's topics of this deployment that the routing process creates: seen
    markers (kept twice the dedupe window) and the bookings regrouping."""
    own = topics.app_topics(app_id, seen_retention_ms=int(config.dedupe_window_s * 2000))
    return [own.route_seen, own.bookings_by_supplier]


def wait_for_state_agent(bootstrap: Kafka, app_id: str, timeout: float = 120.0) -> None:
    """Cold start: wait until the Faust worker (consumer group `app_id`, which holds the
    state agent) has committed every record that was already in wedsync.ingest.state, so the
    changelog holds that state before the first event is routed (the watermark wait is
    bounded per event; a long backlog would outlast it). A restart finds the group caught up
    and goes straight on; after `timeout` routing starts anyway, with a warning."""
    probe = Consumer(client_config(bootstrap, {"group.id": app_id,
                      "enable.auto.commit": False, "log.connection.close": False}))  # fmt: skip
    try:
        behind = wait_for_group(
            probe, topics.INGEST_STATE.name, topics.INGEST_STATE.partitions, timeout=timeout
        )
    finally:
        probe.close()
    if behind:
        log.warning("route: the state agent is still behind on %s partitions %s after %.0f s; "
                    "routing with the state loaded so far", topics.INGEST_STATE.name,
                    sorted(behind), timeout)  # fmt: skip
