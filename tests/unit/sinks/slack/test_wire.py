"""Slack wire logic: validation, request bodies, classification of every code PROVIDERS.md
lists (and the rest of the tables), with verdicts written out here."""

from __future__ import annotations

import json

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.slack import wire


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# ---- chat.postMessage error codes ---------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error", "verdict", "error_class"),
    [
        (429, "ratelimited", Verdict.BACKPRESSURE, "slack.ratelimited"),
        (429, "rate_limited", Verdict.BACKPRESSURE, "slack.rate_limited"),
        (200, "message_limit_exceeded", Verdict.BACKPRESSURE, "slack.message_limit_exceeded"),
        (200, "internal_error", Verdict.RETRY, "slack.internal_error"),
        (200, "service_unavailable", Verdict.RETRY, "slack.service_unavailable"),
        (200, "request_timeout", Verdict.RETRY, "slack.request_timeout"),
        (200, "fatal_error", Verdict.FATAL, "slack.fatal_error"),
        (200, "channel_not_found", Verdict.FATAL, "slack.channel_not_found"),
        (200, "not_in_channel", Verdict.FATAL, "slack.not_in_channel"),
        (200, "msg_too_long", Verdict.FATAL, "slack.msg_too_long"),
        (200, "invalid_blocks", Verdict.FATAL, "slack.invalid_blocks"),
        (200, "no_text", Verdict.FATAL, "slack.no_text"),
        (200, "no_service", Verdict.FATAL, "slack.no_service"),
        (200, "is_archived", Verdict.DISABLE, "slack.is_archived"),
        (200, "channel_is_archived", Verdict.DISABLE, "slack.channel_is_archived"),
        (200, "invalid_auth", Verdict.REAUTH, "slack.invalid_auth"),
        (200, "not_authed", Verdict.REAUTH, "slack.not_authed"),
        (200, "token_revoked", Verdict.REAUTH, "slack.token_revoked"),
        (200, "account_inactive", Verdict.REAUTH, "slack.account_inactive"),
        (200, "invalid_token", Verdict.REAUTH, "slack.invalid_token"),
        (200, "token_expired", Verdict.REAUTH, "slack.token_expired"),
        (200, "missing_scope", Verdict.REAUTH, "slack.missing_scope"),
    ],
)
def test_api_error_codes(status: int, error: str, verdict: Verdict, error_class: str) -> None:
    answer = wire.classify_api_error(status, error, None)
    assert answer.verdict is verdict
    assert answer.error_class == error_class
    assert answer.status == status


def test_ratelimited_carries_retry_after() -> None:
    answer = wire.classify_api_error(429, "ratelimited", 30.0)
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.retry_after == 30.0


def test_429_without_a_code_is_ratelimited() -> None:
    answer = wire.classify_api_error(429, None, 5.0)
    assert (answer.verdict, answer.error_class, answer.retry_after) == (
        Verdict.BACKPRESSURE,
        "slack.ratelimited",
        5.0,
    )


def test_fatal_error_warns_it_may_have_posted() -> None:
    answer = wire.classify_api_error(200, "fatal_error", None)
    assert answer.verdict is Verdict.FATAL
    assert "may have been posted" in answer.message


@pytest.mark.parametrize(
    ("status", "verdict", "error_class"),
    [
        (500, Verdict.RETRY, "http.500"),
        (502, Verdict.RETRY, "http.502"),
        (503, Verdict.RETRY, "http.503"),
        (504, Verdict.RETRY, "http.504"),
        (401, Verdict.REAUTH, "http.401"),
        (404, Verdict.FATAL, "http.404"),
    ],
)
def test_unknown_code_falls_back_to_the_status(
    status: int, verdict: Verdict, error_class: str
) -> None:
    answer = wire.classify_api_error(status, None, None)
    assert (answer.verdict, answer.error_class) == (verdict, error_class)


def test_unknown_code_on_200_is_fatal_with_a_closed_error_class() -> None:
    answer = wire.classify_api_error(200, "brand_new_error", None)
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "slack.unknown_error"
    assert "brand_new_error" in answer.message


def test_unknown_code_is_sanitised_in_the_message() -> None:
    answer = wire.classify_api_error(200, "x https://hooks.slack.com/services/T/B/SECRET", None)
    assert "/" not in answer.message
    assert ":" not in answer.message.removeprefix("Slack answered")


