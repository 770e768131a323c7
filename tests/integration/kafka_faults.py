"""Faults injected into real librdkafka clients, for tests.

`fatal_error(producer, code)` puts a `confluent_kafka.Producer` into the state librdkafka
enters when the idempotent producer loses its sequence (the broker forgot its producer id):
librdkafka's own test hook `rd_kafka_test_fatal_error`, called on the client's handle. From
then on the client behaves as after a real fatal error: the next poll raises the fatal
KafkaError, every produce fails with `_FATAL`, and `error.fatal()` is true.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from pathlib import Path

import confluent_kafka
from confluent_kafka import KafkaError, Producer

UNKNOWN_PRODUCER_ID = KafkaError.UNKNOWN_PRODUCER_ID


@cache
def _librdkafka() -> ctypes.CDLL:
    """The librdkafka confluent-kafka runs on (its wheel's bundled copy, else the system's)."""
    bundled = sorted((Path(confluent_kafka.__file__).parents[1] / "confluent_kafka.libs")
                     .glob("librdkafka*.so*"))  # fmt: skip
    path = str(bundled[0]) if bundled else ctypes.util.find_library("rdkafka")
    if not path:
        raise RuntimeError("librdkafka not found next to confluent_kafka nor on the system")
    lib = ctypes.CDLL(path)  # the library already loaded: same handle, same state
    lib.rd_kafka_name.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_name.restype = ctypes.c_char_p
    lib.rd_kafka_test_fatal_error.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    lib.rd_kafka_test_fatal_error.restype = ctypes.c_int
    return lib


def fatal_error(producer: Producer, code: int = UNKNOWN_PRODUCER_ID, reason: str = "test") -> None:
    """Raise a fatal error with underlying `code` inside `producer` (CPython: the client's
    `rd_kafka_t *` is the first field after the object header)."""
    lib = _librdkafka()
    handle = ctypes.c_void_p.from_address(id(producer) + object.__basicsize__).value
    name = lib.rd_kafka_name(handle) or b""
    assert b"#producer-" in name, f"not a producer handle: {name!r}"  # <client.id>#producer-N
    assert lib.rd_kafka_test_fatal_error(handle, code, reason.encode()) == 0
