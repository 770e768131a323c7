"""Pure: Debezium's temporal column encodings -> ISO 8601 text, which `typed.py` then writes
as the PostgreSQL CDC source emits it (e.g. time '14:30:00.5', timestamp with a space).

Debezium's JsonConverter with `schemas.enable=true` sends `{"schema", "payload"}`; the
envelope schema's `before` and `after` structs name each column's semantic type
(`debezium.py` reads them). Converted by that name:

    io.debezium.time.Date, org.apache.kafka.connect.data.Date    int days since the epoch
                                                   -> date       'YYYY-MM-DD'
    io.debezium.time.Time, org.apache.kafka.connect.data.Time    int ms past midnight
    io.debezium.time.MicroTime / NanoTime          us / ns past midnight
                                                   -> time       'HH:MM:SS[.ffffff]' (24:00:00 kept)
    io.debezium.time.ZonedTime                     'HH:MM:SS[.f]Z' -> timetz, offset kept
                                                                 'HH:MM:SS[.ffffff]+00:00'
    io.debezium.time.Timestamp, org.apache.kafka.connect.data.Timestamp   ms since the epoch
    io.debezium.time.MicroTimestamp / NanoTimestamp                        us / ns
                                                   -> timestamp  'YYYY-MM-DDTHH:MM:SS[.ffffff]'
                                                      (no offset: Debezium documents these as
                                                      wall-clock values without a zone)
    io.debezium.time.ZonedTimestamp                ISO 8601 string -> the instant, in UTC:
                                                      'YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00'

Nanoseconds are truncated to microseconds (PostgreSQL's precision). A value that is not of
its type (a string for a Date, a ZonedTimestamp without an offset, out of range) raises
ValueError with the reason; the caller names the column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1)
_DAY_US = 86_400_000_000


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, not {type(value).__name__}")
    return value


def _date(value: Any) -> str:
    return (_EPOCH + timedelta(days=_integer(value))).date().isoformat()


def _time_us(micros: int) -> str:
    if micros == _DAY_US:  # PostgreSQL's time '24:00:00'
        return "24:00:00"
    if not 0 <= micros < _DAY_US:
        raise ValueError("not a time of day (outside 00:00 to 24:00)")
    return (_EPOCH + timedelta(microseconds=micros)).time().isoformat()


def _timestamp_us(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat()


def _with_offset(value: Any, parse: Callable[[str], Any], what: str) -> Any:
    """`value` parsed as a time or timestamp that must carry a UTC offset."""
    if not isinstance(value, str):
        raise ValueError(f"expected a {what} as text, not {type(value).__name__}")
    parsed = parse(value)
    if parsed.tzinfo is None:
        raise ValueError(f"a {what} without an offset")
    return parsed


def _zoned_time(value: Any) -> str:
    return str(_with_offset(value, time.fromisoformat, "ZonedTime").isoformat())


def _zoned_timestamp(value: Any) -> str:
    parsed = _with_offset(value, datetime.fromisoformat, "ZonedTimestamp")
    return str(parsed.astimezone(UTC).isoformat())


CONVERTERS: dict[str, Callable[[Any], str]] = {
    "io.debezium.time.Date": _date,
    "org.apache.kafka.connect.data.Date": _date,
    "io.debezium.time.Time": lambda v: _time_us(_integer(v) * 1000),
    "org.apache.kafka.connect.data.Time": lambda v: _time_us(_integer(v) * 1000),
    "io.debezium.time.MicroTime": lambda v: _time_us(_integer(v)),
    "io.debezium.time.NanoTime": lambda v: _time_us(_integer(v) // 1000),
    "io.debezium.time.ZonedTime": _zoned_time,
    "io.debezium.time.Timestamp": lambda v: _timestamp_us(_integer(v) * 1000),
    "org.apache.kafka.connect.data.Timestamp": lambda v: _timestamp_us(_integer(v) * 1000),
    "io.debezium.time.MicroTimestamp": lambda v: _timestamp_us(_integer(v)),
    "io.debezium.time.NanoTimestamp": lambda v: _timestamp_us(_integer(v) // 1000),
    "io.debezium.time.ZonedTimestamp": _zoned_timestamp,
}


def to_text(type_name: str, value: Any) -> Any:
    """`value` of a column whose semantic type is `type_name` (a key of `CONVERTERS`),
    as text; None stays None. ValueError when the value is not of that type."""
    if value is None:
        return None
    try:
        return CONVERTERS[type_name](value)
    except OverflowError:
        raise ValueError("out of the representable range") from None
