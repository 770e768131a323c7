"""`wedsync worker`: the Faust worker, on the configured broker or an embedded one."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from streams import topics
from streams.app import shell
from streams.settings import Settings

log = logging.getLogger(__name__)

DATA_LOST_EXIT = 3
EVENTS_NOT_WRITTEN_EXIT = 4

if TYPE_CHECKING:
    import faust
    from faust.worker import Worker


def make_worker(app: faust.App, settings: Settings) -> Worker:
    """A Faust Worker logging at `settings.log_level`, without the terminal spinner.

    Faust's spinner (on when the level is WARN or above) sets the root logger to DEBUG so
    that it spins on every record: every debug call in Faust and aiokafka then builds a log
    record. Profiled at 1,000 changes/s (py-spy, the bench's pipeline phase) that was ~7% of
    the worker's main thread."""
    from faust.worker import Worker

    worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.spinner = None
    return worker


def run_worker(settings: Settings, *, with_route: bool = False) -> int:
    """Run until SIGINT/SIGTERM. Creates the catalog's topics first (idempotent)."""
    from streams.agents.app import create_app
    from streams.app.broker import kafka_broker
    from streams.kafka.admin import create_topics

    with kafka_broker(settings, f"{settings.app_id}-worker") as kafka:
        shell.start(settings, kafka, access="worker", metrics="worker")
        create_topics(kafka, replication_factor=settings.replication_factor)
        # the conflicts agent reads the bookings regrouping `wedsync route` writes: created
        # here too, before Faust subscribes (a topic missing then is ignored for good)
        regrouped = topics.app_topics(settings.app_id).bookings_by_supplier
        create_topics(kafka, [regrouped], replication_factor=settings.replication_factor)
        app, _ = create_app(settings, kafka, os.environ if with_route else None)
        worker = make_worker(app, settings)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return exit_code(app, int(exit_.code or 0))
    return exit_code(app, 0)


def exit_code(app: faust.App, code: int) -> int:
    """The worker's exit status; a table whose changelog the broker no longer has (the
    cluster lost data: an embedded broker restarted, topics deleted) is said plainly, with
    what to do, and exits DATA_LOST_EXIT instead of Faust's traceback; a record the broker
    refused exits EVENTS_NOT_WRITTEN_EXIT, nothing committed past it."""
    from faust.exceptions import ConsistencyError

    from streams.errors import BrokerDataLost, EventsNotWritten

    reason = app.crash_reason
    if isinstance(reason, EventsNotWritten):
        return EVENTS_NOT_WRITTEN_EXIT  # said when it happened (streams.kafka.faust_sends)
    if isinstance(reason, ConsistencyError | BrokerDataLost):
        log.critical(
            "the broker no longer has the changelog this worker's tables were built from "
            "(its data was lost or the topics recreated): %s. Nothing is wrong with this "
            "process: start it again and it rebuilds its tables from what the broker holds. "
            "If the cluster lost its data, the routing state must be read again too: drop "
            "the CDC slot (SELECT pg_drop_replication_slot('<WEDSYNC_CDC_SLOT_NAME>')) and "
            "restart `wedsync cdc`, which snapshots the tables into the new topics",
            str(reason).strip().splitlines()[0],
        )
        return DATA_LOST_EXIT
    return code
