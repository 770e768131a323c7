"""`wedsync inapp`: run one in-app gateway process (settings: WEDSYNC_INAPP_*)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from pydantic import ValidationError
from streams.errors import ConfigurationError
from streams.settings import Settings

log = logging.getLogger(__name__)


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inapp", help="in-app WebSocket gateway: wedsync.deliver.inapp -> dashboards"
    )
    p.add_argument("--host", default=None, help="listen address (default WEDSYNC_INAPP_HOST)")
    p.add_argument("--port", type=int, default=None, help="listen port (WEDSYNC_INAPP_PORT)")
    p.set_defaults(func=run_gateway)


def run_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka.codec import TopicCodecs

    from connectors.sinks.cli import _bootstrap
    from connectors.sinks.inapp.config import GatewaySettings
    from connectors.sinks.inapp.server import GatewayServer

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        gateway_settings = GatewaySettings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(f"in-app gateway settings: {exc}") from None
    codecs = TopicCodecs.from_settings(settings)
    server = GatewayServer(_bootstrap(settings), gateway_settings, codecs)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.run(stop)

    asyncio.run(main())
    return 0
