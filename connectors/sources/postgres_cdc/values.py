"""PostgreSQL text output -> change-event column values, by type OID. Pure.

The replication and snapshot sessions run with `DateStyle=ISO, YMD`, `TimeZone=UTC` and
`IntervalStyle=postgres` (`SESSION_OPTIONS`), so the text forms below are the ones parsed:

    bool                      't' / 'f'                        -> bool
    int2, int4, int8, oid     '42'                             -> int
    float4, float8            '1.5', 'NaN', 'Infinity'         -> float
    timestamptz               '2026-06-01 12:00:00.5+00'       -> '2026-06-01T12:00:00.500000+00:00'
      outside years 1-9999    '0044-03-15 10:00:00+00 BC',     -> the server's text, as is
      and +-infinity          '10000-01-01 00:00:00+00', 'infinity'  (no ISO 8601 form here)
    arrays of the above,      '{a,"b c",NULL}'                 -> ['a', 'b c', None]
      and of text-like types  '[0:1]={a,b}' (other bounds)     -> ['a', 'b'] (the elements)
      multi-dimensional       '{{a,b},{c,d}}'                  -> DecodeError (a dead letter
                                                                  saying what to do)
    everything else           uuid, text, numeric (exact), date 'YYYY-MM-DD', time,
                              timetz '14:30:00+02' (offset kept), json/jsonb (JSON text)
                                                               -> the server's text, as is

`TYPE_NAMES` names the built-in OIDs the way `format_type` does, so the source contract can
check a Relation message's columns without a catalog query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from streams.errors import DecodeError
from streams.models import ColumnValue, Scalar

from connectors.sources.postgres_cdc.dead import BadColumn

SESSION_OPTIONS = "-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres"

TYPE_NAMES: dict[int, str] = {
    16: "boolean",
    20: "bigint",
    21: "smallint",
    23: "integer",
    25: "text",
    26: "oid",
    114: "json",
    700: "real",
    701: "double precision",
    1042: "character",
    1043: "character varying",
    1082: "date",
    1083: "time without time zone",
    1114: "timestamp without time zone",
    1184: "timestamp with time zone",
    1266: "time with time zone",
    1700: "numeric",
    2950: "uuid",
    3802: "jsonb",
    1000: "boolean[]",
    1005: "smallint[]",
    1007: "integer[]",
    1009: "text[]",
    1015: "character varying[]",
    1016: "bigint[]",
    1021: "real[]",
    1022: "double precision[]",
    1182: "date[]",
    1231: "numeric[]",
    2951: "uuid[]",
}

_BOOL, _INTS, _FLOATS, _TIMESTAMPTZ = 16, frozenset({20, 21, 23, 26}), frozenset({700, 701}), 1184

# array OID -> element OID
_ARRAYS: dict[int, int] = {
    1000: 16,
    1005: 21,
    1007: 23,
    1009: 25,
    1015: 1043,
    1016: 20,
    1021: 700,
    1022: 701,
    1182: 1082,
    1231: 1700,
    2951: 2950,
}


def _timestamptz(text: str) -> str:
    if text in ("infinity", "-infinity") or _outside_datetime(text):
        return text  # PostgreSQL's own text: a reader that needs an instant refuses it there
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        raise DecodeError(
            f"timestamptz {text!r} is not in the ISO form the source's sessions ask for "
            "(DateStyle=ISO, TimeZone=UTC in the startup options): the server did not apply "
            "them; check that nothing between the source and PostgreSQL rewrites startup "
            "options, or ALTER ROLE <cdc user> SET DateStyle = 'ISO, YMD'"
        ) from None


def _outside_datetime(text: str) -> bool:
    """A timestamp PostgreSQL prints before year 1 (`... BC`) or after 9999 (a 5+ digit
    year): valid there, not representable by Python's datetime."""
    year = text.split("-", 1)[0]
    return text.endswith(" BC") or (len(year) > 4 and year.isdigit())


