"""PostgreSQL text forms -> change-event values, by type OID (the platform's real types)."""

from __future__ import annotations

import pytest
from connectors.sources.postgres_cdc.values import convert, parse_array
from streams.errors import DecodeError

TEXT_ARRAY, UUID_ARRAY, INT4_ARRAY, DATE_ARRAY = 1009, 2951, 1007, 1182
TIMESTAMPTZ, TIMETZ, TIME, UUID = 1184, 1266, 1083, 2950


def test_text_array_with_quotes_commas_and_null() -> None:
    text = '{form_responses.insert,"a, b","say \\"hi\\"",NULL,"NULL"}'
    assert convert(TEXT_ARRAY, text) == [
        "form_responses.insert",
        "a, b",
        'say "hi"',
        None,
        "NULL",
    ]


def test_empty_array_is_an_empty_list() -> None:
    assert convert(TEXT_ARRAY, "{}") == []


def test_int_array_elements_are_ints() -> None:
    assert convert(INT4_ARRAY, "{1,2,NULL}") == [1, 2, None]


def test_uuid_array_keeps_uuid_text() -> None:
    ids = "{6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01,6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a02}"
    assert convert(UUID_ARRAY, ids) == [
        "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01",
        "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a02",
    ]


def test_timestamptz_becomes_iso_8601_with_offset() -> None:
    assert convert(TIMESTAMPTZ, "2026-06-01 12:00:00.5+00") == "2026-06-01T12:00:00.500000+00:00"


def test_timestamptz_keeps_a_non_utc_offset() -> None:
    assert convert(TIMESTAMPTZ, "2026-06-01 12:00:00+05:30") == "2026-06-01T12:00:00+05:30"


def test_timetz_keeps_its_offset() -> None:
    assert convert(TIMETZ, "14:30:00+02") == "14:30:00+02"


def test_time_and_uuid_stay_text() -> None:
    assert (convert(TIME, "14:30:00"), convert(UUID, "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01")) == (
        "14:30:00",
        "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01",
    )


@pytest.mark.parametrize(
    "text", ["{{1,2},{3,4}}", "[0:1][1:2]={{1,2},{3,4}}", '{"open', '{"a"b}', "[0:2]={a,b}"]
)
def test_unsupported_or_malformed_arrays_are_decode_errors(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_array(text)


@pytest.mark.parametrize(
    ("type_oid", "text", "elements"),
    [
        (TEXT_ARRAY, "[0:1]={a,b}", ["a", "b"]),
        (INT4_ARRAY, "[-2:0]={1,2,3}", [1, 2, 3]),
        (TEXT_ARRAY, '[5:7]={"x,y",NULL,"[0:1]={q}"}', ["x,y", None, "[0:1]={q}"]),
        (DATE_ARRAY, '[0:1]={"0044-03-15 BC",infinity}', ["0044-03-15 BC", "infinity"]),
        (UUID_ARRAY, "[-1:-1]={6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01}",
         ["6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01"]),
    ],
)  # fmt: skip
def test_an_array_with_other_bounds_carries_its_elements(
    type_oid: int, text: str, elements: list[object]
) -> None:
    assert convert(type_oid, text) == elements


@pytest.mark.parametrize("text", ["{{a,b},{c,d}}", "[0:1][1:2]={{a,b},{c,d}}", "{{{a}}}"])
def test_a_multi_dimensional_array_says_what_to_do(text: str) -> None:
    with pytest.raises(DecodeError, match="multi-dimensional") as refused:
        convert(TEXT_ARRAY, text)
    assert "WEDSYNC_CDC_EXCLUDE_COLUMNS" in str(refused.value)


def test_a_value_that_is_not_its_type_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="integer"):
        convert(23, "forty-two")


def test_a_bc_timestamptz_keeps_postgresqls_text() -> None:
    assert convert(TIMESTAMPTZ, "0044-03-15 10:00:00+00 BC") == "0044-03-15 10:00:00+00 BC"


def test_a_timestamptz_after_year_9999_keeps_postgresqls_text() -> None:
    assert convert(TIMESTAMPTZ, "10000-01-01 00:00:00+00") == "10000-01-01 00:00:00+00"


def test_a_timestamptz_that_is_not_iso_is_still_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="DateStyle"):
        convert(TIMESTAMPTZ, "Sat Jun 01 12:00:00 2026 UTC")
