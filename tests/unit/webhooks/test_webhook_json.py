"""Request bodies as JSON: every failure is a 400 with a reason, never an exception."""

from __future__ import annotations

import pytest
from connectors.sources.webhooks.verify import MAX_JSON_DEPTH, Rejected, parse_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def refusal(body: bytes) -> tuple[int, str]:
    with pytest.raises(Rejected) as info:
        parse_json(body)
    return info.value.status, info.value.reason


def test_a_document_is_parsed() -> None:
    assert parse_json(b'{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}


def test_nesting_at_the_limit_is_accepted() -> None:
    assert parse_json(nested(MAX_JSON_DEPTH)) is not None


def test_nesting_past_the_limit_is_400() -> None:
    assert refusal(nested(MAX_JSON_DEPTH + 1)) == (400, "too_deeply_nested")


def test_nesting_past_the_interpreter_recursion_limit_is_400() -> None:
    assert refusal(nested(200_000)) == (400, "too_deeply_nested")


def test_many_shallow_containers_are_accepted() -> None:
    assert len(parse_json(b"[" + b",".join([b'{"a":[1]}'] * 5000) + b"]")) == 5000


def test_invalid_utf8_is_400() -> None:
    assert refusal(b'{"a":"\xff"}') == (400, "malformed_json")


def test_truncated_json_is_400() -> None:
    assert refusal(b'{"a":[1,2') == (400, "malformed_json")


@pytest.mark.parametrize("exact", [False, True])
def test_an_integer_past_pythons_digit_limit_is_400_not_500(exact: bool) -> None:
    with pytest.raises(Rejected, match="too many digits") as refused:
        parse_json(b'{"a": ' + b"1" * 5000 + b"}", exact_numbers=exact)
    assert refused.value.status == 400


def test_a_number_whose_exponent_would_print_a_huge_numeral_is_refused() -> None:
    from connectors.sources.webhooks.typed import decode, pg_type

    document = parse_json(b'{"a": 1e999999999}', exact_numbers=True)
    for kind in ("numeric", "jsonb", "interval"):
        with pytest.raises(ValueError, match="out of numeric's range"):
            decode(pg_type(kind), document["a"])
