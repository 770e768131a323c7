"""Pure Twilio wire logic: validate a message, build the Messages.json request, classify
Twilio's answers (and delivery-status callbacks) into an `Answer`. No I/O.

Classification is data: `API_ERRORS` maps Twilio REST error codes to verdicts,
`DELIVERY_ERRORS` the 30xxx codes of status callbacks. Twilio's own error `message` often
quotes the phone number, so it is never copied into an Answer: messages come from
`_MESSAGES`, written here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.sinks.answer import (
    Answer,
    Verdict,
    backpressure,
    classify_http_status,
    fatal,
    from_verdict,
    ok,
)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_BODY = 1600  # Twilio refuses longer bodies (21617)

# REST API errors (https://www.twilio.com/docs/api/errors).
API_ERRORS: dict[int, Verdict] = {
    20429: Verdict.BACKPRESSURE,  # Too Many Requests: always safe to retry
    20500: Verdict.RETRY,  # internal server error
    20503: Verdict.RETRY,  # service unavailable
    20003: Verdict.REAUTH,  # authentication failed
    20005: Verdict.REAUTH,  # account not active
    21211: Verdict.FATAL,  # invalid 'To' number
    21614: Verdict.FATAL,  # 'To' is not a mobile number
    21635: Verdict.FATAL,  # 'To' is a landline
    21408: Verdict.FATAL,  # no permission to send to this region
    21612: Verdict.FATAL,  # cannot route to this number
    21602: Verdict.FATAL,  # body required
    21617: Verdict.FATAL,  # body too long
    21603: Verdict.FATAL,  # 'From' required
    21604: Verdict.FATAL,  # 'To' required
    21606: Verdict.FATAL,  # 'From' is not a valid sender
    20404: Verdict.FATAL,  # resource not found (wrong account or path)
    21610: Verdict.DISABLE,  # the recipient replied STOP: stop sending to them
}

# Delivery-status callback ErrorCode (https://www.twilio.com/docs/sms/api/message-resource).
DELIVERY_ERRORS: dict[int, Verdict] = {
    30001: Verdict.RETRY,  # queue overflow
    30003: Verdict.RETRY,  # unreachable handset (off, out of coverage): cautiously
    30008: Verdict.RETRY,  # unknown error: cautiously
    30009: Verdict.RETRY,  # missing segment
    30002: Verdict.FATAL,  # account suspended
    30004: Verdict.FATAL,  # message blocked
    30005: Verdict.FATAL,  # unknown destination handset
    30006: Verdict.FATAL,  # landline or unreachable carrier
    30007: Verdict.FATAL,  # filtered by the carrier
    30010: Verdict.FATAL,  # price exceeds max price
}

_MESSAGES: dict[int, str] = {
    20429: "Twilio asked to slow down",
    20003: "Twilio refused the account credentials",
    20005: "the Twilio account is not active",
    21211: "the recipient's number is not a valid phone number",
    21614: "the recipient's number is not a mobile number",
    21635: "the recipient's number is a landline",
    21610: "the recipient replied STOP: no more SMS to them until they opt back in",
    21617: "the message is too long",
    30003: "the handset was unreachable; retry later, cautiously",
    30008: "unknown delivery error; retry cautiously",
    30004: "the message was blocked",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
}


@dataclass(frozen=True)
class Request:
    """One HTTP call: method, path (relative to the API base) and the form fields."""

    method: str
    path: str
    form: dict[str, str]


def messages_path(account_sid: str) -> str:
    """The Messages list resource of an account."""
    return f"/2010-04-01/Accounts/{account_sid}/Messages.json"


def build_request(
    to_number: str,
    text: str,
    *,
    account_sid: str,
    from_number: str | None = None,
    messaging_service_sid: str | None = None,
    status_callback: str | None = None,
) -> Request:
    """The Messages.json create call. A Messaging Service wins over a From number (Twilio
    picks the sender); credentials go in the Basic auth header, never in the form."""
    form: dict[str, str] = {"To": to_number, "Body": text}
    if messaging_service_sid:
        form["MessagingServiceSid"] = messaging_service_sid
    elif from_number:
        form["From"] = from_number
    if status_callback:
        form["StatusCallback"] = status_callback
    return Request("POST", messages_path(account_sid), form)


def check_message(to_number: str, text: str) -> Answer | None:
    """A fatal Answer for a message Twilio would refuse (so it is never called), else None.
    Messages name no number."""
    if not E164.match(to_number or ""):
        return fatal("twilio.21211", "the recipient's number is not in E.164 form")
    if not text:
        return fatal("twilio.21602", "the message has no text")
    if len(text) > MAX_BODY:
        return fatal("twilio.21617", f"{len(text)} characters; Twilio allows {MAX_BODY}")
    return None


def target_for(recipient_id: str | None, to_number: str) -> str:
    """``sms:<recipient id>``, or a hash of the number when there is no recipient (never
    the number itself)."""
    if recipient_id:
        return f"sms:{recipient_id}"
    digest = hashlib.blake2b(to_number.encode(), digest_size=8).hexdigest()
    return f"sms:number-{digest}"


def classify(status: int, body: Mapping[str, Any] | None, retry_after: float | None) -> Answer:
    """A Messages.json answer: 2xx ok (provider_id = the message `sid`); otherwise the
    Twilio error `code` decides, then the HTTP status (429 is always backpressure)."""
    body = body or {}
    if 200 <= status < 300:
        sid = body.get("sid")
        return ok(status, provider_id=sid if isinstance(sid, str) else None)
    code = _code(body.get("code"))
    verdict = API_ERRORS.get(code) if code is not None else None
    if verdict is None:
        if status == 429:
            return backpressure("http.429", retry_after, "Twilio asked to slow down", status=429)
        return classify_http_status(status, retry_after)
    return _answer(verdict, code, status, retry_after)  # type: ignore[arg-type]


def classify_status_callback(error_code: int | str | None) -> Answer:
    """A delivery-status callback's ErrorCode: none is delivered; 30003/30008 retry
    (cautiously), 30004-30007 fatal; an unknown code is fatal (``twilio.delivery``)."""
    code = _code(error_code)
    if not code:
        return ok()
    verdict = DELIVERY_ERRORS.get(code)
    if verdict is None:
        return fatal("twilio.delivery", f"delivery failed with Twilio error {code}")
    return _answer(verdict, code, None, None)


def _answer(verdict: Verdict, code: int, status: int | None, retry_after: float | None) -> Answer:
    message = _MESSAGES.get(code, f"Twilio error {code}")
    return from_verdict(verdict, f"twilio.{code}", message, status=status, retry_after=retry_after)


def _code(value: Any) -> int | None:
    """An error code from JSON or a form field (int or digit string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
