"""The one process shell (streams.app.shell): SIGTERM drains the work and the process
stops with status 0; the previous signal handlers come back; every long-running command
starts through it."""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import threading

from streams.app import shell
from streams.settings import REPO_ROOT


def test_sigterm_sets_the_stop_event_and_the_blocking_work_returns() -> None:
    seen: list[bool] = []

    def work(stop: threading.Event) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        seen.append(stop.wait(5))

    assert shell.run_blocking(work) == 0
    assert seen == [True]


def test_the_previous_handlers_come_back_after_the_work() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with shell.signalled():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_drains_an_asyncio_service() -> None:
    drained: list[str] = []

    async def work(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
        drained.append("drained")

    assert shell.run_async(work) == 0
    assert drained == ["drained"]


def test_every_long_running_command_starts_through_the_shell() -> None:
    commands = {"worker.py", "route.py", "cdc.py", "ingest.py", "sinks.py", "inapp.py", "sla.py"}
    without = []
    for name in sorted(commands):
        tree = ast.parse((REPO_ROOT / "streams" / "app" / name).read_text())
        calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        if "shell.start" not in calls:
            without.append(name)
        if {"signal.signal", "loop.add_signal_handler"} & calls:
            without.append(f"{name} (own signal handlers)")
    assert without == []
