"""`wedsync ingest`: run the gateway until SIGINT/SIGTERM.

Kafka is `KAFKA_BOOTSTRAP_SERVERS` when set; otherwise an embedded broker is started for the
lifetime of the process and the catalog's topics are created on it (its data is lost on
exit: for development only). The configuration is read and validated before anything starts.

Failure means a `WedsyncError` (bad configuration, no broker) that the CLI prints; exit 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from connectors.sources.webhooks.config import GatewayConfig, load_gateway_config
from connectors.sources.webhooks.gateway import Gateway, running_gateway

from streams.app import shell
from streams.app.broker import kafka_broker
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka
from streams.logic.contract import Contract, load_mapping
from streams.settings import Settings

log = logging.getLogger(__name__)


async def _serve(
    config: GatewayConfig, bootstrap: Kafka, codecs: TopicCodecs,
    host: str | None, port: int | None, stop: asyncio.Event, serving: list[Gateway],
    contract: Contract,
) -> None:  # fmt: skip
    async with running_gateway(
        config, bootstrap, codecs, host=host, port=port, contract=contract
    ) as (gw, bound):
        serving.append(gw)
        log.info(
            "ingest gateway on http://%s:%d (%d sources); Kafka %s",
            host or config.host, bound, len(config.sources), bootstrap,
        )  # fmt: skip
        await stop.wait()
    log.info("ingest gateway stopped")


CONTRACT_FILE = "WEDSYNC_CDC_CONTRACT_FILE"


def _contract() -> Contract:
    """The source contract with this deployment's names: the same mapping file as the CDC
    source's (`WEDSYNC_CDC_CONTRACT_FILE`), so both paths rename and key rows alike."""
    path = os.environ.get(CONTRACT_FILE)
    return Contract.default() if not path else Contract.default().mapped(load_mapping(Path(path)))


def run_ingest(
    settings: Settings,
    *,
    config_path: str | Path | None = None,
    host: str | None = None,
    port: int | None = None,
) -> int:
    """Validate the config, find or start Kafka, serve until signalled; returns an exit code."""
    config = load_gateway_config(config_path, os.environ)
    contract = _contract()  # validated before anything starts
    codecs = TopicCodecs.from_settings(settings)
    with kafka_broker(settings, f"{settings.app_id}-ingest") as kafka:
        serving: list[Gateway] = []  # healthy once serving, while its producer is usable
        shell.start(settings, kafka, access="ingest", metrics="ingest",
                    ready=lambda: bool(serving) and serving[0].healthy)  # fmt: skip
        if not settings.kafka_bootstrap_servers:  # a development broker started just now
            create_topics(kafka, replication_factor=settings.replication_factor)
        return shell.run_async(
            lambda stop: _serve(config, kafka, codecs, host, port, stop, serving, contract)
        )
