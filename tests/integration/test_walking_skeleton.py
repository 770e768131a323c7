"""`make run`'s job end to end: its own broker and PostgreSQL with the platform schema, CDC,
the worker and routing; a wedding week as SQL in, every implied delivery out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_plays_the_wedding_week_end_to_end_on_its_own_broker_and_database() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    result = subprocess.run(
        [sys.executable, "-m", "streams.app.cli", "demo", "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "every one the rules and preferences imply" in out, out
    for event_type in (
        "form.response_received",
        "journey.milestone_completed",
        "wedding.date_changed",
        "client.profile_updated",
    ):
        assert event_type in out
    assert "sk_live" not in out and "whsec_" not in out  # targets shown, never secrets
    assert "/inbox#token=" in out  # the inbox page's address, with a token for this run
    assert "  shown      wedding.date_changed" in out  # a stand-in dashboard got it, live
