"""WEDSYNC_LOG_LEVEL: every command's log level, parsed at the edge; the audit trail stays."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from connectors.sinks import outbound_policy
from streams.app.cli import AUDIT_LOGGER, use_log_level
from streams.errors import ConfigurationError
from streams.settings import load_settings


@pytest.fixture
def root_level() -> Iterator[None]:
    before = logging.getLogger().level, logging.getLogger(AUDIT_LOGGER).level
    yield
    logging.getLogger().setLevel(before[0])
    logging.getLogger(AUDIT_LOGGER).setLevel(before[1])


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


def test_the_audit_logger_is_the_one_the_policy_writes_to() -> None:
    assert outbound_policy.log.name == AUDIT_LOGGER


QUIETED_THEN_IMPORTED = """
import logging
logging.getLogger("wedsync.audit").setLevel(logging.ERROR)  # as the demo quiets its board
import connectors.sinks.outbound_policy
print(logging.getLogger("wedsync.audit").level)
"""


def test_a_command_that_quiets_the_audit_keeps_it_quiet() -> None:
    out = subprocess.run([sys.executable, "-c", QUIETED_THEN_IMPORTED], capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    assert out.stdout.strip() == str(logging.ERROR)
