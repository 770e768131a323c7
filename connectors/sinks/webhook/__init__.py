"""Customer outbound webhooks (Destination.WEBHOOK): signed POSTs to the endpoints customers
registered in `webhook_endpoints`, following Standard Webhooks (https://www.standardwebhooks.com/).

What we send, on every attempt of one delivery:

    POST <endpoint_url>
    Content-Type: application/json
    User-Agent: wedsync-webhooks/1
    webhook-id: <delivery id>            the SAME on every retry: receivers dedupe on it
    webhook-timestamp: <unix seconds>    at send time
    webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>
    <body_json, byte for byte>

The key is the endpoint's `secret_key`: a ``whsec_`` secret is base64-decoded after the
prefix (the Standard Webhooks form); any other secret (the platform's older ones) is used as
its UTF-8 bytes.

With ``WEDSYNC_WEBHOOK_LEGACY_HEADERS=true`` we also send the platform's legacy headers, so
customers that verified the old scheme keep working:

    X-WedSync-Signature: sha256=<hex(HMAC-SHA256(secret_key as UTF-8, "{timestamp}.{body}"))>
    X-WedSync-Event: <event_name>
    X-WedSync-Timestamp: <unix seconds, the same as webhook-timestamp>
    X-WedSync-Source: realtime

Answers (wire.classify): 2xx ok; 410 Gone disables the endpoint; 429/502/503/504 back off
(Retry-After honoured); 3xx is a failure that is never followed, retried (see wire.py); any
other non-2xx, timeouts and connection errors retry. Bodies over the configured limit are
fatal before any call.

    config.py   WebhookConfig (WEDSYNC_WEBHOOK_*)
    wire.py     pure: signing, request building, classification
    sink.py     WebhookSink and build(env)
    fake.py     WebhookReceiver: a customer endpoint verifying with the official package
"""
