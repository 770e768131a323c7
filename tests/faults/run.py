"""One fault suite run: a pipeline of OS processes under a steady load, each fault struck in
turn inside its own window of rows, then a wait (event-driven, bounded) until every row of
the window reached every receiver or nothing more can come, and the verdict.

A window: load starts; `STRIKE_AT_S` later the fault strikes (kill -9, SIGTERM, a refusing
provider, a dead broker); `UNDO_AFTER_S` later it is undone (the same command started again,
the broker restarted); the load goes on until `LOAD_S` (and at least `LOAD_AFTER_UNDO_S` after
the undo); then the receivers are polled until every row arrived at every destination, or
until `SETTLE_S`, or until `wedsync audit` says every missing delivery has settled (lost, or a
final outcome other than delivered): waiting longer would not bring it."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from streams import topics
from streams.audit import audit
from streams.dev.kraft import KafkaCluster
from streams.kafka.codec import TopicCodecs
from streams.logic.audit import Audit, Finding

from tests.faults.load import Load, Row
from tests.faults.pipeline import PARTITIONS, SINKS, WEDSYNC, Pipeline
from tests.faults.receivers import DESTINATIONS, Ledger, SmtpReceiver
from tests.faults.report import WAITING, Window, row_states

STRIKE_AT_S = 2.0
UNDO_AFTER_S = 4.0
LOAD_S = 9.0
LOAD_AFTER_UNDO_S = 2.0
SETTLE_S = 45.0
EXIT_WAIT_S = 45.0  # longest a SIGTERM'd process may take to stop before it is killed
SLOW_SMTP_S = 1.0  # SMTP's answer time at the email sink's SIGTERM: ~rate x this in flight
REFUSED_PAIRS = 4
MAX_RESTARTS = 3  # of a process that exits on its own, per run
EVIDENCE = 6  # audit findings quoted in a window's notes when it gives up


UNSEEN = "not on the source topic"


def _said(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.most_common()) or "nothing yet"


def _until(deadline: float) -> None:
    """The window's schedule (load for a time), not a wait for a condition."""
    time.sleep(max(0.0, deadline - time.monotonic()))


@dataclass(frozen=True)
class Fault:
    name: str
    strike: Callable[[Run, Window], None]
    undo: Callable[[Run, Window], None]
    ready: Callable[[Run, Window], None] | None = None  # before the window opens


