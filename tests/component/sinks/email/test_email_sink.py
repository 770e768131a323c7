"""The real email connector against a real aiosmtpd server (SmtpCapture) on loopback."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.base import DeliveryContext, SinkEnv
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.email.config import EmailConfig
from connectors.sinks.email.sink import EmailConnector, build
from connectors.sinks.outbound import OutboundPolicy
from streams.app.sinks import read_settings
from streams.dev.fakes.email import SmtpCapture

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

USER, PASSWORD = "relay-user", "relay-s3cret-pw"
ADDRESS = "ann.vendor@example.com"


@pytest.fixture
def capture() -> Iterator[SmtpCapture]:
    server = SmtpCapture(users={USER: PASSWORD}).start()
    yield server
    server.stop()


def connector(capture: SmtpCapture, password: str = PASSWORD) -> EmailConnector:
    config = EmailConfig(
        smtp_host="127.0.0.1",
        smtp_port=capture.port,
        username=USER,
        password=password,
        from_address="notify@wedsync.example",
        from_name="WedSync",
        message_id_domain="mail.wedsync.example",
        timeout_s=5,
    )
    return EmailConnector(OutboundPolicy.loopback_for_tests(config.smtp_port), config)


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_id": "dlv-42",
        "recipient_id": "sup-7",
        "to_address": ADDRESS,
        "to_name": "Ann",
        "template": "form_response",
        "subject": "New form response from Bea",
        "variables": {
            "recipient_name": "Ann",
            "client_name": "<script>alert('x')</script>",
            "form_name": "Menu choices",
        },
    }
    return {**base, **overrides}


def ctx(key: str = "dlv-42", refresh: bool = False) -> DeliveryContext:
    return DeliveryContext(MemoryCredentialStore(), key, attempt=0, refresh=refresh)


async def test_delivers_text_and_escaped_html(capture: SmtpCapture) -> None:
    answer = await connector(capture).deliver(record(), ctx())
    assert answer.verdict is Verdict.OK
    assert answer.status == 250
    [got] = capture.messages
    assert got.rcpt_tos == (ADDRESS,)
    assert got.message["Subject"] == "New form response from Bea"
    assert got.message["Message-ID"] == "<dlv-42@mail.wedsync.example>"
    text = got.message.get_body(("plain",))
    html = got.message.get_body(("html",))
    assert text is not None and html is not None
    assert "<script>alert('x')</script> answered your form" in text.get_content()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html.get_content()
    assert "<script>" not in html.get_content()


async def test_subject_with_crlf_creates_no_header_at_the_receiver(capture: SmtpCapture) -> None:
    rec = record(subject="Hi\r\nBcc: evil@attacker.example", to_name="Ann\r\nX-Evil: 1")
    answer = await connector(capture).deliver(rec, ctx())
    assert answer.verdict is Verdict.OK
    [got] = capture.messages
    assert got.message["Bcc"] is None
    assert got.message["X-Evil"] is None
    assert got.rcpt_tos == (ADDRESS,)


async def test_repeat_delivery_carries_the_same_message_id(capture: SmtpCapture) -> None:
    c = connector(capture)
    await c.deliver(record(), ctx("dlv-same"))
    await c.deliver(record(), ctx("dlv-same"))
    ids = [m.message["Message-ID"] for m in capture.messages]
    assert ids == ["<dlv-same@mail.wedsync.example>", "<dlv-same@mail.wedsync.example>"]


async def test_greylisting_is_retry(capture: SmtpCapture) -> None:
    capture.reject_next("450 4.7.1 Greylisted, please try again later")
    answer = await connector(capture).deliver(record(), ctx())
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "smtp.4xx"
    assert capture.messages == []
    assert capture.counters["rejected"] == 1


async def test_greylisted_then_accepted_on_the_next_attempt(capture: SmtpCapture) -> None:
    capture.reject_next("450 4.7.1 Greylisted")
    c = connector(capture)
    assert (await c.deliver(record(), ctx())).verdict is Verdict.RETRY
    assert (await c.deliver(record(), ctx())).verdict is Verdict.OK
    assert capture.counters["messages_accepted"] == 1


async def test_mailbox_full_at_data_is_retry(capture: SmtpCapture) -> None:
    capture.reject_next("452 4.2.2 Mailbox full", stage="DATA")
    answer = await connector(capture).deliver(record(), ctx())
    assert answer.verdict is Verdict.RETRY
    assert answer.status == 452


async def test_no_such_user_is_fatal_and_never_names_the_address(capture: SmtpCapture) -> None:
    capture.reject_next(f"550 5.1.1 <{ADDRESS}>: Recipient address rejected")
    answer = await connector(capture).deliver(record(), ctx())
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "smtp.550"
    assert "5.1.1" in answer.message
    assert ADDRESS not in answer.message


async def test_wrong_password_is_reauth(capture: SmtpCapture) -> None:
    answer = await connector(capture, password="wrong").deliver(record(), ctx())
    assert answer.verdict is Verdict.REAUTH
    assert answer.error_class == "smtp.535"
    assert capture.counters["auth_failed"] >= 1
    assert capture.messages == []


async def test_auth_required_without_credentials_is_reauth(capture: SmtpCapture) -> None:
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=capture.port, timeout_s=5)
    c = EmailConnector(OutboundPolicy.loopback_for_tests(config.smtp_port), config)
    answer = await c.deliver(record(), ctx())
    assert answer.verdict is Verdict.REAUTH
    assert answer.error_class == "smtp.530"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retry() -> None:
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=_closed_port(), timeout_s=2)
    answer = await EmailConnector(
        OutboundPolicy.loopback_for_tests(config.smtp_port), config
    ).deliver(record(), ctx())
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "smtp.connection"


async def test_loopback_relay_is_refused_by_the_default_policy(capture: SmtpCapture) -> None:
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=capture.port)
    answer = await EmailConnector(OutboundPolicy(), config).deliver(record(), ctx())
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "smtp.refused"
    assert capture.messages == []


async def test_unrenderable_record_is_fatal_without_a_connection(capture: SmtpCapture) -> None:
    answer = await connector(capture).deliver(record(variables={}), ctx())
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "email.template"
    assert capture.messages == []


async def test_nothing_secret_in_logs_or_answers(
    capture: SmtpCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wedsync")
    c = connector(capture)
    answers = [await c.deliver(record(), ctx())]
    capture.reject_next(f"550 5.1.1 <{ADDRESS}> unknown")
    answers.append(await c.deliver(record(), ctx()))
    answers.append(await connector(capture, "wrong-pw").deliver(record(), ctx()))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("wedsync")]
    assert any("method=SMTP" in line and "status=250" in line for line in ours)
    for text in [*ours, *(repr(a) for a in answers)]:
        assert ADDRESS not in text
        assert PASSWORD not in text
        assert "wrong-pw" not in text


async def test_audit_line_names_target_and_reply_code(
    capture: SmtpCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wedsync.audit")
    capture.reject_next("450 4.7.1 Greylisted")
    await connector(capture).deliver(record(), ctx())
    [line] = [r.getMessage() for r in caplog.records if r.name == "wedsync.audit"]
    assert "destination=email target=email:sup-7 method=SMTP" in line
    assert "status=450" in line


def test_target_limit_and_credential_key() -> None:
    c = EmailConnector(OutboundPolicy(), EmailConfig(rate_per_s=10, burst=5))
    assert c.target(record()) == "email:sup-7"
    key, limits = c.limit(record())
    assert key == "email:relay"
    assert (limits.rate_per_s, limits.burst) == (10, 5)
    assert c.credential_key(record()) is None


def test_build_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_EMAIL_SMTP_HOST", "smtp.relay.example")
    monkeypatch.setenv("WEDSYNC_EMAIL_SMTP_PORT", "587")
    monkeypatch.setenv("WEDSYNC_EMAIL_STARTTLS", "true")
    monkeypatch.setenv("WEDSYNC_EMAIL_PASSWORD", "pw-from-env")
    monkeypatch.setenv("WEDSYNC_EMAIL_MESSAGE_ID_DOMAIN", "m.example")
    c = build(SinkEnv(OutboundPolicy(), MemoryCredentialStore(), settings=read_settings))
    assert (c.config.smtp_host, c.config.smtp_port, c.config.starttls) == (
        "smtp.relay.example",
        587,
        True,
    )
    assert c.config.message_id_domain == "m.example"
    assert "pw-from-env" not in repr(c.config)


# ---- the fake's own switches --------------------------------------------------------------
async def test_fake_reject_next_counts_down(capture: SmtpCapture) -> None:
    capture.reject_next("451 4.3.0 try later", count=2)
    c = connector(capture)
    verdicts = [(await c.deliver(record(), ctx())).verdict for _ in range(3)]
    assert verdicts == [Verdict.RETRY, Verdict.RETRY, Verdict.OK]
    assert capture.counters["rejected"] == 2
    assert capture.counters["messages_accepted"] == 1


def test_fake_refuses_an_unknown_stage() -> None:
    with pytest.raises(ValueError):
        SmtpCapture().reject_next("450 x", stage="MAIL")


# ---- STARTTLS -------------------------------------------------------------------------------
def _self_signed(tmp_path: Any) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate for 127.0.0.1."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def tls_capture(tmp_path: Any) -> Iterator[SmtpCapture]:
    server = SmtpCapture(tls_context=_self_signed(tmp_path), require_starttls=True).start()
    yield server
    server.stop()


async def test_starttls_delivers(tls_capture: SmtpCapture) -> None:
    config = EmailConfig(
        smtp_host="127.0.0.1",
        smtp_port=tls_capture.port,
        starttls=True,
        validate_certs=False,  # the throwaway certificate is self-signed
        timeout_s=5,
    )
    answer = await EmailConnector(
        OutboundPolicy.loopback_for_tests(config.smtp_port), config
    ).deliver(record(), ctx())
    assert answer.verdict is Verdict.OK
    assert tls_capture.counters["messages_accepted"] == 1


async def test_starttls_with_certificate_validation_refuses_a_self_signed_relay(
    tls_capture: SmtpCapture,
) -> None:
    config = EmailConfig(
        smtp_host="127.0.0.1", smtp_port=tls_capture.port, starttls=True, timeout_s=5
    )
    answer = await EmailConnector(
        OutboundPolicy.loopback_for_tests(config.smtp_port), config
    ).deliver(record(), ctx())
    assert answer.verdict is Verdict.RETRY
    assert tls_capture.messages == []


async def test_relay_requiring_starttls_without_it_is_fatal(tls_capture: SmtpCapture) -> None:
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=tls_capture.port, timeout_s=5)
    answer = await EmailConnector(
        OutboundPolicy.loopback_for_tests(config.smtp_port), config
    ).deliver(record(), ctx())
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "smtp.530"
