"""`make bench`: every benchmark prints the project's figure, a baseline measured in the same
run, and the ratio. Absolute numbers on shared machines are noise; ratios are the signal."""

from __future__ import annotations

import importlib
import sys
import time

SUITES = (
    "bench.codec",
    "bench.routing",
    "bench.ingest",
    "bench.cdc",
    "bench.sinks",
    "bench.email",
    "bench.delivery",
    "bench.inapp",
    "bench.ledger",
)


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
        try:
            for line in module.run():
                print(line, flush=True)
        except Exception as exc:  # one broken suite must not hide the others' figures
            failed += 1
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
        print(f"  ({time.perf_counter() - start:.1f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
