"""`wedsync inapp`: run one in-app gateway process (settings: WEDSYNC_INAPP_*)."""

from __future__ import annotations

import argparse
import logging

from pydantic import ValidationError

from streams.app import shell
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
    t = sub.add_parser(
        "inapp-token", help="print an HS256 token for a user (signed with WEDSYNC_INAPP_JWT_SECRET)"
    )
    t.add_argument("user", help="the token's sub: the user id notifications are addressed to")
    t.add_argument("--org", default="", help="the user's organisation (presence scope)")
    t.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    t.add_argument("--name", default="", help="the display name others see (claim `name`)")
    t.set_defaults(func=run_print_token)


def run_print_token(args: argparse.Namespace, settings: Settings) -> int:
    import os
    import time

    from connectors.sinks.inapp.auth import issue
    from connectors.sinks.inapp.config import GatewaySettings

    secret = os.environ.get("WEDSYNC_INAPP_JWT_SECRET")
    if not secret:
        raise ConfigurationError("WEDSYNC_INAPP_JWT_SECRET is not set: the gateway's HS256 secret")
    s = GatewaySettings()
    print(issue(secret, args.user, org=args.org, ttl_s=args.ttl, audience=s.jwt_audience,
                issuer=s.jwt_issuer, now=time.time(), name=args.name))  # fmt: skip
    return 0


def run_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.sinks.inapp.config import GatewaySettings
    from connectors.sinks.inapp.server import GatewayServer

    from streams.app.sinks import _bootstrap
    from streams.kafka.codec import TopicCodecs

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        gateway_settings = GatewaySettings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(f"in-app gateway settings: {exc}") from None
    codecs = TopicCodecs.from_settings(settings)
    kafka = _bootstrap(settings)
    server = GatewayServer(kafka, gateway_settings, codecs)
    shell.start(settings, kafka, access="inapp", metrics="inapp", ready=lambda: server.healthy)

    # websockets logs every connection open and close at INFO: 20,000 lines per 10,000 users
    logging.getLogger("websockets.server").setLevel(logging.WARNING)

    return shell.run_async(server.run)
