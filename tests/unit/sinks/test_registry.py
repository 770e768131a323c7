"""Every connector folder is registered, and every registered path loads (STYLE.md 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from connectors.sinks.registry import CONNECTORS, load
from streams.dev.fakes import FAKES
from streams.dev.fakes.kit import FakeProvider

CONNECTORS_DIR = Path(__file__).resolve().parents[3] / "connectors"


def test_every_connector_folder_is_registered() -> None:
    """Every sinks/<kind>/sink.py, and the calendar package (which dispatches to its
    providers' own sinks), is what the registry names."""
    folders = {p.parent.name for p in (CONNECTORS_DIR / "sinks").glob("*/sink.py")}
    assert (CONNECTORS_DIR / "calendar" / "sink.py").is_file()
    registered = {
        path.split(":")[0].removesuffix(".sink").split(".")[-1] for path in CONNECTORS.values()
    }
    assert folders | {"calendar"} == registered


@pytest.mark.parametrize("path", sorted(CONNECTORS.values()))
def test_each_registered_connector_factory_loads(path: str) -> None:
    assert callable(load(path))


@pytest.mark.parametrize("name", sorted(FAKES))
def test_each_fake_is_a_fake_provider_or_a_server_function(name: str) -> None:
    target = load(FAKES[name])
    assert (isinstance(target, type) and issubclass(target, FakeProvider)) or callable(target)
