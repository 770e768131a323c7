"""`make run`: a wedding week on the platform's schema, from SQL to routed deliveries.

The embedded broker, a throwaway PostgreSQL with `schemas/platform/platform.sql`, the CDC
source (in this process), the Faust worker and its routing process. It seeds one wedding
with five vendors (`streams.scenario`), plays the four workflows as SQL, and shows every
delivery as routing writes it, per event, recipient and channel, then checks them against
what the rules and preferences imply. Ctrl-C (or SIGTERM) stops CDC, worker, PostgreSQL and
broker in that order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streams import devdb, scenario, topics
from streams.background import Background
from streams.kafka.admin import create_topics
from streams.kafka.broker import die_with_parent, free_port, kafka_broker
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings


@contextlib.contextmanager
def worker_process(bootstrap: str, settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`wedsync worker` as a child process that cannot outlive us."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEDSYNC_WEB_PORT": str(free_port()),
        "WEDSYNC_APP_ID": settings.app_id,
        "WEDSYNC_LOG_LEVEL": os.environ.get("WEDSYNC_LOG_LEVEL", "warn"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
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


NAMES = {"photo": "Photo", "venue": "Venue", "florist": "Florist", "band": "Band",
         "cake": "Cake"}  # fmt: skip


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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


def _delivery_reader(bootstrap: str) -> Consumer:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wedsync-demo",
                         "enable.auto.commit": False, "log.connection.close": False})  # fmt: skip
    consumer.assign([TopicPartition(t.deliver.name, p, 0) for t in topics.DELIVER.values()
                     for p in range(t.deliver.partitions)])  # fmt: skip
    return consumer


SINK_KINDS = tuple(d for d in topics.Destination if d is not topics.Destination.INAPP)


@contextlib.contextmanager
def sinks_running(bootstrap: str, codecs: TopicCodecs, local: Any, dsn: str) -> Iterator[None]:
    """One sink runtime per destination kind (in-app has its gateway), each on a thread,
    its connector pointed at the local providers, credentials read from the database."""
    from connectors.sinks.credentials import PostgresCredentialStore
    from connectors.sinks.runtime import SinkRuntime

    store = PostgresCredentialStore(dsn)
    running = [
        Background(
            SinkRuntime(local.connector(kind), bootstrap=bootstrap, codecs=codecs,
                        credentials=store).run_blocking,
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

    def token(self, user: str) -> str:
        from connectors.sinks.inapp.auth import issue

        s = self.settings
        return issue(self.secret, user, org="make-run", ttl_s=24 * 3600,
                     audience=s.jwt_audience, issuer=s.jwt_issuer, now=time.time())  # fmt: skip

    def inbox(self, user: str) -> str:
        return f"http://127.0.0.1:{self.settings.port}/inbox#token={self.token(user)}"

    def watch(self, user: str, name: str) -> None:
        """Open `user`'s dashboard (once); it prints what it is shown and acknowledges it."""
        from connectors.sinks.inapp.dashboard import Dashboard

        def shown(frame: dict[str, Any]) -> None:
            if frame.get("type") == "notification":
                print(f"  shown      {frame['notification_type']:<28} inapp     {name:<8} "
                      f"dashboard: {frame['title']!r} (offset {frame['offset']})",
                      flush=True)  # fmt: skip

        if user not in self.dashboards:
            self.dashboards[user] = Dashboard(self.url, self.token(user), shown)

    def close(self) -> None:
        for dashboard in self.dashboards.values():
            dashboard.close()


def _results_reader(bootstrap: str) -> Consumer:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wedsync-demo-results",
                         "enable.auto.commit": False, "log.connection.close": False})  # fmt: skip
    results = topics.DELIVERY_RESULTS
    consumer.assign([TopicPartition(results.name, p, 0) for p in range(results.partitions)])
    return consumer


def _target(record: dict[str, Any]) -> str:
    """Where a delivery goes, without secrets or message content."""
    for field in ("to_address", "channel", "to_number", "user_id", "endpoint_url"):
        if record.get(field):
            return str(record[field])
    return str(record.get("calendar_id") or "")


