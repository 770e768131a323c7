"""Pure Slack wire logic: validate a message, build the request bodies, classify Slack's
answers into an `Answer`. No I/O.

Classification is data: `API_ERRORS` maps every `chat.postMessage` error code we act on to
a verdict, `WEBHOOK_ERRORS` the plain-text codes of incoming webhooks. A code in neither
table falls back to the HTTP status (`classify_http_status`), and an unknown code on a 200
is fatal under the closed error class ``slack.unknown_error`` (the code goes in the
message, never in `error_class`, to keep the set of classes closed).
"""

from __future__ import annotations

import json
from typing import Any

from connectors.sinks.answer import (
    Answer,
    Verdict,
    classify_http_status,
    fatal,
    from_verdict,
    ok,
)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40_000

# chat.postMessage error codes (https://api.slack.com/methods/chat.postMessage#errors).
API_ERRORS: dict[str, Verdict] = {
    # slow down, then retry
    "ratelimited": Verdict.BACKPRESSURE,
    "rate_limited": Verdict.BACKPRESSURE,
    "message_limit_exceeded": Verdict.BACKPRESSURE,
    # transient on Slack's side
    "internal_error": Verdict.RETRY,
    "service_unavailable": Verdict.RETRY,
    "request_timeout": Verdict.RETRY,
    "team_added_to_org": Verdict.RETRY,
    # ambiguous: Slack says some of the operation may have succeeded. Resending could post
    # the message twice, so it is dead-lettered with a warning (see `_MESSAGES`).
    "fatal_error": Verdict.FATAL,
    # will never succeed as sent
    "channel_not_found": Verdict.FATAL,
    "not_in_channel": Verdict.FATAL,
    "msg_too_long": Verdict.FATAL,
    "invalid_blocks": Verdict.FATAL,
    "invalid_blocks_format": Verdict.FATAL,
    "no_text": Verdict.FATAL,
    "too_many_attachments": Verdict.FATAL,
    "invalid_arguments": Verdict.FATAL,
    "invalid_form_data": Verdict.FATAL,
    "invalid_charset": Verdict.FATAL,
    "no_permission": Verdict.FATAL,
    "restricted_action": Verdict.FATAL,
    "restricted_action_read_only_channel": Verdict.FATAL,
    "ekm_access_denied": Verdict.FATAL,
    "no_service": Verdict.FATAL,
    # the channel is gone for good
    "is_archived": Verdict.DISABLE,
    "channel_is_archived": Verdict.DISABLE,
    # the token was refused: refresh once, then pause the integration
    "invalid_auth": Verdict.REAUTH,
    "not_authed": Verdict.REAUTH,
    "token_revoked": Verdict.REAUTH,
    "token_expired": Verdict.REAUTH,
    "account_inactive": Verdict.REAUTH,
    "invalid_token": Verdict.REAUTH,
    "missing_scope": Verdict.REAUTH,
    "not_allowed_token_type": Verdict.REAUTH,
}

# Incoming webhooks answer a status and a plain-text code
# (https://api.slack.com/messaging/webhooks#handling_errors).
WEBHOOK_ERRORS: dict[str, Verdict] = {
    "invalid_payload": Verdict.FATAL,
    "invalid_blocks": Verdict.FATAL,
    "user_not_found": Verdict.FATAL,
    "channel_not_found": Verdict.FATAL,
    "action_prohibited": Verdict.FATAL,
    "no_service": Verdict.FATAL,
    "no_active_hooks": Verdict.FATAL,
    "team_disabled": Verdict.FATAL,
    "channel_is_archived": Verdict.DISABLE,
    "invalid_token": Verdict.REAUTH,
    "rollup_error": Verdict.RETRY,
    "rate_limited": Verdict.BACKPRESSURE,
    "ratelimited": Verdict.BACKPRESSURE,
}

_MESSAGES: dict[str, str] = {
    "fatal_error": "Slack answered fatal_error: the message may have been posted; check the "
    "channel before replaying (never resend blindly)",
    "channel_not_found": "the channel does not exist or the app cannot see it",
    "not_in_channel": "the app is not a member of the channel; invite it, then replay",
    "msg_too_long": "the message is too long for Slack",
    "invalid_blocks": "Slack refused the Block Kit blocks",
    "no_service": "the incoming webhook is disabled or removed; reconnect Slack",
    "is_archived": "the channel is archived",
    "channel_is_archived": "the channel is archived",
}


