"""`wedsync worker`: the Faust worker, on the configured broker or an embedded one."""

from __future__ import annotations

from streams.settings import Settings


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM. Creates the catalog's topics first (idempotent)."""
    from faust.worker import Worker

    from streams.admin import create_topics
    from streams.app import create_app
    from streams.broker import kafka_broker

    with kafka_broker(settings.kafka_bootstrap_servers) as bootstrap:
        create_topics(bootstrap, replication_factor=settings.replication_factor)
        app, _ = create_app(settings, bootstrap)
        worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return int(exit_.code or 0)
    return 0
