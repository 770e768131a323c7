"""Pure: a JSON column value of a known PostgreSQL type -> the value the PostgreSQL CDC source
emits for it, so a change gives the same record whichever path it took.

The PostgreSQL path decodes the server's text output by type OID
(`connectors.sources.postgres_cdc.values.convert`, the one codec of column values). Here a
JSON value (numbers parsed exactly: `decimal.Decimal`, never float) is first written as that
server text, then handed to the same `convert`:

    numeric(p,s)   40.5, "40.5"                -> '40.50' (the declared scale; a value with
                                                  more decimals or digits than the type holds
                                                  is refused, never rounded)
    timestamptz    '2026-06-01T14:00:00+02:00' -> the instant in UTC, as the CDC source
    timestamp      '2026-06-01T12:00:00.5'     -> '2026-06-01 12:00:00.5'
    time, timetz   '14:30:00.500000+02:00'     -> '14:30:00.5+02'
    uuid           any case or form uuid reads -> its lower-case hyphenated text
    json, jsonb    an object, list or scalar   -> jsonb's own text (keys by length, then bytes)
    arrays         a JSON list                 -> a list of its elements, each decoded
    bool, integers, floats, date, text         -> checked, as the CDC source gives them

`pg_type` reads a type name as PostgreSQL's `format_type` prints it (`numeric(5,2)`,
`timestamp with time zone`, `text[]`) or as Supabase Realtime's `columns` give it (`int4`,
`timestamptz`, `_text`). A type this module does not know keeps the old generic mapping
(strings as they are, numbers exact, a list of scalars as a list, other JSON as jsonb
text), which is also what the CDC
source does with a type it does not know (the server's text as it is).

Failure: `ValueError` saying what the value should have been; the caller names the column.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from streams.errors import DecodeError
from streams.models import ColumnValue, Scalar

from connectors.sources.postgres_cdc.values import TYPE_NAMES, convert

_OIDS: dict[str, int] = {name: oid for oid, name in TYPE_NAMES.items()}
_ALIASES: dict[str, str] = {
    "bool": "boolean",
    "int2": "smallint",
    "int4": "integer",
    "int": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "varchar": "character varying",
    "bpchar": "character",
    "char": "character",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timetz": "time with time zone",
    "time": "time without time zone",
    "decimal": "numeric",
}
_MODIFIER = re.compile(r"^(?P<base>[a-z ]+?)\s*\((?P<args>[0-9, ]+)\)(?P<rest>[a-z ]*)$")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_NUMERIC_BEFORE, _NUMERIC_AFTER = 131072, 16383  # PostgreSQL's numeric limits
_INFINITE = frozenset({"date", "timestamp with time zone", "timestamp without time zone"})


@dataclass(frozen=True, slots=True)
class PgType:
    """A column type: its `format_type` base name, whether it is an array, numeric's scale."""

    name: str  # e.g. "numeric", "time with time zone", "" when not known
    array: bool = False
    precision: int | None = None
    scale: int | None = None

    @property
    def known(self) -> bool:
        return self.name in _OIDS


def pg_type(text: str) -> PgType:
    """The type a name stands for (see the module doc); an unknown one has `known` False."""
    name = text.strip().lower()
    array = False
    if name.endswith("[]"):
        name, array = name[:-2].strip(), True
    elif name.startswith("_"):
        name, array = name[1:], True
    precision = scale = None
    if (match := _MODIFIER.match(name)) is not None:
        name = (match["base"] + match["rest"]).strip()
        args = [int(a) for a in match["args"].replace(" ", "").split(",") if a]
        if name in ("numeric", "decimal") and args:
            precision, scale = args[0], (args[1] if len(args) > 1 else 0)
    name = _ALIASES.get(name, name)
    return PgType(name, array, precision, scale)


def decode(kind: PgType, value: Any) -> ColumnValue:
    """`value` (parsed JSON) of a column of type `kind` as the CDC source emits it; None
    stays None. ValueError with the reason when it is not a value of that type."""
    if value is None:
        return None
    if not kind.known:
        return _generic(value)
    if kind.array:
        if not isinstance(value, list):
            raise ValueError(f"expected a JSON array for {kind.name}[], not {_what(value)}")
        return [_element(kind, item) for item in value]
    text = _text(kind, value)
    try:
        return convert(_OIDS[kind.name], text)
    except DecodeError as exc:  # the codec's own refusal: a value of the wrong type
        raise ValueError(str(exc)) from None


def _element(kind: PgType, item: Any) -> Scalar:
    if item is None:
        return None
    if isinstance(item, list):
        raise ValueError("multi-dimensional arrays are not supported")
    element = PgType(kind.name, False, kind.precision, kind.scale)
    result = decode(element, item)
    assert not isinstance(result, list)
    return result


