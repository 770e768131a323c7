"""`make run`: a wedding week on the platform's schema, from SQL to every provider.

The embedded broker, a throwaway PostgreSQL with `schemas/platform/platform.sql`, the CDC
source, the Faust worker and its routing process, one sink per destination kind pointed at
local providers, the in-app gateway and the SLA agent (`streams.dev.demo_parts`). Act one seeds
one wedding with five vendors and plays the four workflows (`streams.dev.scenario`), then checks
every routed delivery against what the rules and preferences imply and that each one was
delivered; act two plays the rest of the week, where things go wrong and recover
(`streams.dev.week`). Everything is shown as it happens (`streams.dev.demo_view`). Ctrl-C (or
SIGTERM) stops every part, in reverse order.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from typing import Any

from streams import metrics
from streams.dev import db as devdb
from streams.dev import scenario
from streams.dev.broker import free_port
from streams.dev.demo_parts import (
    SINK_KINDS,
    calendar_feed_running,
    cdc_running,
    inapp_running,
    ingest_running,
    sinks_running,
    sla_running,
    worker_process,
)
from streams.dev.demo_view import Watch, integration_label
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import KafkaConnection
from streams.settings import Settings

NAMES = {"photo": "Photo", "venue": "Venue", "florist": "Florist", "band": "Band",
         "cake": "Cake"}  # fmt: skip
QUIET = ("mail.log", "wedsync.audit", "wedsync.fake.smtp", "aiohttp.access", "websockets.server",
         "connectors.sinks.inapp.server", "streams.sla.process", "connectors.sinks.runtime",
         "streams.observe")  # fmt: skip


def open_links(metrics_url: str, calendar_url: str) -> list[str]:
    """The board's 'open' box. The inbox address is not in it: a box wraps a long line
    inside its border, so the address is printed on its own line instead."""
    return ["inbox (photographer): the line after [3/5] above", f"metrics: {metrics_url}",
            f"calendar (Radicale): {calendar_url}"]  # fmt: skip


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    settings: Settings, kafka: KafkaConnection, *, once: bool, timeout: float = 120.0
) -> int:
    """The demo on `kafka` (a PLAINTEXT development broker the application started)."""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    metrics.export(*metrics.ROLES)  # every part runs in this one process
    logging.getLogger().setLevel(logging.WARNING)  # the board and the lines say it all
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not devdb.available():
        print(f"make run needs the PostgreSQL 15 server binaries in {devdb.PG_BIN}; `make "
              "system-deps` installs them (Debian's postgresql-15)", file=sys.stderr)  # fmt: skip
        return 1
    from streams.dev.local import LocalProviders

    codecs = TopicCodecs.from_settings(settings)
    k = scenario.ids()
    name_of = {k[v]: NAMES[v] for v in scenario.VENDORS} | {k["couple"]: "Alex & Sam"}
    try:
        with devdb.throwaway_postgres() as server, LocalProviders() as local:
            bootstrap = kafka.bootstrap_servers  # the demo's processes: a PLAINTEXT dev broker
            create_topics(bootstrap, replication_factor=settings.replication_factor)
            print(f"[1/5] Kafka broker at {bootstrap}; catalog topics created", flush=True)
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
                        inapp_running(bootstrap, codecs) as inapp, \
                        sla_running(bootstrap, codecs) as agent, \
                        ingest_running(bootstrap, codecs) as crm, \
                        calendar_feed_running(bootstrap, settings, dsn):  # fmt: skip
                    return _play(cur, k, local, bootstrap, codecs, slot, worker, inapp, agent,
                                 crm, name_of, once, timeout)  # fmt: skip
    except KeyboardInterrupt:
        print("\nstopped: sinks, SLA agent, in-app gateway, worker, CDC, PostgreSQL and "
              "broker", flush=True)  # fmt: skip
        return 0


def _play(cur: Any, k: dict[str, str], local: Any, bootstrap: str, codecs: TopicCodecs,
          slot: str, worker: Any, inapp: Any, agent: Any, crm: tuple[str, str],
          name_of: dict[str, str],
          once: bool, timeout: float) -> int:  # fmt: skip
    from streams.dev.week import play_week
    from streams.observe import serve

    metrics_port = free_port()
    metrics = serve(metrics_port)
    print(f"[3/5] CDC streaming from slot {slot}; worker, routing process, sinks "
          f"({', '.join(d.value for d in SINK_KINDS)}), in-app gateway on {inapp.url} and "
          f"SLA agent running; ingest gateway at {crm[0]}; local providers: SMTP capture, "
          "Radicale, fake Slack, Twilio, CRM and webhook receiver; this process's metrics: "
          f"http://127.0.0.1:{metrics_port}/metrics. The photographer's inbox page (the "
          "next line, whole):", flush=True)  # fmt: skip
    inbox = inapp.inbox(k["photo"], name_of[k["photo"]])
    print(inbox, flush=True)  # on its own line, outside any box: it can be copied whole
    watch = Watch(bootstrap, codecs, name_of, inapp.watch)
    watch.labels = {i: integration_label(vendor, kind)
                    for i, vendor, kind in scenario.integrations(cur)}  # fmt: skip
    watch.links = open_links(f"http://127.0.0.1:{metrics_port}/metrics", local.calendar_url)
    alive = lambda: worker.poll() is None  # noqa: E731
    try:
        scenario.play(cur, k)
        watch.chapter("[4/5] Sunday: a form response, a journey milestone, the wedding moved "
                      "(a cake maker linked in the same transaction), a couple's profile "
                      "update")  # fmt: skip
        want = scenario.expected(k)
        print("[5/5] deliveries as routed (event, channel, recipient, target), then as the "
              "providers answered (outcome, status, provider's id, commit -> answer):",
              flush=True)  # fmt: skip
        if not watch.until(lambda: want <= watch.got and watch.routed_ids <= set(watch.delivered),
                           timeout, "every routed delivery delivered", alive):  # fmt: skip
            watch.say(watch.missing(want), "red")
            return 1
        first_act = set(watch.got)
        _summary(watch, local)
        ok = play_week(cur, k, local, watch, agent, alive, crm)
        _week_summary(watch, local)
        if once:
            return 0 if ok and first_act == want else 1
        watch.say("still running: change rows in the database and watch; Ctrl-C stops")
        while alive():
            watch.pump()
        print(f"worker exited with {worker.returncode}", file=sys.stderr)
        return 1
    finally:
        watch.close()
        if metrics is not None:
            metrics.shutdown()


def _summary(watch: Watch, local: Any) -> None:
    lags = sorted(watch.delivered.values())
    smtp, slack = local.servers["smtp"], local.fake("slack")
    crm, hooks = local.fake("crm"), local.fake("webhook")
    watch.say(f"OK: {len(watch.got)} (event, channel, recipient) deliveries routed, every one "
              f"the rules and preferences imply; {len(watch.delivered)} delivered by the sinks "
              f"and shown on dashboards by the in-app gateway. Commit -> provider's answer p50 "
              f"{lags[len(lags) // 2]:.0f} ms, max {lags[-1]:.0f} ms (includes start-up).",
              "bold green")  # fmt: skip
    watch.say(f"    SMTP capture: {len(smtp.messages)} emails | Slack fake: "
              f"{slack.counters['messages_posted']} messages | CRM fake: "
              f"{crm.counters['side_effects']} calls | webhook receiver: "
              f"{hooks.counters['side_effects']} signed events, "
              f"{hooks.counters['bad_signature']} bad signatures | Radicale: "
              f"{local.calendar_url}")  # fmt: skip


def _week_summary(watch: Watch, local: Any) -> None:
    retries = sum(n for (_, outcome), n in watch.outcomes.items() if outcome == "retry_scheduled")
    dead = sum(n for (_, outcome), n in watch.outcomes.items() if outcome == "dead_lettered")
    paused = sum(n for (_, outcome), n in watch.outcomes.items() if outcome == "paused")
    lost = len(watch.routed_ids - set(watch.delivered))
    watch.say(f"week: {len(watch.routed_ids)} deliveries routed, {len(watch.delivered)} "
              f"delivered or shown, {lost} outstanding; {retries} retries, {paused} paused "
              f"while the calendar was disconnected, {dead} dead letters",
              "bold green" if not lost else "bold red")  # fmt: skip
    time.sleep(0)
