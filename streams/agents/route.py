"""Stage: domain events -> deliveries, run by `streams.engine.RouteEngine` in a thread that a
mode Service owns inside the Faust worker.

The Service starts when Faust starts app services, which is after table recovery, so the
engine routes with the recovered GlobalTables from its first event. It creates the seen
topic (idempotent), runs the engine in a daemon thread, and on stop asks the thread to finish
its batch, flush and commit, and joins it. If the engine dies (the broker refused deliveries
for longer than librdkafka retries), the Service crashes the app: the worker exits non-zero
and is restarted, re-routing from the last committed offset.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from mode import Service

from streams import topics
from streams.admin import create_topics
from streams.engine import RouteEngine, RouteSettings
from streams.logic.routing import RoutingRules, load_rules
from streams.logic.state import StateTables

if TYPE_CHECKING:
    import faust

    from streams.app import Context


def read_view(state: StateTables) -> StateTables:
    """The tables' in-memory dicts (memory store), read without Faust's per-get overhead.

    Values are replaced, never mutated in place, so a reader thread sees whole values."""

    def raw(table: Any) -> Any:
        data = getattr(getattr(table, "data", None), "data", None)
        return data if isinstance(data, dict) else table

    return StateTables(*(raw(getattr(state, f)) for f in StateTables.__dataclass_fields__))


class RouteService(Service):
    """Hosts one `RouteEngine` thread for the app."""

    def __init__(self, engine: RouteEngine, bootstrap: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.bootstrap = bootstrap
        self._stop_flag = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    async def on_start(self) -> None:
        seen = topics.Topic(
            self.engine.seen_topic,
            None,
            key="event_id",
            partitions=topics.EVENTS.partitions,
            retention_ms=int(self.engine.config.dedupe_window_s * 2000),
        )
        await asyncio.get_running_loop().run_in_executor(
            None, create_topics, self.bootstrap, [seen]
        )
        self._thread = threading.Thread(target=self._run, name="wedsync-route", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.engine.run(self._stop_flag)
        except BaseException as exc:
            self._error = exc

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            if self._thread is not None and not self._thread.is_alive() and self._error:
                await self.crash(self._error)
                return
            await asyncio.sleep(0.5)

    async def on_stop(self) -> None:
        self._stop_flag.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)


def register(
    app: faust.App, context: Context, state: StateTables, rules: RoutingRules | None = None
) -> RouteService:
    from streams.agents.conflicts import bookings_topic_name

    engine = RouteEngine(
        bootstrap=context.bootstrap_servers,
        group_id=f"{app.conf.id}-route",
        app_id=app.conf.id,
        codecs=context.codecs,
        rules=rules or load_rules(),
        state=read_view(state),
        bookings_topic=bookings_topic_name(app.conf.id),
        config=RouteSettings(),
    )
    service = RouteService(engine, context.bootstrap_servers)
    app.service(service)  # type: ignore[arg-type]
    return service
