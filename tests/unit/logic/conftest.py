"""Fixtures shared by the pure-logic tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def host_far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's zone is Pacific/Kiritimati (UTC+14) for the test: a time read in the
    host's zone instead of the wedding's would show."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
