"""Thin Faust wiring: decode -> call pure logic -> send. Registration is this explicit list.

normalize            wedsync.ingest.cdc, .webhooks -> wedsync.events          (agents)
state                wedsync.ingest.state (1 partition) -> Table state_rows   (agent)
route                wedsync.events -> wedsync.deliver.*     (`wedsync route`, its own process;
                     in development a child of `worker --with-route`, streams.routing.service)
conflicts            booking.changed by supplier -> Table -> wedsync.events   (agent)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust

    from streams.agents.app import Context
    from streams.routing.service import RouteService


@dataclass
class Agents:
    """What `register_all` created, for tests and the worker."""

    normalize: dict[str, Any]
    state_agent: Any
    state_rows: Any  # the Faust table of routing-state rows
    conflicts: dict[str, Any]
    route: RouteService | None


def register_all(app: faust.App, context: Context, *, with_route: bool = False) -> Agents:
    """Register every stage on `app`; `with_route` also the supervised routing child
    (`wedsync worker --with-route`, development only)."""
    from streams.agents import conflicts, normalize, state
    from streams.routing import service

    rows = state.state_table(app)
    return Agents(
        normalize=normalize.register(app, context),
        state_agent=state.register(app, context, rows),
        state_rows=rows,
        conflicts=conflicts.register(app, context),
        route=service.register(app, context) if with_route else None,
    )
