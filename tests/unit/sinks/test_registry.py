"""Every connector folder is registered, and every registered path loads (STYLE.md 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from connectors.sinks.registry import CONNECTORS, load
from streams.dev.fakes import FAKES
from streams.dev.fakes.kit import FakeProvider

SINKS = Path(__file__).resolve().parents[3] / "connectors" / "sinks"
CALENDAR_PROVIDERS = {"google", "graph", "caldav"}  # dispatched by connectors.sinks.calendar


def test_every_connector_folder_is_registered() -> None:
    folders = {p.parent.name for p in SINKS.glob("*/sink.py")}
    registered = {path.split(".")[2] for path in CONNECTORS.values()}
    assert folders - CALENDAR_PROVIDERS == registered


@pytest.mark.parametrize("path", sorted(CONNECTORS.values()))
def test_each_registered_connector_factory_loads(path: str) -> None:
    assert callable(load(path))


@pytest.mark.parametrize("name", sorted(FAKES))
def test_each_fake_is_a_fake_provider_or_a_server_function(name: str) -> None:
    target = load(FAKES[name])
    assert (isinstance(target, type) and issubclass(target, FakeProvider)) or callable(target)
