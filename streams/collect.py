"""The garbage collector for a process that handles a stream of records.

A record allocates a few hundred short-lived objects (decoded dicts, futures, encoded
output); at Python's default threshold (700 allocations) the youngest generation was
collected every couple of records, 15-20 % of a sink's CPU (bench/sinks.py, gc.callbacks).
`collect_less()` raises the thresholds (the youngest generation every `YOUNG` allocations:
a few MiB more at most) and moves what exists now (modules, loaded state) out of every later
collection (`gc.freeze`), so call it once the process has loaded what it keeps. It only
ever raises a threshold, so a second call (two sinks in one process) is harmless.
Process-wide, on purpose: every part of a process wants the same. The sinks and the routing
process use it; the ingest gateway and the Faust worker measured no difference with it
(`bench ingest`, `bench routing`'s pipeline at 1,000 changes/s), so they keep Python's own.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations between collections of the youngest generation


def collect_less(young: int = YOUNG, middle: int = 0, old: int = 0) -> None:
    """Collect less often (see the module docstring); 0 keeps a generation's threshold."""
    now = gc.get_threshold()
    gc.set_threshold(max(now[0], young), max(now[1], middle), max(now[2], old))
    gc.freeze()
