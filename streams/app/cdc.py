"""`wedsync cdc`: arguments and entry point. Connection settings come from the environment
(`WEDSYNC_CDC_*`, see `config.py`; the password only from there, never from argv); the flags
override the capture settings. Imports stay light: `wedsync --help` loads this module.
"""

from __future__ import annotations

import argparse
from typing import Any

from streams.errors import ConfigurationError
from streams.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slot", help="replication slot name (env WEDSYNC_CDC_SLOT_NAME)")
    parser.add_argument("--publication", help="publication name (env WEDSYNC_CDC_PUBLICATION)")
    parser.add_argument(
        "--table",
        action="append",
        default=None,
        metavar="SCHEMA.TABLE",
        help="capture this table (repeat); default: every table of the publication",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=None,
        metavar="SCHEMA.TABLE.COLUMN",
        help="drop this column at the source (repeat), e.g. public.core_fields.phone",
    )
    parser.add_argument(
        "--no-snapshot", action="store_true", help="skip the initial snapshot of a new slot"
    )
    parser.add_argument("--heartbeat", type=float, default=None, help="heartbeat seconds")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the flags set (unset flags leave the environment's value)."""
    overrides: dict[str, Any] = {}
    if args.slot:
        overrides["slot_name"] = args.slot
    if args.publication:
        overrides["publication"] = args.publication
    if args.table:
        overrides["tables"] = tuple(args.table)
    if args.exclude:
        excluded: dict[str, set[str]] = {}
        for item in args.exclude:
            table, _, column = item.rpartition(".")
            if not table or not column:
                raise ConfigurationError(f"--exclude {item!r}: use [schema.]table.column")
            excluded.setdefault(table, set()).add(column)
        overrides["exclude_columns"] = {t: frozenset(c) for t, c in excluded.items()}
    if args.no_snapshot:
        overrides["snapshot"] = False
    if args.heartbeat is not None:
        overrides["heartbeat_interval_s"] = args.heartbeat
    return overrides


def run_from_args(args: argparse.Namespace, settings: Settings) -> int:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient
    from connectors.sources.postgres_cdc.config import PostgresCdcConfig
    from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer
    from pydantic import ValidationError

    from streams.kafka.access import CDC_STATE_KEYS_GROUP
    from streams.kafka.codec import TopicCodecs

    kafka = settings.kafka_cluster(f"{settings.app_id}-cdc")
    try:
        config = PostgresCdcConfig(**config_overrides(args))
    except ValidationError as exc:
        raise ConfigurationError(f"CDC configuration: {exc}") from exc
    from streams.app import shell
    from streams.kafka.connection import client_config

    shell.start(settings, kafka, access="cdc", metrics="cdc")
    producer = make_producer(kafka, max_record_bytes=config.max_record_bytes)
    admin = AdminClient(client_config(kafka))
    # assigned, never a group member: reads the state's row keys back once at start
    keys = Consumer(client_config(kafka, {"group.id": CDC_STATE_KEYS_GROUP,
                                          "enable.auto.commit": False}))  # fmt: skip
    source = PostgresCdcSource(config, producer, TopicCodecs.from_settings(settings),
                               admin=admin, state_consumer=keys)  # fmt: skip
    return shell.run_blocking(source.run)
