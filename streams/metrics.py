"""Every Prometheus metric of the stream processor, declared once, with bounded labels.

Label values come from closed sets: `stage` is an agent name, `reason` an exception class
name from `streams.errors`, `destination` a `streams.topics.Destination` value.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECORDS_IN = Counter(
    "wedsync_records_consumed_total", "Records an agent read from its input topic.", ["stage"]
)
RECORDS_OUT = Counter(
    "wedsync_records_produced_total", "Records an agent wrote to output topics.", ["stage"]
)
DEAD_LETTERS = Counter(
    "wedsync_dead_letters_total",
    "Records sent to a dead-letter topic, by stage and error class.",
    ["stage", "reason"],
)
END_TO_END_SECONDS = Histogram(
    "wedsync_end_to_end_latency_seconds",
    "Source commit time to output record, per stage.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
