"""Stage: domain events -> deliveries, by `wedsync route` (streams.routing.process), a child
process that a mode Service of the Faust worker starts and supervises.

The Service starts when Faust starts app services, which is after table recovery, so the
routing process finds the state rows' changelog complete; on a cold start with a state
backlog it also waits until the worker has committed that backlog (the state it makes is in
the changelogs) before it routes (`streams.routing.process`). If the child exits while the
worker runs, it is restarted with exponential backoff (0.5 s doubling to 30 s); on worker
stop it gets SIGTERM (finish the batch, flush, commit) and is killed after 30 s. The child
dies with the worker even on SIGKILL (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mode import Service

from streams.child import die_with_parent
from streams.kafka.connection import Kafka, connection

if TYPE_CHECKING:
    import faust

    from streams.agents.app import Context

log = logging.getLogger(__name__)


def _child_metrics_port(port: int | None) -> dict[str, str]:
    """The routing child serves its metrics on the worker's port + 1."""
    return {} if port is None else {"WEDSYNC_METRICS_PORT": str(port + 1)}


class RouteService(Service):
    """Runs and supervises one `wedsync route` child process."""

    def __init__(
        self, bootstrap: Kafka, app_id: str, metrics_port: int | None = None,
        environ: Mapping[str, str] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.metrics_port = metrics_port
        self.environ = dict(environ or {})  # the worker's own, handed down by its command
        self.bootstrap = bootstrap
        self.app_id = app_id
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        servers = connection(self.bootstrap).bootstrap_servers  # the rest: the same env
        env = {**self.environ, "KAFKA_BOOTSTRAP_SERVERS": servers,
               # the child serves its metrics on the worker's port + 1
               **_child_metrics_port(self.metrics_port),
               "WEDSYNC_APP_ID": self.app_id}  # fmt: skip
        return subprocess.Popen(
            [sys.executable, "-m", "streams.app.cli", "route"],
            env=env,
            preexec_fn=die_with_parent,
            start_new_session=True,  # stopped by this service, not by a terminal Ctrl-C
        )

    async def on_start(self) -> None:
        self.process = self._spawn()

    @Service.task
    async def _supervise(self) -> None:
        backoff = 0.5
        while not self.should_stop:
            await asyncio.sleep(0.5)
            proc = self.process
            if proc is None or proc.poll() is None or self.should_stop:
                continue
            log.error("route process exited with %s; restarting in %.1f s", proc.returncode,
                      backoff)  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            self.restarts += 1
            self.process = self._spawn()

    async def on_stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await loop.run_in_executor(None, proc.wait)


def register(app: faust.App, context: Context) -> RouteService:
    service = RouteService(
        context.kafka, app.conf.id, context.settings.metrics_port, context.environ
    )
    app.service(service)  # type: ignore[arg-type]
    return service
