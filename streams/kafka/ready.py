"""Take what a consumer has ready without waiting for a full batch.

`Consumer.consume(n, timeout)` returns when it holds `n` records or when `timeout` passed:
at a trickle every record waits the whole timeout (a 50 ms timeout added 25 ms on average
to each hop that read this way). `ready(consumer, n, timeout)` waits up to `timeout` for the
first record only, then takes at most `n - 1` more of those already fetched.
"""

from __future__ import annotations

from typing import Any


def ready(consumer: Any, max_records: int, timeout: float) -> list[Any]:
    """Up to `max_records` records: the first within `timeout`, the rest if already here."""
    first = consumer.poll(timeout)
    if first is None:
        return []
    if max_records <= 1:
        return [first]
    return [first, *consumer.consume(max_records - 1, 0)]
