"""The parts `make run` starts, each a context manager that stops what it started: the worker
(a child process), the CDC source, one sink per destination kind and the SLA agent (threads of
this process), and the in-app gateway (a thread with its own event loop)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from streams import topics
from streams.background import Background
from streams.child import die_with_parent
from streams.dev import db as devdb
from streams.dev.broker import free_port
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

SINK_KINDS = tuple(d for d in topics.Destination if d is not topics.Destination.INAPP)
# A week in minutes: retries after 2, 4, 8 ... s instead of 5 s, 5 min ..., a paused
# integration probed every 3 s, SLA windows of 20 s / 1 min / 5 min in 2 s slots, and a
# latency threshold that allows for the embedded broker's fetch waits.
DEMO_SINK: dict[str, Any] = {
    "retry_schedule_s": (2.0, 4.0, 8.0, 15.0, 30.0, 60.0), "retry_jitter": 0.1,
    "pause_probe_s": 3.0, "breaker_cooldown_s": 5.0,
}  # fmt: skip
DEMO_SLA: dict[str, Any] = {"slot_s": 2.0, "windows": {"1m": 20.0, "5m": 60.0, "1h": 300.0},
            "evaluate_every_s": 2.0}  # fmt: skip


@contextlib.contextmanager
def worker_process(bootstrap: str, settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`wedsync worker` as a child process that cannot outlive us."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEDSYNC_WEB_PORT": str(free_port()),
        "WEDSYNC_METRICS_PORT": str(free_port()),  # its routing child takes the next one
        "WEDSYNC_APP_ID": settings.app_id,
        "WEDSYNC_LOG_LEVEL": os.environ.get("WEDSYNC_LOG_LEVEL", "warn"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "worker", "--with-route"],
        env=env,
        preexec_fn=die_with_parent,
        start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker first
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def cdc_running(bootstrap: str, server: devdb.PostgresServer, codecs: TopicCodecs) -> Iterator[str]:
    """The CDC source on a thread, yielded once it streams; stopped on exit."""
    from connectors.sources.postgres_cdc.config import PostgresCdcConfig
    from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer

    config = PostgresCdcConfig(host=server.host, port=server.port, user=server.user,
                               dbname="wedsync", heartbeat_interval_s=1.0)  # fmt: skip
    cdc = Background(PostgresCdcSource(config, make_producer(bootstrap), codecs).run, "cdc")
    import psycopg2

    conn = psycopg2.connect(server.dsn.replace("dbname=postgres", "dbname=wedsync"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            devdb.wait_until(
                lambda: cdc.error is not None or devdb.slot_streaming(cur, config.slot_name), 60
            )
        if cdc.error is not None:
            cdc.stop()  # raises what the source raised
        yield config.slot_name
    finally:
        conn.close()
        cdc.stop()


@contextlib.contextmanager
def sinks_running(bootstrap: str, codecs: TopicCodecs, local: Any, dsn: str) -> Iterator[None]:
    """One sink runtime per destination kind (in-app has its gateway), each on a thread,
    its connector pointed at the local providers, credentials read from the database."""
    from connectors.sinks.credentials import PostgresCredentialStore
    from connectors.sinks.runtime import SinkRuntime
    from connectors.sinks.settings import SinkSettings

    store = PostgresCredentialStore(dsn)
    running = [
        Background(
            SinkRuntime(local.connector(kind), bootstrap=bootstrap, codecs=codecs,
                        credentials=store, settings=SinkSettings(**DEMO_SINK)).run_blocking,
            f"sink-{kind.value}",
        )
        for kind in SINK_KINDS
    ]  # fmt: skip
    try:
        yield
    finally:
        for sink in running:
            sink.stop()
        store.close()


@contextlib.contextmanager
def inapp_running(bootstrap: str, codecs: TopicCodecs) -> Iterator[InApp]:
    """The in-app gateway on a thread, on WEDSYNC_INAPP_PORT (8765) or a free port when that is
    taken, with a secret made up for this run."""
    import secrets

    from connectors.sinks.inapp.config import GatewaySettings
    from connectors.sinks.inapp.server import GatewayServer
    from pydantic import SecretStr

    secret = secrets.token_urlsafe(32)
    port = GatewaySettings(jwt_secret=SecretStr(secret)).port
    try:
        with socket.create_server(("127.0.0.1", port)):
            pass
    except OSError:
        port = free_port()
    settings = GatewaySettings(jwt_secret=SecretStr(secret), gateway_id="make-run", port=port)
    server = GatewayServer(bootstrap, settings, codecs)
    running = Background(server.run_blocking, "inapp-gateway")
    deadline = time.monotonic() + 30
    while server.gateway is None or not server.gateway.ready:
        if time.monotonic() > deadline or not running.alive:
            running.stop()
            raise RuntimeError("the in-app gateway did not start")
        time.sleep(0.05)
    inapp = InApp(settings, secret)
    try:
        yield inapp
    finally:
        inapp.close()
        running.stop()


class InApp:
    """The demo's gateway: its URLs, tokens, and one stand-in dashboard per notified user."""

    def __init__(self, settings: Any, secret: str) -> None:
        self.settings, self.secret = settings, secret
        self.url = f"ws://127.0.0.1:{settings.port}/ws"
        self.dashboards: dict[str, Any] = {}

    def token(self, user: str, name: str = "") -> str:
        from connectors.sinks.inapp.auth import issue

        s = self.settings
        return issue(self.secret, user, org="make-run", ttl_s=24 * 3600, name=name,
                     audience=s.jwt_audience, issuer=s.jwt_issuer, now=time.time())  # fmt: skip

    def inbox(self, user: str, name: str = "") -> str:
        """The inbox page of `user`, logged in as `name` (the display name others see)."""
        return f"http://127.0.0.1:{self.settings.port}/inbox#token={self.token(user, name)}"

    def watch(self, user: str, name: str) -> None:
        """Open `user`'s dashboard (once); it prints what it is shown and acknowledges it."""
        from connectors.sinks.inapp.dashboard import Dashboard

        def shown(frame: dict[str, Any]) -> None:
            if frame.get("type") == "notification":
                print(f"  shown      {frame['notification_type']:<28} inapp     {name:<8} "
                      f"dashboard: {frame['title']!r}: {frame['body']} (offset {frame['offset']})",
                      flush=True)  # fmt: skip

        if user not in self.dashboards:
            self.dashboards[user] = Dashboard(self.url, self.token(user, name), shown)

    def close(self) -> None:
        for dashboard in self.dashboards.values():
            dashboard.close()


