"""Twilio wire logic: validation, the Messages.json request, classification of every code
PROVIDERS.md lists (and the rest of the tables), with verdicts written out here."""

from __future__ import annotations

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.sms import wire

NUMBER = "+447700900123"


def twilio_error(code: int, status: int) -> dict[str, object]:
    return {
        "code": code,
        "message": f"The 'To' number {NUMBER} is not valid",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        (429, 20429, Verdict.BACKPRESSURE),
        (500, 20500, Verdict.RETRY),
        (503, 20503, Verdict.RETRY),
        (401, 20003, Verdict.REAUTH),
        (400, 21211, Verdict.FATAL),
        (400, 21614, Verdict.FATAL),
        (400, 21635, Verdict.FATAL),
        (400, 21408, Verdict.FATAL),
        (400, 21617, Verdict.FATAL),
        (400, 21610, Verdict.DISABLE),
    ],
)
def test_api_error_codes(status: int, code: int, verdict: Verdict) -> None:
    answer = wire.classify(status, twilio_error(code, status), None)
    assert answer.verdict is verdict
    assert answer.error_class == f"twilio.{code}"
    assert answer.status == status


def test_twilio_messages_never_reach_the_answer() -> None:
    answer = wire.classify(400, twilio_error(21211, 400), None)
    assert NUMBER not in answer.message
    assert "447700900123" not in repr(answer)


def test_20429_carries_retry_after() -> None:
    assert wire.classify(429, twilio_error(20429, 429), 2.0).retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "verdict", "error_class"),
    [
        (429, Verdict.BACKPRESSURE, "http.429"),
        (500, Verdict.RETRY, "http.500"),
        (502, Verdict.RETRY, "http.502"),
        (503, Verdict.RETRY, "http.503"),
        (401, Verdict.REAUTH, "http.401"),
        (400, Verdict.FATAL, "http.400"),
    ],
)
def test_answers_without_a_code_fall_back_to_the_status(
    status: int, verdict: Verdict, error_class: str
) -> None:
    answer = wire.classify(status, None, None)
    assert (answer.verdict, answer.error_class) == (verdict, error_class)


def test_unknown_code_falls_back_to_the_status() -> None:
    answer = wire.classify(400, twilio_error(29999, 400), None)
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "http.400")


def test_created_message_is_ok_with_its_sid() -> None:
    answer = wire.classify(201, {"sid": "SM0123", "status": "queued"}, None)
    assert (answer.verdict, answer.provider_id, answer.status) == (Verdict.OK, "SM0123", 201)


# ---- delivery-status callbacks -------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (30003, Verdict.RETRY),
        (30008, Verdict.RETRY),
        (30004, Verdict.FATAL),
        (30005, Verdict.FATAL),
        (30006, Verdict.FATAL),
        (30007, Verdict.FATAL),
        ("30003", Verdict.RETRY),
        ("30007", Verdict.FATAL),
    ],
)
def test_status_callback_codes(code: int | str, verdict: Verdict) -> None:
    answer = wire.classify_status_callback(code)
    assert answer.verdict is verdict
    assert answer.error_class == f"twilio.{code}"


@pytest.mark.parametrize("code", [None, 0, "", "0"])
def test_status_callback_without_error_is_delivered(code: int | str | None) -> None:
    assert wire.classify_status_callback(code).verdict is Verdict.OK


def test_unknown_status_callback_code_is_fatal_with_a_closed_class() -> None:
    answer = wire.classify_status_callback(30999)
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "twilio.delivery")


# ---- validation and request -------------------------------------------------------------------
@pytest.mark.parametrize(
    "number", ["07700900123", "+0123", "+44 7700 900123", "", "+1234567890123456"]
)
def test_numbers_not_in_e164_are_refused(number: str) -> None:
    answer = wire.check_message(number, "hi")
    assert answer is not None
    assert (answer.verdict, answer.error_class) == (Verdict.FATAL, "twilio.21211")
    assert not number or number not in answer.message


def test_an_e164_number_passes() -> None:
    assert wire.check_message(NUMBER, "hi") is None


def test_empty_text_is_refused() -> None:
    answer = wire.check_message(NUMBER, "")
    assert answer is not None
    assert answer.error_class == "twilio.21602"


def test_1600_characters_pass_and_1601_do_not() -> None:
    assert wire.check_message(NUMBER, "a" * 1600) is None
    too_long = wire.check_message(NUMBER, "a" * 1601)
    assert too_long is not None
    assert too_long.error_class == "twilio.21617"


def test_request_with_a_from_number() -> None:
    request = wire.build_request(
        NUMBER, "Ceremony moved", account_sid="AC1", from_number="+15005550006"
    )
    assert request.method == "POST"
    assert request.path == "/2010-04-01/Accounts/AC1/Messages.json"
    assert request.form == {"To": NUMBER, "Body": "Ceremony moved", "From": "+15005550006"}


def test_messaging_service_wins_over_from() -> None:
    request = wire.build_request(
        NUMBER, "x", account_sid="AC1", from_number="+15005550006", messaging_service_sid="MG1"
    )
    assert request.form == {"To": NUMBER, "Body": "x", "MessagingServiceSid": "MG1"}


def test_status_callback_is_sent_when_configured() -> None:
    request = wire.build_request(
        NUMBER, "x", account_sid="AC1", from_number="+1500", status_callback="https://cb.example/s"
    )
    assert request.form["StatusCallback"] == "https://cb.example/s"


def test_target_is_the_recipient() -> None:
    assert wire.target_for("couple-7", NUMBER) == "sms:couple-7"


def test_target_without_recipient_hides_the_number() -> None:
    target = wire.target_for(None, NUMBER)
    assert target.startswith("sms:number-")
    assert "7700900123" not in target
    assert target == wire.target_for(None, NUMBER)
    assert target != wire.target_for(None, "+447700900124")
