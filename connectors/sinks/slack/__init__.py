"""Slack sink: Block Kit messages for suppliers, delivered with `chat.postMessage`
(slack-sdk's AsyncWebClient over the outbound policy's aiohttp session) or, when the
supplier's Slack integration row has a `webhook_url` and no `api_key`, by POSTing
``{text, blocks}`` to that incoming webhook (plain-text answers: ``ok``, ``invalid_blocks``,
``channel_is_archived``, ...).

Follows Slack's documented shapes: https://api.slack.com/methods/chat.postMessage (JSON
``{"ok": false, "error": "<code>"}``, HTTP 429 + Retry-After for rate limits) and
https://api.slack.com/messaging/webhooks (status + plain-text error codes). Slack has no
idempotency hook: the sink remembers recently delivered ids (a small in-process ledger) and
`fatal_error`, which may have posted, is never resent blindly.

    config.py  SlackConfig (WEDSYNC_SLACK_*)
    wire.py    pure: validation, request bodies, the error-code tables, classification
    sink.py    SlackSink + build(env)
    fake.py    SlackFake: chat.postMessage and incoming webhooks on loopback
"""