def parse_blocks(blocks_json: str) -> list[dict[str, Any]] | None:
    """The Block Kit blocks of a record: a JSON array of objects. None when it is not one;
    an empty string means no blocks."""
    if not blocks_json or not blocks_json.strip():
        return []
    try:
        blocks = json.loads(blocks_json)
    except ValueError:
        return None
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        return None
    return blocks


def check_message(text: str, blocks: list[dict[str, Any]] | None) -> Answer | None:
    """A fatal Answer when the message breaks Slack's limits (so Slack is never called for
    it), else None: blocks must parse, at most 50 blocks, at most 3,000 characters per
    section text, at most 40,000 characters of text, and some text or blocks."""
    if blocks is None:
        return fatal("slack.invalid_blocks", "blocks_json is not a JSON array of blocks")
    if len(blocks) > MAX_BLOCKS:
        return fatal(
            "slack.msg_too_long", f"{len(blocks)} blocks; Slack allows at most {MAX_BLOCKS}"
        )
    for index, block in enumerate(blocks):
        if block.get("type") != "section":
            continue
        section_text = block.get("text")
        body = section_text.get("text") if isinstance(section_text, dict) else None
        if isinstance(body, str) and len(body) > MAX_SECTION_TEXT:
            return fatal(
                "slack.msg_too_long",
                f"section block {index} has {len(body)} characters of text; "
                f"Slack allows at most {MAX_SECTION_TEXT}",
            )
    if len(text) > MAX_TEXT:
        return fatal("slack.msg_too_long", f"text has {len(text)} characters (max {MAX_TEXT})")
    if not text and not blocks:
        return fatal("slack.no_text", "the message has neither text nor blocks")
    return None


def post_message_args(channel: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Keyword arguments of `chat_postMessage` (the JSON body slack-sdk sends). `text` is
    always sent: it is the notification fallback."""
    args: dict[str, Any] = {"channel": channel, "text": text}
    if blocks:
        args["blocks"] = blocks
    return args


def webhook_body(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON body POSTed to an incoming webhook (its channel is fixed by the webhook)."""
    body: dict[str, Any] = {"text": text}
    if blocks:
        body["blocks"] = blocks
    return body


def classify_api_ok(data: dict[str, Any], status: int = 200) -> Answer:
    """A successful `chat.postMessage` answer; provider_id is the message `ts`."""
    ts = data.get("ts")
    return ok(status, provider_id=ts if isinstance(ts, str) else None)


def classify_api_error(status: int, error: str | None, retry_after: float | None) -> Answer:
    """A failed Web API call: Slack's error code (`{"ok": false, "error": ...}`), the HTTP
    status and the Retry-After seconds, as an Answer."""
    if status == 429 and error not in API_ERRORS:
        error = "ratelimited"
    verdict = API_ERRORS.get(error or "")
    if verdict is None:
        if status == 200:
            return fatal("slack.unknown_error", f"Slack answered {_safe_code(error)}", status=200)
        return classify_http_status(status, retry_after)
    return _answer(verdict, f"slack.{error}", status, retry_after)


def classify_webhook(status: int, body: str, retry_after: float | None) -> Answer:
    """An incoming webhook's answer: 200 ``ok`` is delivered (it returns no message id);
    otherwise the plain-text code decides, then the status."""
    code = body.strip()
    if 200 <= status < 300:
        return ok(status)
    verdict = WEBHOOK_ERRORS.get(code)
    if status == 429:
        verdict, code = Verdict.BACKPRESSURE, "rate_limited"
    elif status == 410 and verdict is None:
        verdict, code = Verdict.DISABLE, "channel_is_archived"
    if verdict is None:
        return classify_http_status(status, retry_after)
    return _answer(verdict, f"slack.{code}", status, retry_after)


_VERDICT_MESSAGES = {
    Verdict.BACKPRESSURE: "Slack rate limit",
    Verdict.REAUTH: "Slack refused the token",
}


def _answer(verdict: Verdict, error_class: str, status: int, retry_after: float | None) -> Answer:
    code = error_class.removeprefix("slack.")
    message = _VERDICT_MESSAGES.get(verdict) or _MESSAGES.get(code, f"Slack answered {code}")
    return from_verdict(verdict, error_class, message, status=status, retry_after=retry_after)


def _safe_code(error: str | None) -> str:
    """An unknown error code for a human message: Slack codes are short snake_case words;
    anything else is cut to a harmless shape."""
    if not error:
        return "no error code"
    cleaned = "".join(c for c in error[:60] if c.isalnum() or c == "_")
    return cleaned or "an unreadable error code"
