"""WEDSYNC_LOG_LEVEL: every command's log level, parsed at the edge; the audit trail stays."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from connectors.sinks import outbound_policy
from streams.app.cli import use_log_level
from streams.errors import ConfigurationError
from streams.settings import load_settings


@pytest.fixture
def root_level() -> Iterator[None]:
    before = logging.getLogger().level
    yield
    logging.getLogger().setLevel(before)


def test_the_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_LOG_LEVEL", "WARNING")
    assert load_settings().log_level == "warning"


def test_an_unknown_level_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_LOG_LEVEL", "verbose")
    with pytest.raises(ConfigurationError, match="WEDSYNC_LOG_LEVEL"):
        load_settings()


@pytest.mark.usefixtures("root_level")
def test_warn_silences_info_lines(caplog: pytest.LogCaptureFixture) -> None:
    use_log_level("warn")
    logging.getLogger("aiohttp.access").info("GET / 200")
    logging.getLogger("streams.app").warning("kept")
    assert [r.getMessage() for r in caplog.records] == ["kept"]


@pytest.mark.usefixtures("root_level")
def test_the_audit_trail_is_kept_at_any_level(caplog: pytest.LogCaptureFixture) -> None:
    use_log_level("error")
    with outbound_policy.audit_scope("webhook", "t-1"):
        outbound_policy.audit("POST", "hooks.example", 200, 0.0)
    assert [r.name for r in caplog.records] == ["wedsync.audit"]
