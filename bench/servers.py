"""Local providers as processes of their own, for the benchmarks that measure a pipeline
against them: a provider sharing the bench's interpreter shares its GIL with the CDC source
and the inserts, and its answers then wait for them (the SMTP capture stretched every
exchange; the CRM and webhook fakes put their own waits into "provider's answer")."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from streams.child import die_with_parent
from streams.dev.broker import free_port
from streams.dev.db import PostgresServer, slot_streaming, wait_until


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port`; TimeoutError after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.02)


@dataclass(frozen=True)
class Provider:
    """A provider's fake in its own process: where it listens, and which process it is."""

    port: int
    pid: int


@contextlib.contextmanager
def fake_provider(name: str, env: dict[str, str] | None = None) -> Iterator[Provider]:
    """`wedsync fake <name>` on a free port, in its own process and session, listening.
    Stopped (SIGTERM, then SIGKILL after 10 s) on the way out. It logs warnings only: its
    access log is no provider's work (37 of the webhook fake's 102 us a request)."""
    port = free_port()
    quiet = {"WEDSYNC_LOG_LEVEL": "warn", **(env or {})}
    with _child(["fake", name, "--port", str(port)], quiet) as proc:
        wait_listening(port)
        yield Provider(port, proc.pid)


@contextlib.contextmanager
def cdc_process(bootstrap: str, server: PostgresServer, dbname: str, app_id: str) -> Iterator[str]:
    """`wedsync cdc` on `dbname` of `server`, in its own process as deployed (on a thread
    of the bench it shared a GIL with the inserts, whose waits then showed in the first
    hop), yielded once its slot streams: the slot's name. RuntimeError when it exits first."""
    import psycopg2

    slot = "wedsync_cdc"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_APP_ID": app_id,
        "WEDSYNC_METRICS_PORT": str(free_port()), "WEDSYNC_CDC_HOST": server.host,
        "WEDSYNC_CDC_PORT": str(server.port), "WEDSYNC_CDC_USER": server.user,
        "WEDSYNC_CDC_DBNAME": dbname, "WEDSYNC_CDC_SLOT_NAME": slot,
        "WEDSYNC_CDC_HEARTBEAT_INTERVAL_S": "1.0",
    }  # fmt: skip
    with _child(["cdc"], env) as proc:
        conn = psycopg2.connect(server.dsn.replace(f"dbname={server.dbname}", f"dbname={dbname}"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                wait_until(lambda: proc.poll() is not None or slot_streaming(cur, slot), 60)
        finally:
            conn.close()
        if proc.poll() is not None:
            raise RuntimeError(f"wedsync cdc exited with {proc.returncode} before streaming")
        yield slot


@contextlib.contextmanager
def _child(command: list[str], env: dict[str, str] | None) -> Iterator[subprocess.Popen[bytes]]:
    """`wedsync <command>` as `children` starts it: its own process and session."""
    with children([command], env) as (proc,):
        yield proc


@contextlib.contextmanager
def children(
    commands: list[list[str]], env: dict[str, str] | None, drain_s: float = 10.0
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`wedsync <command>` for each of `commands`, each in its own process and session (so
    its own autogroup for the CPU, as a process of its own container is deployed), dying
    with this one. On exit all get SIGTERM together and `drain_s` seconds in all to stop
    (a sink finishes and records its calls at the providers); then SIGKILL."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.app.cli", *command],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        for command in commands
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + drain_s
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
