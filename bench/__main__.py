"""`make bench`: every benchmark prints the project's figure, a baseline measured in the same
run, and the ratio. Absolute numbers on shared machines are noise; ratios are the signal.

A suite that needs a broker (`ON_BROKER = True`) runs once per engine (`bench.engines`):
Apache Kafka first, whose figures the targets are judged on, then the embedded Tansu beside
them. `python -m bench routing sinks` runs those suites only; `BENCH_ENGINES=kafka` one
engine only."""

from __future__ import annotations

import importlib
import os
import sys
import time
from types import ModuleType

from bench import engines

SUITES = (
    "bench.codec",
    "bench.routing",
    "bench.ingest",
    "bench.cdc",
    "bench.sinks",
    "bench.scaleout",
    "bench.email",
    "bench.delivery",
    "bench.inapp",
    "bench.ledger",
    "bench.calendar",
)


def _suite(module: ModuleType) -> int:
    """Run one suite (per engine when it needs a broker), printing as it goes; 1 if failed."""
    passes = engines.chosen() if getattr(module, "ON_BROKER", False) else (None,)
    failed = 0
    for engine in passes:
        if engine is not None:
            os.environ["BENCH_ENGINE"] = engine
            print(f"  -- on {engines.title(engine)}", flush=True)
        try:
            for line in module.run():
                print(line, flush=True)
        except Exception as exc:  # one broken suite must not hide the others' figures
            failed = 1
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
    os.environ.pop("BENCH_ENGINE", None)
    return failed


def main() -> int:
    only = set(sys.argv[1:])
    failed = 0
    for name in SUITES:
        if only and name.split(".")[-1] not in only:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            print(f"== {name}: not available ({exc})\n", flush=True)
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        failed += _suite(module)
        print(f"  ({time.perf_counter() - start:.1f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
