"""The pipeline as separate OS processes, started with the real CLI commands and configured
by environment as the README says: `wedsync cdc`, `wedsync worker` (which starts and
supervises its routing child), `wedsync sink <kind>` for email, crm, webhook and slack.
Every process can be killed (SIGKILL, SIGTERM) and started again with the same command and
environment; each writes its output to `<workdir>/<name>.log`, kept as evidence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.child import die_with_parent
from streams.dev.broker import free_port
from streams.dev.local import allow_list_env

from tests.integration.cdc_support import PlatformDb

WEDSYNC = str(Path(sys.executable).with_name("wedsync"))
SINKS = ("email", "crm", "webhook", "slack")
PARTITIONS = 3
IN_FLIGHT = 20  # WEDSYNC_SINK_CONCURRENCY: the most deliveries a sink process has in flight
SLACK_TOKEN = "xoxb-faults-platform-token"


def _port_pair() -> int:
    """A free port whose next one is free too (the worker's routing child takes port + 1)."""
    for _ in range(50):
        port = free_port()
        try:
            import socket

            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


@dataclass
class Proc:
    """One process of the pipeline, restartable with the same command and environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n===== start {self.starts} at {time.time():.3f}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=die_with_parent, start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """kill -9, reaped."""
        if self.alive():
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait()

    def terminate(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> float | None:
        """Seconds until it exited (None: still running after `timeout`)."""
        assert self.popen is not None
        started = time.monotonic()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - started

    def stop(self) -> None:
        self.terminate()
        if self.popen is not None and self.wait_exit(30) is None:
            self.kill()


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


@dataclass
class Pipeline:
    bootstrap: str
    db: PlatformDb
    workdir: Path
    app_id: str
    http_url: str
    smtp_port: int
    replication: int = 1
    procs: dict[str, Proc] = field(default_factory=dict)
    route_apart: bool = False  # `wedsync route` as its own process, not the worker's child

    def common_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "WEDSYNC_PARTITIONS": str(PARTITIONS),
            "WEDSYNC_REPLICATION_FACTOR": str(self.replication),
            "WEDSYNC_APP_ID": self.app_id,
            "WEDSYNC_LOG_LEVEL": "warn",
        }

    def create_topics(self) -> None:
        done = subprocess.run([WEDSYNC, "topics", "create"], env=self.common_env(),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]

    def build(self) -> None:
        server, common = self.db.server, self.common_env()
        suffix = self.app_id.replace("-", "_")
        self.procs["cdc"] = self._proc("cdc", ["cdc"], {
            **common, "WEDSYNC_CDC_HOST": server.host, "WEDSYNC_CDC_PORT": str(server.port),
            "WEDSYNC_CDC_USER": server.user, "WEDSYNC_CDC_DBNAME": self.db.dbname,
            "WEDSYNC_CDC_SLOT_NAME": f"slot_{suffix}", "WEDSYNC_CDC_PUBLICATION": f"pub_{suffix}",
            "WEDSYNC_CDC_HEARTBEAT_INTERVAL_S": "1", "WEDSYNC_METRICS_PORT": str(free_port()),
        })  # fmt: skip
        worker = ["worker"] if self.route_apart else ["worker", "--with-route"]
        self.procs["worker"] = self._proc("worker", worker, {
            **common, "WEDSYNC_WEB_PORT": str(free_port()),
            "WEDSYNC_METRICS_PORT": str(_port_pair()),
        })  # fmt: skip
        if self.route_apart:
            self.procs["route"] = self._proc(
                "route", ["route"], {**common, "WEDSYNC_METRICS_PORT": str(free_port())}
            )
        sink_env = {
            **common, "WEDSYNC_SINK_PLATFORM_DSN": self.db.dsn,
            "WEDSYNC_SINK_CONCURRENCY": str(IN_FLIGHT),
            "WEDSYNC_SINK_RETRY_SCHEDULE_S": "1,2,4,8,15,30", "WEDSYNC_SINK_RETRY_JITTER": "0.1",
            "WEDSYNC_SINK_BREAKER_COOLDOWN_S": "3",
            **allow_list_env(_port_of(self.http_url), self.smtp_port),
            "WEDSYNC_EMAIL_SMTP_HOST": "127.0.0.1", "WEDSYNC_EMAIL_SMTP_PORT": str(self.smtp_port),
            "WEDSYNC_SLACK_API_BASE_URL": self.http_url, "WEDSYNC_SLACK_BOT_TOKEN": SLACK_TOKEN,
            "WEDSYNC_SLACK_RATE_PER_S": "50", "WEDSYNC_SLACK_BURST": "50",
        }  # fmt: skip
        for kind in SINKS:
            self.procs[kind] = self._proc(
                kind, ["sink", kind], {**sink_env, "WEDSYNC_METRICS_PORT": str(free_port())}
            )

    def _proc(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        return Proc(name, [WEDSYNC, *args], env, self.workdir / f"{name}.log")

    def start(self, slot_streaming: object) -> None:
        """Topics, then CDC (until its slot streams), the worker and the sinks."""
        assert callable(slot_streaming)
        self.create_topics()
        self.build()
        self.procs["cdc"].start()
        deadline = time.monotonic() + 90
        while not slot_streaming(f"slot_{self.app_id.replace('-', '_')}"):
            assert self.procs["cdc"].alive(), "wedsync cdc exited before it streamed\n" + (
                self.tail("cdc")
            )
            assert time.monotonic() < deadline, "the CDC source did not stream within 90 s"
            time.sleep(0.1)
        for name in ("worker", *(["route"] if self.route_apart else []), *SINKS):
            self.procs[name].start()

    def stop(self) -> None:
        for name in (*SINKS, "route", "worker", "cdc"):
            if name in self.procs:
                self.procs[name].stop()

    def routing_child(self) -> int | None:
        """The pid of the worker's `wedsync route` child, from /proc."""
        worker = self.procs["worker"].pid
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == worker and b"route" in cmdline:
                return int(entry.name)
        return None

    def dead(self) -> list[str]:
        """Processes that exited on their own."""
        return [name for name, p in self.procs.items() if p.popen is not None and not p.alive()]

    def tail(self, name: str, lines: int = 30) -> str:
        text = self.procs[name].log.read_text(errors="replace").splitlines()
        return f"--- {name}.log (last {lines} lines)\n" + "\n".join(text[-lines:])

    def errors(self) -> dict[str, list[str]]:
        """Per process, the log lines that name an error or a traceback (evidence)."""
        out: dict[str, list[str]] = {}
        for name, proc in self.procs.items():
            if not proc.log.exists():
                continue
            found = [
                line[:240] for line in proc.log.read_text(errors="replace").splitlines()
                if any(w in line for w in (" ERROR ", "[ERROR]", "Traceback", "CRITICAL"))
                or line.startswith("wedsync: ")
            ]  # fmt: skip
            if found:
                out[name] = found
        return out
