"""`make run`'s job end to end: its own broker, the Faust worker, samples in, events out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_processes_samples_end_to_end_on_its_own_broker() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK: 6 sample records processed end to end" in out, out
    for event_type in (
        "form.response_received",
        "journey.milestone_completed",
        "wedding.date_changed",
        "client.profile_updated",
    ):
        assert event_type in out
    assert "dead letter (key=b'garbage'): wrong magic byte" in out
