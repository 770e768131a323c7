"""bench/cpu.py: which process of a run used the machine, and how busy it was."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench import cpu
from bench.cpu import Usage

PY = "/usr/bin/python3"


def test_processes_are_named_by_what_they_run() -> None:
    assert (
        cpu.label(["/opt/java/bin/java", "-Xmx512m", "-cp", "x/*", "kafka.Kafka", "p"]) == "Kafka"
    )
    assert cpu.label([PY, "-m", "streams.app.cli", "sink", "email"]) == "email sink"
    assert cpu.label([PY, "-m", "streams.app.cli", "fake", "crm", "--port", "1"]) == "fake crm"
    assert cpu.label([PY, "-m", "streams.app.cli", "worker", "--with-route"]) == "worker"
    assert cpu.label([PY, "-m", "streams.app.cli", "route"]) == "routing"
    assert cpu.label([PY, "-m", "streams.app.cli", "cdc"]) == "CDC source"
    assert cpu.label(["/usr/lib/postgresql/15/bin/postgres", "-D", "/tmp/d"]) == "PostgreSQL"
    assert cpu.label(["postgres: walsender postgres 127.0.0.1(5432) streaming"]) == "PostgreSQL"
    assert cpu.label(["/usr/bin/vmstat", "5"]) == "vmstat"


def test_the_embedded_broker_is_named_whatever_its_version() -> None:
    binary = "/root/.calfkit/bin/tansu-v0.6.0-510f3e2"
    assert cpu.label([binary, "broker", "--storage-engine", "memory://tansu/"]) == "Tansu"


def test_a_sink_named_like_a_command_is_still_a_sink() -> None:
    assert cpu.label([PY, "-m", "streams.app.cli", "sink", "webhook"]) == "webhook sink"


def test_schedstat_gives_run_and_wait_nanoseconds() -> None:
    assert cpu.parse_schedstat("123456789 2000 17\n") == Usage(123456789, 2000)


def test_stat_ticks_count_user_and_system_time() -> None:
    fields = ["S", *["0"] * 10, "7", "3", *["0"] * 30]  # utime 7, stime 3 ticks
    usage = cpu.parse_stat_ticks("42 (python3 (x)) " + " ".join(fields))
    assert usage.ran_ns == round(10 * 1e9 / cpu.os.sysconf("SC_CLK_TCK"))
    assert usage.waited_ns == 0


def test_idle_and_iowait_are_not_busy() -> None:
    before = cpu.Machine.parse("cpu  100 0 100 700 100 0 0 0 0 0")
    after = cpu.Machine.parse("cpu  200 0 200 1200 200 0 0 0 0 0")
    assert after.since(before).busy == 200 / 800
    assert after.since(before).idle == 600 / 800


def test_steal_is_a_share_of_the_window_and_counted_busy() -> None:
    before = cpu.Machine.parse("cpu  100 0 100 700 100 0 0 50 0 0")
    after = cpu.Machine.parse("cpu  200 0 200 1000 100 0 0 150 0 0")
    shares = after.since(before)
    assert (shares.steal, shares.busy) == (100 / 600, 300 / 600)


def test_an_empty_window_has_no_shares() -> None:
    same = cpu.Machine.parse("cpu  1 2 3 4 5 6 7 8 0 0")
    assert same.since(same) == cpu.Shares(0.0, 0.0, 0.0)


def test_process_seconds_counts_this_process_cpu() -> None:
    before, burnt = cpu.process_seconds(os.getpid()), time.process_time() + 0.2
    deadline = time.monotonic() + 30  # a loaded machine gives us the CPU late, not never
    while time.process_time() < burnt and time.monotonic() < deadline:  # burn 0.2 s of CPU
        pass
    assert cpu.process_seconds(os.getpid()) - before >= 0.15


def test_process_seconds_of_a_process_gone_is_an_oserror() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    with pytest.raises(OSError):
        cpu.process_seconds(child.pid)


def test_report_ranks_processes_and_names_the_starved() -> None:
    spent = {"Kafka": Usage(5_000_000_000, 11_000_000_000), "worker": Usage(2_500_000_000, 0)}
    lines = cpu.report(spent, 10.0, 0.93, 2500, "change")
    assert lines[0].startswith(
        "  CPU while measured (10.0 s), ms per change: Kafka 2.00, worker 1.00;"
    )
    assert "total 3.00 (0.75 cores); machine 93% busy" in lines[0]
    assert lines[1].endswith("Kafka 110%")


def test_a_title_begins_the_first_line_only() -> None:
    spent = {"Kafka": Usage(5_000_000_000, 11_000_000_000)}
    lines = cpu.report(spent, 10.0, 0.5, 2500, "request", title="gateway")
    assert lines[0].startswith("  gateway: CPU while measured (10.0 s), ms per request:")
    assert lines[1].startswith("  runnable but waiting")


def test_nothing_measured_reports_nothing() -> None:
    assert cpu.report({}, 10.0, 0.5, 100, "change") == []
    assert cpu.report({"Kafka": Usage(1, 0)}, 0.0, 0.5, 100, "change") == []


SPIN = """
import sys, time
sys.stdin.readline()                                # go
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("spun", flush=True)
sys.stdin.readline()                                # stay alive, idle, until told
"""


def test_a_window_counts_the_cpu_of_a_child_by_its_label() -> None:
    child = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        with cpu.Window(cpu.roots("bench")) as window:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "spun\n"
    finally:
        child.stdin.close()
        child.wait(10)
    spun = window.spent[cpu.label([sys.executable, "-c", SPIN])]
    assert spun.ran_ns >= 0.29e9  # its 0.3 s of CPU, within the window
    assert window.spent["bench"].ran_ns < spun.ran_ns  # the parent only waited


def test_favour_sets_the_session_nice_or_says_why_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        problems = cpu.favour([child.pid], -3)
        seen = "" if problems else Path(f"/proc/{child.pid}/autogroup").read_text()
    finally:
        child.communicate(b"")
    if os.geteuid() == 0 and Path("/proc/self/autogroup").exists():  # root may raise it
        assert problems == []
        assert seen.endswith("nice -3\n")
    else:  # not root, or a kernel without autogroups: said, not silent
        assert problems[0].startswith(f"pid {child.pid}: ")


def test_favouring_a_process_that_is_gone_is_reported() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu.favour([gone.pid])[0].startswith(f"pid {gone.pid}: ")