def _what(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _text(kind: PgType, value: Any) -> str:
    """`value` written as PostgreSQL's text output of `kind` (session TimeZone=UTC)."""
    name = kind.name
    if name == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, not {_what(value)}")
        return "t" if value else "f"
    if name in ("smallint", "integer", "bigint", "oid"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, not {_what(value)}")
        return str(value)
    if name in ("real", "double precision"):
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise ValueError(f"expected a number, not {_what(value)}")
        return str(float(value))
    if name == "numeric":
        return _numeric(kind, value)
    if name in ("json", "jsonb"):
        return jsonb_text(value)
    if not isinstance(value, str):
        raise ValueError(f"expected {name} as a string, not {_what(value)}")
    if name == "uuid":
        return str(uuid.UUID(value))
    if value in ("infinity", "-infinity") and name in _INFINITE:
        return value  # PostgreSQL's own text, kept as the CDC source keeps it
    if name == "date":
        return date.fromisoformat(value).isoformat()
    if name == "timestamp with time zone":
        return _timestamptz(value)
    if name == "timestamp without time zone":
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            raise ValueError("a timestamp without time zone has no offset")
        return f"{parsed.date().isoformat()} {_clock(parsed.time())}"
    if name == "time without time zone":
        return _time(value, zoned=False)
    if name == "time with time zone":
        return _time(value, zoned=True)
    return value


def _numeric(kind: PgType, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"expected an exact number, not {_what(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not number.is_finite():
        return "NaN" if number.is_nan() else ("Infinity" if number > 0 else "-Infinity")
    _plain(number)  # within numeric's range before any arithmetic
    if kind.scale is not None:
        declared = f"numeric({kind.precision},{kind.scale})"
        with localcontext() as exact_context:  # as many digits as the value has, never fewer
            exact_context.prec = len(number.as_tuple().digits) + kind.scale + 2
            exact = number.quantize(Decimal(1).scaleb(-kind.scale))
        if exact != number:
            raise ValueError(f"{number} has more decimals than {declared} holds")
        if kind.precision is not None and abs(exact) >= Decimal(10) ** (
            kind.precision - kind.scale
        ):
            raise ValueError(f"{number} has more digits than {declared} holds")
        number = exact
    return _plain(number)


def _plain(number: Decimal) -> str:
    """A finite Decimal written out in full; ValueError past numeric's range (which also
    keeps `1e999999999` from becoming a billion-digit string)."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if number.adjusted() >= _NUMERIC_BEFORE or exponent < -_NUMERIC_AFTER:
        raise ValueError(
            f"out of numeric's range ({_NUMERIC_BEFORE} digits before the point, "
            f"{_NUMERIC_AFTER} after)"
        )
    return format(number, "f")


def _timestamptz(value: str) -> str:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a timestamp with time zone needs its offset (e.g. +00:00 or Z)")
    return parsed.astimezone(UTC).isoformat()


def _clock(value: time) -> str:
    """HH:MM:SS[.f] as PostgreSQL prints it (no trailing zeros in the fraction)."""
    text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _time(value: str, *, zoned: bool) -> str:
    if value.startswith("24:00:00"):  # PostgreSQL's end of day; Python's time has none
        rest = value[8:]
        if rest.lstrip(".0")[:1] not in ("", "+", "-", "Z"):
            raise ValueError("not a time of day")
        parsed = time.fromisoformat("00:00:00" + rest.lstrip(".0"))
        clock = "24:00:00"
    else:
        parsed = time.fromisoformat(value)
        clock = _clock(parsed)
    offset = parsed.utcoffset()
    if not zoned:
        if offset is not None:
            raise ValueError("a time without time zone has no offset")
        return clock
    if offset is None:
        raise ValueError("a time with time zone needs its offset (e.g. +02:00 or Z)")
    seconds = int(offset.total_seconds())
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    hours, minutes, secs = seconds // 3600, seconds % 3600 // 60, seconds % 60
    zone = f"{sign}{hours:02d}" + (f":{minutes:02d}" if minutes or secs else "")
    return clock + zone + (f":{secs:02d}" if secs else "")


def jsonb_text(value: Any) -> str:
    """PostgreSQL's text output of `value` as jsonb: object keys shorter first, then by
    bytes (the last of duplicate keys wins, as json.loads keeps it), `", "` and `": "`."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        items = (f"{json.dumps(k, ensure_ascii=False)}: {jsonb_text(value[k])}" for k in keys)
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("JSON has no NaN or Infinity")
        return _plain(value)
    if isinstance(value, float):
        raise ValueError("JSON numbers must be parsed exactly (Decimal), not as float")
    return json.dumps(value, ensure_ascii=False)


def _generic(value: Any) -> ColumnValue:
    """A column of a type this module does not know: as the path always carried it."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if _LONG_MIN <= value <= _LONG_MAX else str(value)
    if isinstance(value, Decimal):
        return _plain(value) if value.is_finite() else str(value)
    if isinstance(value, float):
        return value
    if isinstance(value, list) and all(not isinstance(v, list | dict) for v in value):
        return [None if v is None else _scalar(_generic(v)) for v in value]  # an array
    return jsonb_text(value)


def _scalar(value: ColumnValue) -> Scalar:
    assert not isinstance(value, list)
    return value