@contextlib.contextmanager
def sla_running(bootstrap: str, codecs: TopicCodecs) -> Iterator[Any]:
    """The SLA agent on a thread, on the demo's compressed windows."""
    from streams.logic.sla import Thresholds
    from streams.sla.process import SlaAgent
    from streams.sla.settings import SlaSettings

    agent = SlaAgent(
        bootstrap,
        codecs,
        SlaSettings(**DEMO_SLA),
        default_thresholds=Thresholds(latency_p99_ms=60_000, min_requests=3),
    )
    running = Background(agent.run, "sla")
    try:
        yield agent
    finally:
        running.stop()


@contextlib.contextmanager
def ingest_running(bootstrap: str, codecs: TopicCodecs) -> Iterator[tuple[str, str]]:
    """The inbound webhook gateway on a thread with one source, a vendor CRM (Tave-style,
    Bearer token); yields (its URL for that source, the token)."""
    import asyncio
    import secrets
    import threading

    from connectors.sources.webhooks.config import parse_gateway_config
    from connectors.sources.webhooks.gateway import running_gateway

    token = secrets.token_urlsafe(24)
    config = parse_gateway_config(
        {"host": "127.0.0.1", "port": 0, "sources": {"tave": {"method": "bearer",
                                                                "tokens": [token]}}}, {}
    )  # fmt: skip
    bound: list[int] = []

    async def main(stop: threading.Event) -> None:
        async with running_gateway(config, bootstrap, codecs) as (_, port):
            bound.append(port)
            while not stop.is_set():
                await asyncio.sleep(0.1)

    running = Background(lambda stop: asyncio.run(main(stop)), "ingest")
    deadline = time.monotonic() + 30
    while not bound:
        if time.monotonic() > deadline or not running.alive:
            running.stop()
            raise RuntimeError("the ingest gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{bound[0]}/webhooks/tave", token
    finally:
        running.stop()


@contextlib.contextmanager
def calendar_feed_running(bootstrap: str, settings: Settings, dsn: str) -> Iterator[None]:
    """`wedsync calendar-feed` on a thread with its own event loop: the vendors' own
    calendars (the photographer's Radicale collection) polled every few seconds."""
    import asyncio

    import httpx
    from connectors.calendar.caldav.config import CalDavConfig
    from connectors.calendar.feed.config import CalendarFeedConfig
    from connectors.calendar.feed.process import FeedSetup, run_feed
    from connectors.calendar.google.config import GoogleConfig
    from connectors.calendar.graph.config import GraphConfig
    from connectors.sinks.credentials import PostgresCredentialStore
    from connectors.sinks.settings import SinkSettings

    # the defaults, not the environment (the demo is self-contained), polled every 3 s
    config = CalendarFeedConfig.model_construct(
        poll_min=0.05, poll_soon_min=0.05, calendars_every_s=1.0, reauth_retry_min=0.1,
        health_every_s=2.0,
    )  # fmt: skip
    setup = FeedSetup(config, SinkSettings.model_construct(), GoogleConfig.model_construct(),
                      GraphConfig.model_construct(), CalDavConfig.model_construct())  # fmt: skip
    store = PostgresCredentialStore(dsn)

    def run(stop: Any) -> None:
        async def main() -> None:
            done = asyncio.Event()

            async def watch_stop() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.2)
                done.set()

            watcher = asyncio.create_task(watch_stop())
            async with httpx.AsyncClient(timeout=10) as http:  # loopback providers only
                await run_feed(settings, bootstrap, done, setup, credentials=store, http=http)
            watcher.cancel()

        asyncio.run(main())

    running = Background(run, "calendar-feed")
    try:
        yield
    finally:
        running.stop()
        store.close()
