"""The email sink: templated notifications (`wedsync.deliver.email`) over SMTP.

It follows RFC 5321 (SMTP) and RFC 5322 / RFC 2046 (a multipart/alternative message with a
plain-text and an HTML part), through aiosmtplib, to the platform's own relay:

    config.py     WEDSYNC_EMAIL_* settings (relay host/port, TLS, AUTH, From, Message-ID domain)
    render.py     Jinja2 templates of templates/ -> (text, html); HTML autoescaped
    wire.py       pure: build the message (headers, Message-ID from the delivery id) and
                  classify an SMTP reply code (2yz ok, 4yz retry, 5yz fatal, 530/534/535 re-auth)
    sink.py       `EmailConnector`: one SMTP transaction per delivery, one audit line each
    fake.py       `SmtpCapture`: a real aiosmtpd server capturing messages (`wedsync fake smtp`)

SMTP has no idempotency: the Message-ID (``<delivery_id@domain>``) is the same on every retry,
so receivers and our ledger can recognise a repeat.
"""