def run_demo(settings: Settings, *, once: bool, timeout: float = 120.0) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    for noisy in ("mail.log", "wedsync.audit", "wedsync.fake.smtp", "aiohttp.access",
                  "websockets.server", "connectors.sinks.inapp.server"):  # fmt: skip
        logging.getLogger(noisy).setLevel(logging.WARNING)  # the results lines say it all
    if not devdb.available():
        print(f"make run needs the PostgreSQL 15 server binaries in {devdb.PG_BIN}; `make "
              "system-deps` installs them (Debian's postgresql-15)", file=sys.stderr)  # fmt: skip
        return 1
    from connectors.sinks.local import LocalProviders

    codecs = TopicCodecs.from_settings(settings)
    k = scenario.ids()
    name_of = {k[v]: NAMES[v] for v in scenario.VENDORS}
    want = scenario.expected(k)
    try:
        with kafka_broker(settings.kafka_bootstrap_servers) as bootstrap, \
                devdb.throwaway_postgres() as server, LocalProviders() as local:  # fmt: skip
            create_topics(bootstrap, replication_factor=settings.replication_factor)
            print(f"[1/5] Kafka broker at {bootstrap}; {len(topics.ALL)} catalog topics",
                  flush=True)  # fmt: skip
            dsn = devdb.create_platform_database(server, "wedsync")
            import psycopg2

            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            with contextlib.closing(conn), conn.cursor() as cur:
                scenario.seed(cur, k, local.endpoints())
                print(f"[2/5] PostgreSQL on 127.0.0.1:{server.port} with the platform schema "
                      "(schemas/platform/platform.sql): one wedding, four vendors, a fifth "
                      "to be linked", flush=True)  # fmt: skip
                with cdc_running(bootstrap, server, codecs) as slot, \
                        worker_process(bootstrap, settings) as worker, \
                        sinks_running(bootstrap, codecs, local, dsn), \
                        inapp_running(bootstrap, codecs) as inapp:  # fmt: skip
                    print(f"[3/5] CDC streaming from slot {slot}; worker, routing process and "
                          f"sinks ({', '.join(d.value for d in SINK_KINDS)}) starting; local "
                          "providers: SMTP capture, Radicale, fake Slack, Twilio, CRM and "
                          "webhook receiver; in-app gateway on "
                          f"{inapp.url}. The photographer's inbox page:\n      "
                          f"{inapp.inbox(k['photo'])}", flush=True)  # fmt: skip
                    scenario.play(cur, k)
                    print("[4/5] played: a form response, a journey milestone, the wedding "
                          "moved (a cake maker linked in the same transaction), a couple's "
                          "profile update", flush=True)  # fmt: skip
                    return _show_deliveries(bootstrap, codecs, worker, name_of, want, once,
                                            timeout, local, inapp)  # fmt: skip
    except KeyboardInterrupt:
        print("\nstopped: CDC, worker, PostgreSQL and broker", flush=True)
        return 0


def _show_deliveries(
    bootstrap: str,
    codecs: TopicCodecs,
    worker: subprocess.Popen[bytes],
    name_of: dict[str, str],
    want: set[tuple[str, str, str]],
    once: bool,
    timeout: float,
    local: Any,
    inapp: InApp,
) -> int:
    print("[5/5] deliveries as routed (event, channel, recipient, target), then as the "
          "providers answered (outcome, status, provider's id, commit -> answer):",
          flush=True)  # fmt: skip
    consumer, ledger = _delivery_reader(bootstrap), _results_reader(bootstrap)
    by_topic = {t.deliver.name: d for d, t in topics.DELIVER.items()}
    got: set[tuple[str, str, str]] = set()
    routed: set[str] = set()  # delivery ids a sink should deliver
    delivered: dict[str, float] = {}  # delivery id -> commit -> provider answer, ms
    reported = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            if worker.poll() is not None:
                print(f"worker exited with {worker.returncode}", file=sys.stderr)
                return 1
            if not reported and time.monotonic() > deadline:
                missing = sorted(want - got)
                print(f"timed out; missing {len(missing)} routed: {missing[:5]}; "
                      f"{len(routed - set(delivered))} not delivered", file=sys.stderr)  # fmt: skip
                return 1
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    continue
                dest = by_topic[msg.topic() or ""]
                record = codecs[topics.DELIVER[dest].deliver].decode(msg.value())
                recipient = record.get("recipient_id") or ""
                got.add((record["event_type"], dest.value, recipient))
                routed.add(record["delivery_id"])
                if dest is topics.Destination.INAPP:
                    inapp.watch(record["user_id"], name_of.get(recipient, recipient))
                print(f"  routed     {record['event_type']:<28} {dest.value:<9} "
                      f"{name_of.get(recipient, recipient):<8} {_target(record)}",
                      flush=True)  # fmt: skip
            for msg in ledger.consume(500, 0.2):
                if msg.error():
                    continue
                result = codecs[topics.DELIVERY_RESULTS].decode(msg.value())
                lag = result["completed_at_ms"] - result["source_ts_ms"]
                if result["outcome"] in ("delivered", "seen"):  # seen: on a dashboard
                    delivered[result["delivery_id"]] = lag
                print(f"  {result['outcome']:<10} {result['event_type']:<28} "
                      f"{result['destination']:<9} {result['target'][:40]:<40} "
                      f"status={result['status_code']} id={(result['provider_id'] or '-')[:24]} "
                      f"{lag} ms" + (f" ({result['error_class']})" if result["error_class"]
                                     else ""), flush=True)  # fmt: skip
            if want <= got and routed <= set(delivered) and not reported:
                reported = True
                _summary(got, delivered, local)
                if once:
                    return 0 if got == want else 1
                print("still running: change rows in the database and watch; Ctrl-C stops",
                      flush=True)  # fmt: skip
    finally:
        consumer.close()
        ledger.close()


def _summary(got: set[tuple[str, str, str]], delivered: dict[str, float], local: Any) -> None:
    lags = sorted(delivered.values())
    smtp, slack = local.servers["smtp"], local.fake("slack")
    crm, hooks = local.fake("crm"), local.fake("webhook")
    print(f"OK: {len(got)} (event, channel, recipient) deliveries routed, every one the rules "
          f"and preferences imply; {len(delivered)} delivered by the sinks and shown on "
          f"dashboards by the in-app gateway. Commit -> provider's answer p50 "
          f"{lags[len(lags) // 2]:.0f} ms, max {lags[-1]:.0f} ms (includes start-up).",
          flush=True)  # fmt: skip
    print(f"    SMTP capture: {len(smtp.messages)} emails | Slack fake: "
          f"{slack.counters['messages_posted']} messages | CRM fake: "
          f"{crm.counters['side_effects']} calls | webhook receiver: "
          f"{hooks.counters['side_effects']} signed events, {hooks.counters['bad_signature']} "
          f"bad signatures | Radicale: {local.calendar_url}", flush=True)  # fmt: skip