@dataclass
class Run:
    pipeline: Pipeline
    load: Load
    ledger: Ledger
    codecs: TopicCodecs
    cluster: KafkaCluster
    smtp: SmtpReceiver
    smtp_latency_s: float
    windows: list[Window] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)

    # ---- windows ---------------------------------------------------------------------------
    def warm_up(self, rows: int, timeout: float = 180.0) -> float:
        """A few rows through the whole pipeline before any fault: every process is up."""
        started = time.monotonic()
        batch = [self.load.insert("warm-up") for _ in range(rows)]
        missing = self.wait_arrived(batch, timeout)
        assert not missing, (
            f"warm-up: {len(missing)} deliveries never arrived in {timeout:.0f} s\n"
            + "\n".join(self.pipeline.tail(n, 15) for n in self.pipeline.procs)
        )
        return time.monotonic() - started

    def strike(self, fault: Fault) -> Window:
        window = Window(fault.name, [], struck=0.0, undone=0.0)
        if fault.ready is not None:
            fault.ready(self, window)
        self.load.open(fault.name)
        opened = time.monotonic()
        _until(opened + STRIKE_AT_S)
        window.struck = time.monotonic()
        fault.strike(self, window)
        _until(window.struck + UNDO_AFTER_S)
        fault.undo(self, window)
        window.undone = time.monotonic()
        _until(max(opened + LOAD_S, window.undone + LOAD_AFTER_UNDO_S))
        self.load.close()
        closed = time.monotonic()
        window.rows = self.load.of(fault.name)
        self.settle(window)
        window.settled_s = time.monotonic() - closed
        self._restart_crashed(window)
        self.windows.append(window)
        return window

    def settle(self, window: Window) -> None:
        start = time.monotonic()
        next_audit = start + 6.0
        said: Counter[str] = Counter()
        findings: list[Finding] = []
        while missing := self.missing(window.rows):
            waited = time.monotonic() - start
            if waited > SETTLE_S:
                window.notes.append(f"gave up after {waited:.0f} s; the audit said {_said(said)}")
                window.notes.extend(f.line() for f in findings[:EVIDENCE])
                return
            self._restart_crashed(window)
            if time.monotonic() >= next_audit:
                report = self.audit_of(window.rows)
                states, findings = row_states(report), report.findings
                missing = self.missing(window.rows)  # what arrived while the audit read
                said = Counter(states.get(m, "not on the source topic") for m in missing)
                if missing and not WAITING.intersection(said) and UNSEEN not in said:
                    window.notes.append(
                        f"stopped waiting after {waited:.0f} s: the audit settled all "
                        f"{len(missing)} missing: {_said(said)}"
                    )
                    return
                next_audit = time.monotonic() + 4.0
            time.sleep(0.2)

    def missing(self, rows: list[Row]) -> set[tuple[str, str]]:
        arrived = self.ledger.arrived(r.tag for r in rows)
        return {(r.tag, d) for r in rows for d in DESTINATIONS if r.tag not in arrived[d]}

    def wait_arrived(self, rows: list[Row], timeout: float) -> set[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        while (missing := self.missing(rows)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return missing

    def audit_of(self, rows: list[Row]) -> Audit:
        """`wedsync audit` (in process) over the rows' commit times."""
        since, until = self.span(rows)
        return audit(self.pipeline.bootstrap, self.codecs, self.pipeline.app_id, since, until,
                     timeout=30)  # fmt: skip

    @staticmethod
    def span(rows: list[Row]) -> tuple[int, int]:
        """The rows' commit times, widened for the database's clock (it stamps the commit
        before our insert returns)."""
        return min(r.committed_ms for r in rows) - 5000, max(r.committed_ms for r in rows) + 1000

    def _restart_crashed(self, window: Window) -> None:
        """Start again what exited on its own (a supervisor's job), noting it as a problem."""
        for name in self.pipeline.dead():
            proc = self.pipeline.procs[name]
            if sum(note.startswith(f"{name} ") for note in self.crashed) >= MAX_RESTARTS:
                continue  # crash-looping: left down, the table shows what that cost
            code = proc.popen.returncode if proc.popen else None
            note = f"{name} exited on its own (code {code}) during {window.fault}; restarted"
            window.notes.append(note)
            self.crashed.append(note)
            proc.start()

    def cli_audit(self, rows: list[Row]) -> tuple[int, str]:
        """`wedsync audit --since --until` over the rows, as an operator runs it."""
        since, until = self.span(rows)
        iso = [dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat() for ms in (since, until)]
        done = subprocess.run(
            [WEDSYNC, "audit", "--since", iso[0], "--until", iso[1]],
            env=self.pipeline.common_env(), capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        said = done.stdout if done.returncode == 0 else done.stdout + done.stderr[-3000:]
        return done.returncode, said


# ---- the faults -----------------------------------------------------------------------------
def kill9(name: str) -> Fault:
    def strike(run: Run, window: Window) -> None:
        run.pipeline.procs[name].kill()

    def undo(run: Run, window: Window) -> None:
        run.pipeline.procs[name].start()

    return Fault(f"{name} kill -9", strike, undo)


def routing_kill() -> Fault:
    """kill -9 of the worker's routing child; the worker's supervisor starts it again."""
    killed: list[int] = []

    def strike(run: Run, window: Window) -> None:
        pid = run.pipeline.routing_child()
        assert pid is not None, "the worker has no routing child"
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def undo(run: Run, window: Window) -> None:
        deadline = time.monotonic() + 30
        while (pid := run.pipeline.routing_child()) in (None, *killed):
            if time.monotonic() > deadline:
                window.notes.append("the worker did not restart its routing child in 30 s")
                return
            time.sleep(0.1)
        window.notes.append(f"routing child restarted by the worker (pid {pid})")

    return Fault("routing kill -9", strike, undo)


def sigterm_email() -> Fault:
    """SIGTERM of the email sink while the SMTP server answers slowly (`SLOW_SMTP_S` per
    message), so sends are in flight; started again once it exited (and `UNDO_AFTER_S`)."""
    exited: list[float] = []

    def ready(run: Run, window: Window) -> None:
        run.smtp.latency_s = SLOW_SMTP_S

    def strike(run: Run, window: Window) -> None:
        proc = run.pipeline.procs["email"]
        popen = proc.popen
        assert popen is not None
        window.notes.append(f"{run.smtp.in_flight} messages in flight at the SMTP server")
        proc.terminate()
        threading.Thread(target=lambda: (popen.wait(), exited.append(time.monotonic())),
                         daemon=True).start()  # fmt: skip

    def undo(run: Run, window: Window) -> None:
        proc = run.pipeline.procs["email"]
        if proc.wait_exit(EXIT_WAIT_S) is None:
            window.notes.append(f"email still running {EXIT_WAIT_S:.0f} s after SIGTERM: killed")
            proc.kill()
        else:
            code = proc.popen.returncode if proc.popen else "?"
            took = (exited[-1] if exited else time.monotonic()) - window.struck
            window.notes.append(f"email exited {took:.1f} s after SIGTERM (code {code}), SMTP "
                                f"answering in {SLOW_SMTP_S} s")  # fmt: skip
        run.smtp.latency_s = run.smtp_latency_s
        proc.start()

    return Fault("email SIGTERM", strike, undo, ready)


def refusal() -> Fault:
    """Every provider refuses one attempt (HTTP 503, SMTP 451) of a row, and another row of
    the same supplier follows 0.3 s later; `REFUSED_PAIRS` times, a second apart."""

    def strike(run: Run, window: Window) -> None:
        for i in range(REFUSED_PAIRS):
            supplier = run.load.suppliers[i]
            first = str(uuid.uuid4())
            run.ledger.refuse_once(first)
            run.load.insert(window.fault, supplier=supplier, tag=first)
            time.sleep(0.3)
            run.load.insert(window.fault, supplier=supplier)
            time.sleep(0.7)
        window.notes.append(f"{REFUSED_PAIRS} rows refused once at every provider, each "
                            "followed 0.3 s later by a row of the same supplier")  # fmt: skip

    def undo(run: Run, window: Window) -> None:
        return None

    return Fault("provider refuses once", strike, undo)


BUSY_TOPICS = (topics.INGEST_CDC.name, topics.EVENTS.name, topics.DELIVERY_RESULTS.name,
               *(topics.DELIVER[topics.Destination(k)].deliver.name for k in SINKS))  # fmt: skip


def broker_kill() -> Fault:
    """kill -9 of the broker leading the most partitions of the busy topics; started again
    on the same ports and data (not waited for: the pipeline must find it back)."""
    chosen: list[int] = []

    def strike(run: Run, window: Window) -> None:
        from collections import Counter

        leaders: Counter[int] = Counter()
        for name in BUSY_TOPICS:
            for p in range(PARTITIONS):
                leaders[run.cluster.leader_of(name, p)] += 1
        node, led = leaders.most_common(1)[0]
        controller = run.cluster.active_controller()
        run.cluster.kill(node)
        chosen.append(node)
        also = " and the active controller" if node == controller else ""
        window.notes.append(
            f"killed broker {node}: leader of {led} of {sum(leaders.values())} busy "
            f"partitions{also}"
        )

    def undo(run: Run, window: Window) -> None:
        run.cluster.start_node(chosen[-1], wait=False)

    return Fault("broker kill -9", strike, undo)


def _wait_fully_replicated(cluster: KafkaCluster, timeout: float) -> float:
    """Until every node answers and every partition has all its replicas in sync (a second
    broker fault before that would be two at once); seconds waited."""
    from confluent_kafka.admin import AdminClient

    started = time.monotonic()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    while time.monotonic() - started < timeout:
        try:
            meta = admin.list_topics(timeout=5)
        except Exception:
            time.sleep(0.5)
            continue
        synced = all(
            len(p.isrs) == len(p.replicas)
            for t in meta.topics.values()
            for p in t.partitions.values()
        )
        if synced and len(meta.brokers) == len(cluster.members):
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"the cluster was not fully replicated {timeout:.0f} s after a restart")


def controller_kill() -> Fault:
    """kill -9 of the active KRaft controller (a combined node: a broker too)."""
    chosen: list[int] = []

    def ready(run: Run, window: Window) -> None:
        # a restarted broker catches up slowly under the suite's load
        waited = _wait_fully_replicated(run.cluster, timeout=240)
        window.notes.append(f"every partition fully in sync again after {waited:.1f} s")

    def strike(run: Run, window: Window) -> None:
        node = run.cluster.active_controller()
        run.cluster.kill(node)
        chosen.append(node)
        window.notes.append(f"killed broker {node}, the active controller")

    def undo(run: Run, window: Window) -> None:
        run.cluster.start_node(chosen[-1], wait=False)

    return Fault("controller kill -9", strike, undo, ready)
