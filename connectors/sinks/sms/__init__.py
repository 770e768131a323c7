"""SMS sink: urgent changes as text messages, sent with Twilio's Messages API
(``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded To, From or
MessagingServiceSid, Body; HTTP Basic auth AccountSid:AuthToken; 201 with the message
resource, errors as ``{"code", "message", "more_info", "status"}``), over httpx through the
outbound policy. The platform's own Twilio account sends every message.

Twilio has no idempotency hook on create: the sink remembers recently delivered ids (a
small in-process ledger). Delivery-status callbacks (30xxx codes) are classified by the
pure `wire.classify_status_callback`.

    config.py  SmsConfig (WEDSYNC_SMS_*)
    wire.py    pure: validation, the request, the error-code tables, classification
    sink.py    SmsSink + build(env)
    fake.py    TwilioFake: the Messages resource on loopback
"""
