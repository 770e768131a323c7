"""`wedsync sink <kind>`, `wedsync fake <provider>`, `wedsync dlq list|replay <kind>` and
`wedsync deliveries show <event_id>`: arguments and entry points. Imports stay light:
`wedsync --help` loads this module, never a connector."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, TypeVar

from pydantic_settings import BaseSettings

from streams.app import shell
from streams.errors import ConfigurationError
from streams.kafka.connection import KafkaConnection
from streams.settings import Settings
from streams.topics import Destination

S = TypeVar("S", bound=BaseSettings)

SINK_KINDS = [d.value for d in Destination if d is not Destination.INAPP]


def add_arguments(sub: Any, *, with_fakes: bool) -> None:
    sink = sub.add_parser("sink", help="deliver one destination kind (a consumer group member)")
    sink.add_argument("kind", choices=SINK_KINDS)
    sink.add_argument(
        "--dev-credentials", action="store_true",
        help="development only: empty in-memory integration credentials instead of the "
        "platform database (WEDSYNC_SINK_PLATFORM_DSN)",
    )  # fmt: skip
    sink.set_defaults(func=run_sink)
    if with_fakes:
        _add_fake(sub)

    dlq = sub.add_parser("dlq", help="dead letters of a sink").add_subparsers(
        dest="dlq_command", required=True, metavar="ACTION"
    )
    for name, help_text in (("list", "print dead letters"), ("replay", "re-send dead letters")):
        p = dlq.add_parser(name, help=help_text)
        p.add_argument("kind", choices=SINK_KINDS)
        p.add_argument("--since", help="failed at or after (ISO 8601, UTC if no offset)")
        p.add_argument("--until", help="failed at or before (ISO 8601)")
        p.add_argument("--event-id")
        p.add_argument("--target", help="e.g. webhook:<endpoint id>")
        p.add_argument("--error-class", help="e.g. http.503, slack.channel_not_found")
        if name == "replay":
            p.add_argument("--dry-run", action="store_true", help="print what would be re-sent")
        p.set_defaults(func=run_dlq)

    show = sub.add_parser("deliveries", help="the delivery ledger").add_subparsers(
        dest="deliveries_command", required=True, metavar="ACTION"
    )
    p = show.add_parser("show", help="an event's chain: source, routing, every attempt")
    p.add_argument("event_id")
    p.set_defaults(func=run_show)


def read_settings(model: type[S]) -> S:
    """A connector's settings model from the environment (`SinkEnv.settings`); what is
    missing or malformed is a ConfigurationError naming the variables, never their values."""
    from pydantic import ValidationError

    try:
        return model()
    except ValidationError as exc:
        prefix = str(model.model_config.get("env_prefix", "")).upper()
        fields = sorted({f"{prefix}{'_'.join(map(str, e['loc'])).upper()}" for e in exc.errors()})
        raise ConfigurationError(
            f"{model.__name__}: set or correct {', '.join(fields)} (see README, configuration)"
        ) from None


def _add_fake(sub: Any) -> None:
    from streams.dev.fakes import FAKES

    fake = sub.add_parser("fake", help="run a local fake provider server to test a setup against")
    fake.add_argument("provider", choices=sorted(FAKES))
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8025)
    fake.add_argument("--latency-ms", type=float, default=0.0, help="answer this much later")
    fake.add_argument("--fail-next", type=int, default=0, help="fail the next N requests")
    fake.add_argument("--fail-status", type=int, default=503)
    fake.add_argument("--throttle-next", type=int, default=0, help="429 the next N requests")
    fake.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds")
    fake.add_argument("--expire-tokens", action="store_true", help="refuse issued tokens")
    fake.set_defaults(func=run_fake)


def _bootstrap(settings: Settings, role: str = "sink") -> KafkaConnection:
    return settings.kafka_cluster(f"{settings.app_id}-{role}")


def run_sink(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.sinks.base import SinkEnv
    from connectors.sinks.credentials import MemoryCredentialStore, PostgresCredentialStore
    from connectors.sinks.registry import CONNECTORS, load
    from connectors.sinks.runtime import SinkRuntime
    from connectors.sinks.settings import SinkSettings

    from streams.kafka.codec import TopicCodecs

    bootstrap = _bootstrap(settings)
    sink_settings = SinkSettings()
    dsn = sink_settings.platform_dsn
    credentials: Any
    if dsn is not None:
        credentials = PostgresCredentialStore(
            dsn.get_secret_value(), ttl_s=sink_settings.credential_ttl_s
        )
    elif args.dev_credentials:
        credentials = MemoryCredentialStore()
    else:
        raise ConfigurationError(
            "WEDSYNC_SINK_PLATFORM_DSN is not set: a sink reads the integrations' credentials "
            "from the platform database; set it (or pass --dev-credentials for empty "
            "in-memory credentials, development only)"
        )
    env = SinkEnv(sink_settings.outbound_policy(), credentials, read_settings)
    kind = Destination(args.kind)
    connector = load(CONNECTORS[kind])(env)
    runtime = SinkRuntime(
        connector, bootstrap=bootstrap, codecs=TopicCodecs.from_settings(settings),
        credentials=credentials, settings=sink_settings,
    )  # fmt: skip
    shell.start(settings, bootstrap, access=f"sink:{kind.value}", metrics="sink")
    return shell.run_async(runtime.run)


def run_fake(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.sinks.registry import load

    from streams.dev.fakes import FAKES
    from streams.dev.fakes.kit import FakeProvider, Switches, serve

    target = load(FAKES[args.provider])
    switches = Switches(
        latency_ms=args.latency_ms, fail_next=args.fail_next, fail_status=args.fail_status,
        throttle_next=args.throttle_next, retry_after_s=args.retry_after,
        expire_tokens=args.expire_tokens,
    )  # fmt: skip
    print(f"fake {args.provider} on http://{args.host}:{args.port} "
          "(POST /_fake/control to flip switches, GET /_fake/stats for counters)")  # fmt: skip
    try:
        if isinstance(target, type) and issubclass(target, FakeProvider):
            asyncio.run(serve(target(switches=switches), args.host, args.port))
        else:  # a real server the fake runs (SMTP capture, Radicale)
            asyncio.run(target(args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _time_ms(text: str | None) -> int | None:
    from streams.audit import time_ms

    return time_ms(text) if text else None


def run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.sinks.dlq import DlqFilter, read_dead_letters, replay

    from streams.kafka.codec import TopicCodecs
    from streams.topics import DELIVER

    bootstrap = _bootstrap(settings)
    kind = Destination(args.kind)
    codec = TopicCodecs.from_settings(settings)[DELIVER[kind].deliver]
    chosen = DlqFilter(
        since_ms=_time_ms(args.since), until_ms=_time_ms(args.until), event_id=args.event_id,
        target=args.target, error_class=args.error_class,
    )  # fmt: skip
    letters = [d for d in read_dead_letters(bootstrap, kind, codec) if chosen.matches(d)]
    if args.dlq_command == "list":
        for letter in letters:
            print(letter.line())
        print(f"{len(letters)} dead letters")
        return 0
    sent = replay(bootstrap, kind, letters, dry_run=args.dry_run)
    for letter in sent:
        print(("would re-send " if args.dry_run else "re-sent ") + letter.line())
    skipped = len(letters) - len(sent)
    verb = "would be re-sent" if args.dry_run else "re-sent"
    print(f"{len(sent)} {verb}" + (f"; {skipped} unreadable, not replayable" if skipped else ""))
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.sinks.show import chain

    from streams.kafka.codec import TopicCodecs

    for line in chain(_bootstrap(settings), TopicCodecs.from_settings(settings), args.event_id):
        print(line)
    return 0