def scalar(type_oid: int, text: str) -> Scalar:
    """One non-array value."""
    if type_oid == _BOOL:
        return text in ("t", "true")  # output function "t"; a ::text cast gives "true"
    if type_oid in _INTS:
        return int(text)
    if type_oid in _FLOATS:
        return float(text)
    if type_oid == _TIMESTAMPTZ:
        return _timestamptz(text)
    return text


def convert(type_oid: int, text: str) -> ColumnValue:
    """The change-event value of one column's text form, chosen by its type OID;
    DecodeError when the text is not a value of that type."""
    try:
        element = _ARRAYS.get(type_oid)
        if element is not None:
            return [None if i is None else scalar(element, i) for i in parse_array(text)]
        return scalar(type_oid, text)
    except ValueError as exc:
        name = TYPE_NAMES.get(type_oid, f"oid {type_oid}")
        raise DecodeError(f"{text[:60]!r} is not a {name}: {exc}") from None


_BOUNDS = re.compile(r"\[(-?\d+):(-?\d+)\]")
MULTI_DIMENSIONAL = (
    "multi-dimensional arrays are not supported: the change event carries one-dimensional "
    "arrays only. Store the column one-dimensional (or as jsonb), or leave it out "
    "(WEDSYNC_CDC_EXCLUDE_COLUMNS), then write the row again (this dead letter names its "
    "key and carries its columns)"
)


def parse_array(text: str) -> list[str | None]:
    """Elements of a one-dimensional PostgreSQL array literal (`{a,"b,c",NULL}`), as text.

    Quoted elements may hold commas, braces and backslash escapes; an unquoted NULL is SQL
    NULL. A lower bound other than 1 is printed as a decoration (`[0:1]={a,b}`): the
    elements are carried, the bounds are not (the schema's arrays have none). Multi-
    dimensional arrays raise DecodeError saying what to do (the schema cannot hold them)."""
    body, expected = _undecorated(text)
    if not (body.startswith("{") and body.endswith("}")):
        raise DecodeError(f"not an array literal: {text[:60]!r}")
    if body.startswith("{{"):
        raise DecodeError(MULTI_DIMENSIONAL)
    items = _elements(body[1:-1])
    if expected is not None and len(items) != expected:
        raise DecodeError(f"array bounds say {expected} elements, the literal has {len(items)}")
    return items


def _undecorated(text: str) -> tuple[str, int | None]:
    """The literal without its `[lower:upper]...=` bounds, and the element count they say
    (None when undecorated)."""
    if not text.startswith("["):
        return text, None
    head, equals, body = text.partition("=")
    dims = _BOUNDS.findall(head)
    if not equals or "".join(f"[{lo}:{hi}]" for lo, hi in dims) != head or not dims:
        raise DecodeError(f"malformed array bounds {head[:60]!r}")
    if len(dims) > 1:
        raise DecodeError(MULTI_DIMENSIONAL)
    lower, upper = (int(v) for v in dims[0])
    return body, upper - lower + 1


def _elements(body: str) -> list[str | None]:
    items: list[str | None] = []
    i, n = 0, len(body)
    if n == 0:
        return items
    while i <= n:
        if i < n and body[i] == '"':
            value, i = _quoted(body, i + 1)
            items.append(value)
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            raw = body[i:end].strip()
            if raw.startswith("{"):
                raise DecodeError(MULTI_DIMENSIONAL)
            items.append(None if raw.upper() == "NULL" else raw)
            i = end
        if i < n and body[i] != ",":
            raise DecodeError(f"malformed array literal near {body[i : i + 20]!r}")
        i += 1
    return items


def _quoted(body: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise DecodeError("unterminated quoted array element")


def convert_row(
    columns: Sequence[tuple[str, int]], texts: Sequence[str | None]
) -> dict[str, ColumnValue]:
    """One row's text forms (None for SQL NULL) as change-event values, by each column's
    (name, type OID); BadColumn naming the first column whose text is not its type."""
    row: dict[str, ColumnValue] = {}
    for (name, type_oid), text in zip(columns, texts, strict=True):
        try:
            row[name] = None if text is None else convert(type_oid, text)
        except DecodeError as exc:
            raise BadColumn(name, DecodeError(f"{name}: {exc}")) from None
    return row
