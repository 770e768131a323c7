"""The in-app gateway: memory per held connection and fan-out latency, against a bare
`websockets` broadcast server doing the same on the same machine in the same run.

Two phases, each run by both servers, every server on its own fresh embedded broker with the
in-app topics: `wedsync inapp` as deployed (its own process, HS256 tokens, default settings
but `MAX_CONNECTIONS`) and the baseline `bench/inapp_bare.py` (no auth, history, presence or
metrics; the gateway's transport settings). Load comes from `CLIENT_PROCESSES` processes
(bench/inapp_load.py: asyncio + the `websockets` client, `compression=None`, no client pings),
each connection one user (organisations of ten) sending `connect` with a token for its own
user and waiting for `connected`. Every process raises its soft RLIMIT_NOFILE to the hard
limit; when the hard limit cannot hold `CONNECTIONS` sockets plus headroom, fewer are held
and the output says so.

1. Connections. Once `/healthz` answers 200, ten connections are opened and closed (lazy
   imports and first-use caches are not per-connection costs) and, after a settle, the
   server's VmRSS is read: idle. The clients open `CONNECTIONS`; after a settle VmRSS is read
   again: (loaded - idle) / connections, in KiB. Kernel socket buffers are in neither figure.
2. Fan-out, to `FANOUT_USERS` connected users: a producer process writes `RATE` records a
   second for `SECONDS` to random ones, keyed by user as routing does, each stamped
   `routed_at_ms` just before it is handed to librdkafka; the clients record receive time
   minus `routed_at_ms` (one machine, one clock). Reported: p50/p95/p99 over every
   notification received, the count received against the count the broker acknowledged, and
   what else used the CPU meanwhile (the broker's share of a core, the machine's idle and
   stolen time). The baseline reads the topic with a plain Consumer (every partition
   assigned, the gateway's default `fetch.wait.max.ms`) and `broadcast`s each record to its
   user's connections. Not 10,000 users by default: on the embedded broker every record the
   gateway holds in the presence topic (one per connected user) makes each of its 5 ms
   fetches dearer, so at 10,000 the broker's CPU, not the gateway, sets the tail. On Tansu
   the broker alone (producer -> plain consumer) is already near or above the 100 ms target
   at p99; the ratio is the figure to read.

Knobs: BENCH_INAPP_CONNECTIONS (10000), BENCH_INAPP_FANOUT_USERS (2000), BENCH_INAPP_RATE
(1000), BENCH_INAPP_SECONDS (10). `run()` returns the lines to print; `make bench` calls it
(`python -m bench inapp` alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu
from bench.inapp_load import raise_nofile, token, user_id

ON_BROKER = True  # `make bench` runs this suite on each engine (bench.engines)

CONNECTIONS = int(os.environ.get("BENCH_INAPP_CONNECTIONS", "10000"))
FANOUT_USERS = int(os.environ.get("BENCH_INAPP_FANOUT_USERS", "2000"))
RATE = int(os.environ.get("BENCH_INAPP_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_INAPP_SECONDS", "10"))
CLIENT_PROCESSES = 4
FD_HEADROOM = 500  # the server's own files, broker connections, listening socket
SECRET = "bench-secret-of-32-bytes-or-more!!"
SETTLE_S = 3.0
TARGET_KIB = 20.0
TARGET_P99_MS = 100.0


@dataclass
class Side:
    name: str
    idle_kib: int = 0
    loaded_kib: int = 0
    after_kib: int = 0
    connected: int = 0
    connect_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    acked: int = 0
    latencies: list[float] = field(default_factory=list)
    broker_share: float = 0.0  # of one core, during the fan-out
    idle_share: float = 0.0  # of the machine, during the fan-out
    steal_share: float = 0.0

    def per_conn_kib(self) -> float:
        return (self.loaded_kib - self.idle_kib) / max(self.connected, 1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _child_setup() -> None:
    """preexec_fn of every child: dies with us, and may hold its share of sockets."""
    from streams.child import die_with_parent

    die_with_parent()
    raise_nofile()


class Children:
    """The processes a side starts; all of them are ended when the side ends, however."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(self, name: str, *args: str, env: dict[str, str] | None = None,
                    stdin: bool = False) -> asyncio.subprocess.Process:  # fmt: skip
        log = self.logs / f"{name}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=err,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                preexec_fn=_child_setup, limit=1 << 24,
            )  # fmt: skip
        self.procs.append((proc, log))
        return proc

    def tail(self, proc: asyncio.subprocess.Process) -> str:
        log = next(path for p, path in self.procs if p is proc)
        return log.read_text(errors="replace")[-1500:]

    async def line(self, proc: asyncio.subprocess.Process, timeout: float,
                   ask: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The child's next JSON line (after writing `ask` to its stdin)."""
        if ask is not None:
            assert proc.stdin is not None
            proc.stdin.write(ask.encode() + b"\n")
            await proc.stdin.drain()
        assert proc.stdout is not None
        try:
            raw = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except TimeoutError:
            raise RuntimeError(f"no answer in {timeout:.0f} s: {self.tail(proc)}") from None
        if not raw:
            raise RuntimeError(f"child exited ({await proc.wait()}): {self.tail(proc)}")
        return dict(json.loads(raw))

    async def end(self) -> None:
        """Kill what still runs (a graceful stop of 10,000 connections is not measured)."""
        for proc, _ in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc, _ in self.procs:
            await proc.wait()


async def _ready(children: Children, proc: asyncio.subprocess.Process, port: int) -> None:
    def ok() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(ok):
        if proc.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server not ready on port {port}: {children.tail(proc)}")
        await asyncio.sleep(0.2)


def _warm_up(url: str, first: int, count: int = 10) -> None:
    from websockets.sync.client import connect

    for n in range(first, first + count):
        with connect(url, compression=None, open_timeout=10, close_timeout=2) as ws:
            ws.send(json.dumps({"type": "connect", "token": token(SECRET, n), "user": user_id(n)}))
            frame = json.loads(ws.recv(10))
            assert frame["type"] == "connected", frame


async def _side(name: str, connections: int, logs: Path, *, fanout: bool) -> Side:
    """One server on a fresh broker: its RSS idle and with `connections` open, then (with
    `fanout`) the latencies of `RATE` notifications/s for `SECONDS` to them."""
    from streams.dev.broker import free_port
    from streams.kafka.admin import create_topics
    from streams.kafka.connection import connection
    from streams.topics import (
        DELIVER,
        DELIVERY_RESULTS,
        INAPP_PRESENCE,
        INAPP_RECEIPTS,
        Destination,
    )

    from bench.engines import broker as bench_broker

    side = Side(name)
    children = Children(logs / ("fanout" if fanout else "connections"))
    children.logs.mkdir(exist_ok=True)
    with bench_broker() as broker:
        bootstrap = broker.bootstrap_servers
        fetch_wait_ms = connection(bootstrap).fetch_wait_ms  # the gateway's, on this broker
        inapp = DELIVER[Destination.INAPP].deliver
        create_topics(bootstrap, [inapp, INAPP_RECEIPTS, INAPP_PRESENCE, DELIVERY_RESULTS])
        port = free_port()
        try:
            if name == "gateway":
                env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                       "WEDSYNC_INAPP_PORT": str(port), "WEDSYNC_INAPP_JWT_SECRET": SECRET,
                       "WEDSYNC_INAPP_MAX_CONNECTIONS": str(connections + 100),
                       "WEDSYNC_INAPP_DRAIN_TIMEOUT_S": "2"}  # fmt: skip
                server = await children.start(name, "-m", "streams.app.cli", "inapp", env=env)
            else:
                server = await children.start(
                    name, "-m", "bench.inapp_bare", str(port), bootstrap, str(fetch_wait_ms)
                )
            await _ready(children, server, port)
            url = f"ws://127.0.0.1:{port}/ws"
            await asyncio.to_thread(_warm_up, url, connections)
            await asyncio.sleep(SETTLE_S)
            side.idle_kib = _rss_kib(server.pid)

            share = -(-connections // CLIENT_PROCESSES)
            clients = []
            for i, first in enumerate(range(0, connections, share)):
                count = str(min(share, connections - first))
                clients.append(await children.start(
                    f"{name}-clients-{i}", "-m", "bench.inapp_load", "clients", url, str(first),
                    count, SECRET, stdin=True,
                ))  # fmt: skip
            hellos = await asyncio.gather(*(children.line(c, 300) for c in clients))
            side.connected = sum(h["connected"] for h in hellos)
            side.connect_s = max(h["seconds"] for h in hellos)
            for h in hellos:
                for k, v in h["failures"].items():
                    side.failures[k] = side.failures.get(k, 0) + v
            await asyncio.sleep(SETTLE_S)
            side.loaded_kib = _rss_kib(server.pid)
            if fanout:
                machine, broker_cpu = cpu.Machine.now(), cpu.process_seconds(broker.pids[0])
                started = time.monotonic()
                await _fan_out(side, children, clients, bootstrap, connections)
                wall = time.monotonic() - started
                side.after_kib = _rss_kib(server.pid)
                side.broker_share = (cpu.process_seconds(broker.pids[0]) - broker_cpu) / wall
                shares = cpu.Machine.now().since(machine)
                side.idle_share, side.steal_share = shares.idle, shares.steal
        finally:
            await children.end()
    return side


async def _fan_out(side: Side, children: Children, clients: list[asyncio.subprocess.Process],
                   bootstrap: str, users: int) -> None:  # fmt: skip
    producer = await children.start(f"{side.name}-producer", "-m", "bench.inapp_load",
                                    "produce", bootstrap, str(RATE), str(SECONDS),
                                    str(users))  # fmt: skip
    produced = await children.line(producer, SECONDS + 90)
    side.sent, side.acked = produced["sent"], produced["acked"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the last ones may still be on their way
        counts = await asyncio.gather(*(children.line(c, 30, "count") for c in clients))
        if sum(c["received"] for c in counts) >= side.acked:
            break
        await asyncio.sleep(0.5)
    stats = await asyncio.gather(*(children.line(c, 60, "stats") for c in clients))
    side.latencies = [x for s in stats for x in s["latencies_ms"]]


def _lines(hard: int, held: tuple[Side, Side], fan: tuple[Side, Side]) -> list[str]:
    mib = 1024.0
    base, ours = held

    def hold(s: Side) -> str:
        failed = f"; failed: {s.failures}" if s.failures else ""
        return (f"{s.per_conn_kib():6.1f} KiB  (RSS idle {s.idle_kib / mib:.0f} MiB, with "
                f"{s.connected} connections {s.loaded_kib / mib:.0f} MiB; all open after "
                f"{s.connect_s:.0f} s{failed})")  # fmt: skip

    def lat(s: Side) -> str:
        v = s.latencies
        return (f"p50 {_pct(v, 0.5):4.0f} ms, p95 {_pct(v, 0.95):5.0f} ms, p99 "
                f"{_pct(v, 0.99):5.0f} ms, max {max(v, default=float('nan')):5.0f} ms  "
                f"(received {len(v)} of {s.acked} acknowledged, {s.sent} sent; RSS after "
                f"{s.after_kib / mib:.0f} MiB; broker {s.broker_share:.0%} of a core, machine "
                f"{s.idle_share:.0%} idle, {s.steal_share:.0%} stolen)")  # fmt: skip

    fbase, fours = fan
    return [
        f"inapp: WebSocket clients in {CLIENT_PROCESSES} processes on loopback, one user and "
        f"one connection each; every server on a fresh broker (RLIMIT_NOFILE hard {hard})",
        f"  {ours.connected} connections held: RSS above the idle process, per connection",
        f"    bare websockets server:   {hold(base)}",
        f"    wedsync inapp gateway:    {hold(ours)}",
        f"    ratio gateway/bare:       {ours.per_conn_kib() / base.per_conn_kib():.2f}  "
        f"(target: gateway <= {TARGET_KIB:.0f} KiB)",
        f"  fan-out to {fours.connected} connected users, {RATE} notifications/s for "
        f"{SECONDS:.0f} s to random ones: routed_at_ms -> the client's receipt",
        f"    bare websockets server:   {lat(fbase)}",
        f"    wedsync inapp gateway:    {lat(fours)}",
        f"    ratio of p99s gateway/bare: "
        f"{_pct(fours.latencies, 0.99) / _pct(fbase.latencies, 0.99):.2f}  "
        f"(target: gateway p99 < {TARGET_P99_MS:.0f} ms)",
    ]


def run() -> list[str]:
    hard = raise_nofile()
    connections = max(0, min(CONNECTIONS, hard - FD_HEADROOM))
    users = min(FANOUT_USERS, connections)
    with tempfile.TemporaryDirectory(prefix="bench-inapp-") as tmp:
        logs = Path(tmp)
        held = tuple(asyncio.run(_side(name, connections, logs, fanout=False))
                     for name in ("bare", "gateway"))  # fmt: skip
        fan = tuple(asyncio.run(_side(name, users, logs, fanout=True))
                    for name in ("bare", "gateway"))  # fmt: skip
    lines = _lines(hard, held, fan)  # type: ignore[arg-type]
    if connections < CONNECTIONS:
        lines.insert(1, f"  only {connections} connections: the hard RLIMIT_NOFILE is {hard}")
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
