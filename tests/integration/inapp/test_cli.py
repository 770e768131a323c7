"""`wedsync inapp` and `wedsync inapp-token` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from connectors.sinks.inapp.auth import Verifier

from tests.integration.inapp.support import MAIN, SECRET


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WEDSYNC_INAPP_")}
    return subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60)  # fmt: skip


def test_inapp_token_prints_a_token_the_gateway_accepts() -> None:
    out = run("inapp-token", "u-cli", "--org", "o-cli", WEDSYNC_INAPP_JWT_SECRET=SECRET)
    assert out.returncode == 0, out.stderr
    verifier = Verifier(audience="wedsync-inapp", issuer="wedsync", secret=SECRET)
    claims = verifier.verify(out.stdout.strip(), time.time())
    assert (claims.user, claims.org) == ("u-cli", "o-cli")


def test_gateway_without_a_key_says_which_setting_to_set() -> None:
    out = run("inapp", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert out.returncode != 0
    assert "WEDSYNC_INAPP_JWT_SECRET" in out.stderr and "Traceback" not in out.stderr
