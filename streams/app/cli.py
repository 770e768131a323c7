"""`wedsync`: the command line. Each subcommand parses settings once and hands them down."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.errors import WedsyncError
from streams.settings import Settings, load_settings


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from streams.dev.broker import EmbeddedBroker

    # Ctrl-C/SIGTERM only set a flag: a KeyboardInterrupt raised inside Popen.wait() can
    # leave the Popen's wait lock held, and the broker.stop() that follows would hang on it
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    broker = EmbeddedBroker(port=args.port)
    try:
        bootstrap = broker.start()
        if args.create_topics:
            from streams.kafka.admin import create_topics

            create_topics(bootstrap)
        print(f"embedded Kafka broker on {bootstrap} (memory storage); Ctrl-C stops it", flush=True)
        print(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}", flush=True)
        while not stop.wait(0.2) and broker.process is not None and broker.process.poll() is None:
            pass
    finally:
        broker.stop()
    return 0


def _cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.broker import kafka_broker
    from streams.kafka.admin import create_topics

    with kafka_broker(settings, f"{settings.app_id}-topics") as kafka:
        report = create_topics(kafka, replication_factor=settings.replication_factor)
    for name in report.created:
        print(f"created  {name}")
    for name in report.existing:
        print(f"exists   {name}")
    return 0


def _cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    from streams import topics

    for t in topics.ALL:
        schema = t.schema or "(raw bytes)"
        print(f"{t.name:34} {schema:32} p={t.partitions:<2} {t.cleanup:7} key={t.key}")
    return 0


def _cmd_schemas_check(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka.schema_store import SchemaStore

    store = SchemaStore(args.dir or settings.schemas_dir)
    problems = store.check_compatibility()
    for problem in problems:
        print(f"INCOMPATIBLE {problem}", file=sys.stderr)
    versions = store.all_versions()
    if problems:
        return 1
    print(
        f"{len(versions)} schema files, {len(store.keys())} schemas: all parse, and every "
        "version reads every earlier one (backward transitive)"
    )
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.worker import run_worker

    return run_worker(settings, with_route=args.with_route)


def _cmd_route(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.route import run_route

    return run_route(settings)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.broker import kafka_broker
    from streams.dev.demo import run_demo

    with kafka_broker(settings, f"{settings.app_id}-demo", dev_default="auto") as kafka:
        return run_demo(settings, kafka, once=args.once)


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.ingest import run_ingest

    return run_ingest(settings, config_path=args.config, host=args.host, port=args.port)


def _cmd_sla(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.sla import run_sla

    return run_sla(settings)


def _cmd_calendar_feed(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.calendar_feed import run_calendar_feed

    return run_calendar_feed(settings)


def _cmd_cdc(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.cdc import run_from_args

    return run_from_args(args, settings)


def _cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.audit import run_audit

    return run_audit(args, settings)


def _add_audit(sub: Any) -> None:
    p = sub.add_parser(
        "audit", help="every source change in a window whose deliveries have no final outcome"
    )
    p.add_argument(
        "--since", required=True, help="committed at or after (ISO 8601, UTC if no offset)"
    )
    p.add_argument("--until", help="committed at or before (ISO 8601; default: now)")
    p.add_argument("--strict", action="store_true", help="pending items fail too (exit 1)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to read each stage")
    p.set_defaults(func=_cmd_audit)


def dev_package_present() -> bool:
    """Whether this installation holds the dev package (`streams.dev`): a production image
    leaves it out (deploy/Dockerfile), and then the development commands (demo, broker,
    fake) are not offered at all."""
    try:
        import streams.dev  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wedsync", description="wedsync-streams: CDC and webhooks in, deliveries out."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = dev_package_present()

    if dev:
        p = sub.add_parser("broker", help="run the embedded Kafka broker (Tansu) in the foreground")
        p.add_argument("--port", type=int, default=None, help="listen port (default: a free one)")
        p.add_argument("--create-topics", action="store_true", help="create the catalog's topics")
        p.set_defaults(func=_cmd_broker)

    topics = sub.add_parser("topics", help="the topic catalog").add_subparsers(
        dest="topics_command", required=True, metavar="ACTION"
    )
    topics.add_parser("create", help="create every catalog topic (idempotent)").set_defaults(
        func=_cmd_topics_create
    )
    topics.add_parser("list", help="print the catalog").set_defaults(func=_cmd_topics_list)

    schemas = sub.add_parser("schemas", help="Avro schemas").add_subparsers(
        dest="schemas_command", required=True, metavar="ACTION"
    )
    check = schemas.add_parser("check", help="parse all schemas; check backward compatibility")
    check.add_argument(
        "--dir", type=Path, default=None, help="schema directory (default: schemas/)"
    )
    check.set_defaults(func=_cmd_schemas_check)

    worker = sub.add_parser("worker", help="run the stream agents (the Faust worker)")
    worker.add_argument(
        "--with-route", action="store_true",
        help="development: also start and supervise a `wedsync route` child (in production "
        "run `wedsync route` as its own process, supervised like the others)",
    )  # fmt: skip
    worker.set_defaults(func=_cmd_worker)

    sub.add_parser(
        "route", help="run the routing engine (a consumer group: run as many as partitions)"
    ).set_defaults(func=_cmd_route)
    sub.add_parser(
        "calendar-feed",
        help="vendors' own calendars (Google, Microsoft, CalDAV) -> busy time for the "
        "double-booking detector",
    ).set_defaults(func=_cmd_calendar_feed)

    if dev:
        demo = sub.add_parser("demo", help="a wedding week, live: every process on a dev broker")
        demo.add_argument("--once", action="store_true", help="exit after the samples came out")
        demo.set_defaults(func=_cmd_demo)

    ingest = sub.add_parser("ingest", help="inbound webhook gateway: HTTP in, Kafka out")
    ingest.add_argument("--config", default=None, help="TOML/JSON; default $WEDSYNC_INGEST_CONFIG")
    ingest.add_argument("--host", default=None, help="listen address (default: from the config)")
    ingest.add_argument("--port", type=int, default=None, help="listen port (default: config)")
    ingest.set_defaults(func=_cmd_ingest)

    from streams.app.cdc import add_arguments as add_cdc_arguments

    cdc = sub.add_parser("cdc", help="PostgreSQL logical replication into the CDC topic")
    add_cdc_arguments(cdc)
    cdc.set_defaults(func=_cmd_cdc)

    sub.add_parser(
        "sla", help="the SLA metrics agent: delivery results -> health, alerts, Prometheus"
    ).set_defaults(func=_cmd_sla)

    from streams.app.sinks import add_arguments as add_sink_arguments

    add_sink_arguments(sub, with_fakes=dev)
    _add_audit(sub)

    from streams.app.inapp import add_arguments as add_inapp_arguments

    add_inapp_arguments(sub)
    return parser


AUDIT_LOGGER = "wedsync.audit"  # connectors/sinks/outbound_policy.py's (imports stay light)


def use_log_level(level: str) -> None:
    """Every logger at `level` (WEDSYNC_LOG_LEVEL), but the audit trail of outbound calls
    (`wedsync.audit`) stays at INFO. Set before the command runs, so a command may still
    quiet a logger for its own display (the demo's board)."""
    logging.getLogger().setLevel(level.upper())
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
        use_log_level(settings.log_level)
        from streams import topics

        topics.configure(settings.partitions)
        func: Callable[[argparse.Namespace, Settings], int] = args.func
        return func(args, settings)
    except WedsyncError as exc:
        print(f"wedsync: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
