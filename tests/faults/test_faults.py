"""Nothing accepted is lost: the pipeline's processes under a steady load of form responses,
each killed in turn (kill -9, SIGTERM) and restarted with the same command, a provider
refusing an attempt, and one broker of three killed; receivers of our own count what
arrives, and `wedsync audit` must agree.

Each form response of N suppliers must give exactly one email, one photography-CRM call, one
signed customer webhook and one Slack message. Per fault and destination the table says:
expected, delivered (at least once), lost (neither delivered nor dead-lettered), repeated
(accepted more than once), second side effects (distinct idempotency ids for one row at an
idempotent receiver), dead-lettered (the audit's final outcome), recovery (from the strike to
the first arrival of a row inserted after it), worst (the slowest row's insert-to-arrival
time) and what the audit says of every row not received.

Asserted: lost = 0, no second side effect at the CRM and webhook receivers, repeats at email
and Slack at most what one sink process can have in flight, and `wedsync audit` over the run
exits 0. The table of the last run is printed (on a failure, with `-s` or `-rP`) and written to
`.cache/faults/<test>.txt`."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from streams.dev.kraft import KafkaCluster
from streams.kafka.codec import TopicCodecs
from streams.settings import REPO_ROOT

from tests.faults.load import Load, seed
from tests.faults.pipeline import IN_FLIGHT, SINKS, SLACK_TOKEN, Pipeline
from tests.faults.receivers import HttpReceivers, Ledger, SmtpReceiver
from tests.faults.report import evidence, lines_of, problems, row_states, table
from tests.faults.run import (
    Fault,
    Run,
    broker_kill,
    controller_kill,
    kill9,
    refusal,
    routing_kill,
    sigterm_email,
)
from tests.integration.cdc_support import PlatformDb

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(900)]

SMTP_LATENCY_S = 0.2  # a relay's usual answer time

PROCESS_FAULTS = [
    kill9("cdc"),
    kill9("worker"),
    routing_kill(),
    *(kill9(kind) for kind in SINKS),
    sigterm_email(),
    refusal(),
]


@contextlib.contextmanager
def running(nodes: int, platform: PlatformDb, codecs: TopicCodecs, workdir: Path,
            suppliers: int) -> Iterator[Run]:  # fmt: skip
    ledger = Ledger()
    http = HttpReceivers(ledger, SLACK_TOKEN).start()
    smtp = SmtpReceiver(ledger, latency_s=SMTP_LATENCY_S).start()
    cluster = KafkaCluster(nodes=nodes, base_dir=workdir / "kafka")
    load = None
    pipeline = None
    try:
        cluster.start()
        load = Load(platform, seed(platform, http, suppliers))
        pipeline = Pipeline(cluster.bootstrap_servers, platform, workdir,
                            f"faults-{uuid.uuid4().hex[:8]}", http.url, smtp.port,
                            replication=cluster.replication_factor)  # fmt: skip

        def streaming(slot: str) -> bool:
            with psycopg2.connect(platform.dsn) as conn, conn.cursor() as cur:
                cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                            (slot,))  # fmt: skip
                row = cur.fetchone()
                return bool(row and row[0])

        pipeline.start(streaming)
        yield Run(pipeline, load, ledger, codecs, cluster, smtp, SMTP_LATENCY_S)
    finally:
        if load is not None:
            load.shutdown()
        if pipeline is not None:
            pipeline.stop()
        cluster.stop()
        smtp.stop()
        http.stop()


def verdict(run: Run, name: str, started: float) -> tuple[str, list[str]]:
    """The table, the audit's word and everything that must fail the test."""
    rows = [r for w in run.windows for r in w.rows]
    report = run.audit_of(rows)
    states = row_states(report)
    for window in run.windows:
        window.notes.extend(evidence(report, window.rows))
    lines = [ln for w in run.windows for ln in lines_of(w, run.ledger, states)]
    found = problems(lines, IN_FLIGHT)
    code, said = run.cli_audit(rows)
    if code != 0:
        found.append(f"wedsync audit exited {code}: {said.strip().splitlines()[-1]}")
    found.extend(run.crashed)
    bad = {d: n for d, n in run.ledger.bad.items() if n}
    if bad:
        found.append(f"refused as unsigned or unauthenticated: {bad}")
    notes = [
        line
        for w in run.windows
        for line in (
            f"  {w.fault}: settled {w.settled_s:.1f} s after the load",
            *(f"    {note}" for note in w.notes),
        )
    ]
    errors = run.pipeline.errors()
    text = "\n".join([
        f"{name}: {len(rows)} rows, {len(rows) * 4} expected deliveries, "
        f"{time.monotonic() - started:.0f} s",
        table(lines), "notes:", *notes,
        f"wedsync audit (exit {code}), last lines:", *said.strip().splitlines()[-12:],
        "error lines in the process logs: "
        + (", ".join(f"{p} {len(e)}" for p, e in errors.items()) or "none"),
        *(f"  {p}: {e[0]}" for p, e in errors.items()),
    ])  # fmt: skip
    out = REPO_ROOT / ".cache" / "faults"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text(text + "\n")
    return text, found


def _suite(name: str, nodes: int, faults: list[Fault], platform: PlatformDb,
           codecs: TopicCodecs, workdir: Path, capsys: pytest.CaptureFixture[str],
           suppliers: int) -> None:  # fmt: skip
    only = [w.strip() for w in os.environ.get("WEDSYNC_FAULTS_ONLY", "").split(",") if w.strip()]
    if only:  # a developer's shortcut: the faults whose names contain one of these
        faults = [f for f in faults if any(w in f.name for w in only)]
    started = time.monotonic()
    with running(nodes, platform, codecs, workdir, suppliers) as run:
        run.warm_up(rows=suppliers // 5)
        for fault in faults:
            run.strike(fault)
        text, found = verdict(run, name, started)
    with capsys.disabled():
        print("\n" + text)
    assert found == [], "\n".join(found) + "\n\n" + text


def test_no_process_fault_loses_a_notification(
    platform: PlatformDb, codecs: TopicCodecs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _suite("processes", 1, PROCESS_FAULTS, platform, codecs, tmp_path, capsys, suppliers=30)


def test_killing_a_broker_of_three_loses_no_notification(
    platform: PlatformDb, codecs: TopicCodecs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = [broker_kill(), controller_kill()]
    _suite("broker", 3, faults, platform, codecs, tmp_path, capsys, suppliers=20)
