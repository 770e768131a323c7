"""`wedsync worker`: the Faust worker, on the configured broker or an embedded one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.settings import Settings

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


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM. Creates the catalog's topics first (idempotent)."""
    from streams.app import create_app
    from streams.kafka.admin import create_topics
    from streams.kafka.broker import kafka_broker
    from streams.observe import serve_from_settings

    with kafka_broker(settings.kafka_bootstrap_servers) as bootstrap:
        create_topics(bootstrap, replication_factor=settings.replication_factor)
        serve_from_settings()
        app, _ = create_app(settings, bootstrap)
        worker = make_worker(app, settings)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return int(exit_.code or 0)
    return 0
