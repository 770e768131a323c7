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

from streams.dev.broker import free_port


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


@contextlib.contextmanager
def fake_provider(name: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """`wedsync fake <name>` on a free port, in its own process, listening: the port.
    Stopped (SIGTERM, then SIGKILL after 10 s) on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "fake", name, "--port", str(port)],
        env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
