"""Thin Faust wiring: decode -> call pure logic -> send. Registration is this explicit list."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from streams.app import Context


def register_all(app: faust.App, context: Context) -> None:
    from streams.agents import normalize

    normalize.register(app, context)