def test_ok_answer_carries_the_ts() -> None:
    answer = wire.classify_api_ok({"ok": True, "channel": "C1", "ts": "1700000000.000100"})
    assert answer.verdict is Verdict.OK
    assert answer.provider_id == "1700000000.000100"


# ---- incoming webhooks ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "verdict", "error_class"),
    [
        (400, "invalid_payload", Verdict.FATAL, "slack.invalid_payload"),
        (400, "invalid_blocks", Verdict.FATAL, "slack.invalid_blocks"),
        (403, "action_prohibited", Verdict.FATAL, "slack.action_prohibited"),
        (403, "invalid_token", Verdict.REAUTH, "slack.invalid_token"),
        (404, "no_service", Verdict.FATAL, "slack.no_service"),
        (404, "channel_not_found", Verdict.FATAL, "slack.channel_not_found"),
        (410, "channel_is_archived", Verdict.DISABLE, "slack.channel_is_archived"),
        (410, "", Verdict.DISABLE, "slack.channel_is_archived"),
        (500, "rollup_error", Verdict.RETRY, "slack.rollup_error"),
        (503, "", Verdict.RETRY, "http.503"),
        (429, "rate_limited", Verdict.BACKPRESSURE, "slack.rate_limited"),
        (429, "", Verdict.BACKPRESSURE, "slack.rate_limited"),
        (400, "something_new", Verdict.FATAL, "http.400"),
    ],
)
def test_webhook_answers(status: int, body: str, verdict: Verdict, error_class: str) -> None:
    answer = wire.classify_webhook(status, body, None)
    assert (answer.verdict, answer.error_class, answer.status) == (verdict, error_class, status)


def test_webhook_ok() -> None:
    answer = wire.classify_webhook(200, "ok", None)
    assert answer.verdict is Verdict.OK
    assert answer.provider_id is None


def test_webhook_429_carries_retry_after() -> None:
    assert wire.classify_webhook(429, "rate_limited", 12.0).retry_after == 12.0


# ---- validation ------------------------------------------------------------------------------
def test_parse_blocks_reads_a_json_array() -> None:
    assert wire.parse_blocks(json.dumps([section("hi")])) == [section("hi")]


@pytest.mark.parametrize("raw", ["{", '{"type": "section"}', "[1, 2]", '"text"'])
def test_parse_blocks_refuses_what_is_not_an_array_of_objects(raw: str) -> None:
    assert wire.parse_blocks(raw) is None


def test_empty_blocks_json_means_no_blocks() -> None:
    assert wire.parse_blocks("") == []


def test_unparsable_blocks_are_fatal_invalid_blocks() -> None:
    answer = wire.check_message("hi", None)
    assert answer is not None
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.invalid_blocks")


def test_fifty_blocks_pass() -> None:
    assert wire.check_message("hi", [section("x")] * 50) is None


def test_fifty_one_blocks_are_too_long() -> None:
    answer = wire.check_message("hi", [section("x")] * 51)
    assert answer is not None
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.msg_too_long")


def test_section_text_of_3000_characters_passes() -> None:
    assert wire.check_message("hi", [section("a" * 3000)]) is None


def test_section_text_over_3000_characters_is_too_long() -> None:
    answer = wire.check_message("hi", [section("a" * 3001)])
    assert answer is not None
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.msg_too_long")


def test_long_text_outside_sections_is_not_a_section_limit() -> None:
    header = {"type": "context", "elements": [{"type": "mrkdwn", "text": "a" * 3001}]}
    assert wire.check_message("hi", [header]) is None


def test_text_over_40000_characters_is_too_long() -> None:
    answer = wire.check_message("a" * 40_001, [])
    assert answer is not None
    assert answer.error_class == "slack.msg_too_long"


def test_a_message_needs_text_or_blocks() -> None:
    answer = wire.check_message("", [])
    assert answer is not None
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "slack.no_text")


# ---- request bodies ---------------------------------------------------------------------------
def test_post_message_args_carry_channel_text_and_blocks() -> None:
    args = wire.post_message_args("C024BE91L", "Wedding moved", [section("moved")])
    assert args == {"channel": "C024BE91L", "text": "Wedding moved", "blocks": [section("moved")]}


def test_post_message_args_leave_out_empty_blocks() -> None:
    assert wire.post_message_args("C1", "hi", []) == {"channel": "C1", "text": "hi"}


def test_webhook_body_has_no_channel() -> None:
    assert wire.webhook_body("hi", [section("x")]) == {"text": "hi", "blocks": [section("x")]}
