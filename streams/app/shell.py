"""One process shell: every long-running `wedsync` process has the same lifecycle.

1. settings: parsed once by `streams.app.cli.main` before any I/O (ConfigurationError names
   what is wrong), the process's own models by its wiring;
2. start: the start-up access check (`streams.kafka.preflight`: a wrong password, an
   untrusted certificate or a missing ACL exits naming it; the Schema Registry's likewise,
   when one is configured), then this process's /metrics and
   /healthz (prometheus-client's server, `streams.observe`; only its own role's metrics);
3. ready: `/healthz` answers 200 while `ready()` holds;
4. drain on SIGTERM/SIGINT: the stop event is set; the work finishes what it holds (a
   batch, in-flight deliveries, open connections) and returns;
5. stop: exit status 0, or the work's own.

The Faust worker is the one exception to 4 and 5: Faust's Worker owns its signals and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator

from streams.kafka.access import check_access
from streams.kafka.connection import Kafka
from streams.kafka.registry import ConfluentRegistry
from streams.observe import serve_from_settings
from streams.settings import Settings

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def start(settings: Settings, kafka: Kafka, *, access: str, metrics: str,
          ready: Callable[[], bool] = lambda: True) -> None:  # fmt: skip
    """Steps 2 and 3: the Schema Registry's check (when one is configured) and the access
    check of role `access`, then /metrics (role `metrics`) and /healthz gated by `ready`."""
    registry = settings.schema_registry()
    if registry is not None:
        ConfluentRegistry(registry).check()
    check_access(kafka, access, settings.app_id)
    serve_from_settings(settings, metrics, ready)


@contextlib.contextmanager
def signalled() -> Iterator[threading.Event]:
    """An event SIGTERM or SIGINT sets, for the duration; the previous handlers after."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.info("signal %d: draining", signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_blocking(work: Callable[[threading.Event], object]) -> int:
    """Step 4 and 5 for a blocking loop: `work(stop)` until it returns."""
    with signalled() as stop:
        work(stop)
    return 0


def run_async(work: Callable[[asyncio.Event], Awaitable[object]]) -> int:
    """Step 4 and 5 for an asyncio service: `await work(stop)` until it returns."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        await work(stop)

    asyncio.run(main())
    return 0
