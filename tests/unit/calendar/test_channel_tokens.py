"""Stateless channel tokens (streams/logic/calendar/channels.py)."""

from __future__ import annotations

import pytest
from streams.logic.calendar.channels import MAX_TOKEN_CHARS, issue_token, verify_token

KEY, OLD, OTHER = b"current-key-0123456789", b"previous-key-0123456789", b"someone-else"
INTEGRATION = "8c1d7f0e-5b8a-4d2e-9a7c-3f1e2d4c5b6a"
CHANNEL = "3f0a9e4c-1b2d-4c5e-8f7a-6b5c4d3e2f1a"


def test_a_token_verifies_to_its_integration_id() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    assert verify_token([KEY], token, CHANNEL) == INTEGRATION


def test_a_token_has_the_documented_shape_and_no_key_inside() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    version, integration, mac = token.split(".")
    assert (version, integration, len(mac)) == ("v1", INTEGRATION, 32)
    assert KEY.decode() not in token


def test_a_token_made_with_another_key_is_refused() -> None:
    token = issue_token([OTHER], INTEGRATION, CHANNEL)
    assert verify_token([KEY, OLD], token, CHANNEL) is None


def test_a_token_made_with_the_previous_key_verifies_while_keys_rotate() -> None:
    token = issue_token([OLD], INTEGRATION, CHANNEL)
    assert verify_token([KEY, OLD], token, CHANNEL) == INTEGRATION


def test_new_tokens_are_made_with_the_first_key() -> None:
    token = issue_token([KEY, OLD], INTEGRATION, CHANNEL)
    assert verify_token([KEY], token, CHANNEL) == INTEGRATION
    assert verify_token([OLD], token, CHANNEL) is None


def test_a_token_is_refused_for_another_channel_id() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    assert verify_token([KEY], token, CHANNEL + "x") is None


def test_a_token_with_a_swapped_integration_id_is_refused() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    forged = token.replace(INTEGRATION, "0" * len(INTEGRATION))
    assert verify_token([KEY], forged, CHANNEL) is None


def test_a_token_with_a_flipped_mac_character_is_refused() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert verify_token([KEY], forged, CHANNEL) is None


@pytest.mark.parametrize(
    "token",
    ["", "v1", "v1..", "v1.x", "v2.x." + "A" * 32, "v1.a.b.c", "v1.x." + "A" * 31,
     "v1.x." + "A" * 33, "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "v1.é." + "A" * 32,
     "v1." + "x" * 300 + "." + "A" * 32, None, 12, b"v1.x.y"],
)  # fmt: skip
def test_a_malformed_token_is_refused_without_an_exception(token: object) -> None:
    assert verify_token([KEY], token, CHANNEL) is None


def test_a_missing_channel_id_is_refused() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    assert verify_token([KEY], token, "") is None


def test_no_keys_verify_nothing() -> None:
    token = issue_token([KEY], INTEGRATION, CHANNEL)
    assert verify_token([], token, CHANNEL) is None


def test_an_integration_id_with_a_dot_is_refused_at_issue_time() -> None:
    with pytest.raises(ValueError, match="no '\\.'"):
        issue_token([KEY], "a.b", CHANNEL)


def test_issuing_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        issue_token([], INTEGRATION, CHANNEL)


def test_a_uuid_token_fits_graph_client_state_and_google_limits() -> None:
    token = issue_token([KEY], INTEGRATION, "c" * 64)
    assert len(token) <= 128 <= 256


def test_a_token_longer_than_the_client_state_limit_is_refused_at_issue_time() -> None:
    with pytest.raises(ValueError, match=str(MAX_TOKEN_CHARS)):
        issue_token([KEY], "i" * 100, CHANNEL)
