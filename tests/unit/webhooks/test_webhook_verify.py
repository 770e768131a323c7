"""Pure verification of inbound webhooks. Signatures come from the official
`standardwebhooks` package, PyJWT and the stdlib `hmac`, never from our own code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from connectors.sources.webhooks.config import SourceConfig
from connectors.sources.webhooks.gateway import stored_headers
from connectors.sources.webhooks.verify import Rejected, Request, verify
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import TypeAdapter
from standardwebhooks.webhooks import Webhook

NOW = 1_790_000_000
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = b'{"event":"booking.confirmed","id":42}'
_adapter: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


def source(**fields: Any) -> SourceConfig:
    return _adapter.validate_python(fields)


def std_headers(secret: str = SECRET, *, ts: int = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    when = datetime.fromtimestamp(ts, tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, BODY.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


STANDARD = source(method="standard_webhooks", secrets=[SECRET])


def rejected(src: SourceConfig, request: Request, now: float = NOW) -> Rejected:
    with pytest.raises(Rejected) as info:
        verify(src, request, now)
    return info.value


# ---- Standard Webhooks ----------------------------------------------------------------
def test_standard_webhooks_accepts_a_valid_signature() -> None:
    result = verify(STANDARD, Request(std_headers(), BODY), NOW)
    assert (result.method, result.delivery_id, result.source_ts_ms) == (
        "standard_webhooks", "msg_1", NOW * 1000,
    )  # fmt: skip


def test_standard_webhooks_accepts_any_of_several_signatures() -> None:
    headers = std_headers()
    other = std_headers(OLD_SECRET)["webhook-signature"]
    headers["webhook-signature"] = f"v1,AAAA {other} {headers['webhook-signature']}"
    assert verify(STANDARD, Request(headers, BODY), NOW).delivery_id == "msg_1"


def test_standard_webhooks_accepts_a_rotated_secret() -> None:
    rotating = source(method="standard_webhooks", secrets=[SECRET, OLD_SECRET])
    assert verify(rotating, Request(std_headers(OLD_SECRET), BODY), NOW)


def test_standard_webhooks_rejects_a_forged_body() -> None:
    error = rejected(STANDARD, Request(std_headers(), BODY + b" "))
    assert (error.status, error.reason) == (401, "bad_signature")


def test_standard_webhooks_rejects_a_signature_made_with_another_secret() -> None:
    assert rejected(STANDARD, Request(std_headers(OLD_SECRET), BODY)).reason == "bad_signature"


def test_standard_webhooks_rejects_a_stale_timestamp() -> None:
    error = rejected(STANDARD, Request(std_headers(ts=NOW - 301), BODY))
    assert (error.status, error.reason) == (401, "stale_timestamp")


def test_standard_webhooks_rejects_a_timestamp_from_the_future() -> None:
    assert rejected(STANDARD, Request(std_headers(ts=NOW + 301), BODY)).reason == "stale_timestamp"


def test_standard_webhooks_tolerance_is_configurable() -> None:
    lenient = source(method="standard_webhooks", secrets=[SECRET], tolerance_seconds=900)
    assert verify(lenient, Request(std_headers(ts=NOW - 600), BODY), NOW)


def test_standard_webhooks_rejects_missing_headers() -> None:
    headers = std_headers()
    del headers["webhook-signature"]
    assert rejected(STANDARD, Request(headers, BODY)).reason == "missing_signature"


@pytest.mark.parametrize("signature", ["garbage", "v1,***", "v2,abcd", "v1"])
def test_standard_webhooks_rejects_malformed_signature_with_401(signature: str) -> None:
    headers = {**std_headers(), "webhook-signature": signature}
    assert rejected(STANDARD, Request(headers, BODY)).status == 401


def test_standard_webhooks_rejects_a_non_numeric_timestamp() -> None:
    headers = {**std_headers(), "webhook-timestamp": "yesterday"}
    assert rejected(STANDARD, Request(headers, BODY)).reason == "malformed_timestamp"


# ---- generic HMAC-SHA256 --------------------------------------------------------------
HMAC_SRC = source(method="hmac_sha256", secrets=["s3cret"], prefix="sha256=",
                  delivery_id_header="X-Delivery")  # fmt: skip


def hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def test_hmac_accepts_a_prefixed_hex_signature() -> None:
    headers = {"x-signature": "sha256=" + hmac_hex("s3cret", BODY), "x-delivery": "d-7"}
    assert verify(HMAC_SRC, Request(headers, BODY), NOW).delivery_id == "d-7"


def test_hmac_without_delivery_header_has_no_delivery_id() -> None:
    headers = {"x-signature": "sha256=" + hmac_hex("s3cret", BODY)}
    assert verify(HMAC_SRC, Request(headers, BODY), NOW).delivery_id is None


def test_hmac_rejects_a_wrong_signature() -> None:
    headers = {"x-signature": "sha256=" + hmac_hex("other", BODY)}
    assert rejected(HMAC_SRC, Request(headers, BODY)).reason == "bad_signature"


def test_hmac_rejects_a_signature_without_the_prefix() -> None:
    headers = {"x-signature": hmac_hex("s3cret", BODY)}
    assert rejected(HMAC_SRC, Request(headers, BODY)).status == 401


def test_hmac_reads_a_configured_header_in_base64() -> None:
    src = source(method="hmac_sha256", secrets=["s3cret"], signature_header="X-Hub-Sig",
                 encoding="base64")  # fmt: skip
    digest = hmac.new(b"s3cret", BODY, hashlib.sha256).digest()
    assert verify(src, Request({"x-hub-sig": base64.b64encode(digest).decode()}, BODY), NOW)


TS_SRC = source(method="hmac_sha256", secrets=["s3cret"], timestamp_header="X-Timestamp")


def test_hmac_with_timestamp_signs_timestamp_dot_body() -> None:
    headers = {"x-signature": hmac_hex("s3cret", f"{NOW}.".encode() + BODY),
               "x-timestamp": str(NOW)}  # fmt: skip
    assert verify(TS_SRC, Request(headers, BODY), NOW).source_ts_ms == NOW * 1000


def test_hmac_with_timestamp_rejects_a_stale_one() -> None:
    old = NOW - 3600
    headers = {"x-signature": hmac_hex("s3cret", f"{old}.".encode() + BODY),
               "x-timestamp": str(old)}  # fmt: skip
    assert rejected(TS_SRC, Request(headers, BODY)).reason == "stale_timestamp"


# ---- JWT ------------------------------------------------------------------------------
JWT_HS = source(method="jwt", secret="jwt-shared-secret-of-32-bytes!!!", issuer="crm",
                audience="wedsync")  # fmt: skip


def claims(**extra: Any) -> dict[str, Any]:
    return {"iss": "crm", "aud": "wedsync", "exp": NOW + 60, "iat": NOW, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_jwt_hs256_accepts_a_valid_token() -> None:
    token = jwt.encode(claims(jti="j-1"), "jwt-shared-secret-of-32-bytes!!!", algorithm="HS256")
    result = verify(JWT_HS, Request(bearer(token), BODY), NOW)
    assert (result.method, result.delivery_id) == ("jwt", "j-1")


def test_jwt_rejects_an_expired_token() -> None:
    token = jwt.encode(claims(exp=NOW - 120), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert rejected(JWT_HS, Request(bearer(token), BODY)).reason == "expired_token"


def test_jwt_rejects_a_wrong_issuer() -> None:
    token = jwt.encode(claims(iss="evil"), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert rejected(JWT_HS, Request(bearer(token), BODY)).reason == "bad_token"


def test_jwt_rejects_a_wrong_audience() -> None:
    token = jwt.encode(claims(aud="other"), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert rejected(JWT_HS, Request(bearer(token), BODY)).reason == "bad_token"


def test_jwt_rejects_a_token_without_exp() -> None:
    token = jwt.encode({"iss": "crm", "aud": "wedsync"}, "jwt-shared-secret-of-32-bytes!!!")
    assert rejected(JWT_HS, Request(bearer(token), BODY)).status == 401


def test_jwt_rejects_a_forged_signature() -> None:
    token = jwt.encode(claims(), "another-secret-another-secret-xx", "HS256")
    assert rejected(JWT_HS, Request(bearer(token), BODY)).reason == "bad_token"


def test_jwt_rejects_a_missing_authorization_header() -> None:
    assert rejected(JWT_HS, Request({}, BODY)).reason == "missing_token"


def test_jwt_rejects_garbage_instead_of_a_token() -> None:
    assert rejected(JWT_HS, Request(bearer("not.a.jwt"), BODY)).reason == "bad_token"


@pytest.mark.parametrize("exp", [float("nan"), float("inf")])
def test_jwt_rejects_an_exp_that_is_not_a_time(exp: float) -> None:
    token = jwt.encode(claims(exp=exp), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert rejected(JWT_HS, Request(bearer(token), BODY)).reason == "expired_token"


@pytest.mark.parametrize("iat", [1e308, float("nan"), -1e300])
def test_jwt_with_an_iat_that_is_not_a_time_has_no_source_timestamp(iat: float) -> None:
    token = jwt.encode(claims(iat=iat), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert verify(JWT_HS, Request(bearer(token), BODY), NOW).source_ts_ms is None


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def test_jwt_rs256_accepts_a_token_signed_with_the_private_key(
    rsa_pair: tuple[bytes, str],
) -> None:
    private, public = rsa_pair
    src = source(method="jwt", algorithms=["RS256"], public_key=public, issuer="crm",
                 audience="wedsync")  # fmt: skip
    token = jwt.encode(claims(), private, algorithm="RS256")
    assert verify(src, Request(bearer(token), BODY), NOW).method == "jwt"


def test_jwt_rejects_an_algorithm_the_source_does_not_accept(
    rsa_pair: tuple[bytes, str],
) -> None:
    private, _ = rsa_pair
    token = jwt.encode(claims(), private, algorithm="RS256")
    error = rejected(JWT_HS, Request(bearer(token), BODY))
    assert (error.reason, "RS256" in error.detail) == ("bad_token", True)


# ---- Bearer and Basic -----------------------------------------------------------------
BEARER = source(method="bearer", tokens=["tok-a", "tok-b"])


def test_bearer_accepts_any_configured_token() -> None:
    assert verify(BEARER, Request(bearer("tok-b"), BODY), NOW).method == "bearer"


def test_bearer_rejects_an_unknown_token() -> None:
    assert rejected(BEARER, Request(bearer("tok-c"), BODY)).reason == "bad_token"


def test_bearer_rejects_another_scheme() -> None:
    assert rejected(BEARER, Request({"authorization": "Token tok-a"}, BODY)).status == 401


BASIC = source(method="basic", username="venue", password="pa:ss")


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_accepts_the_right_user_and_password() -> None:
    assert verify(BASIC, Request(basic("venue", "pa:ss"), BODY), NOW).method == "basic"


def test_basic_rejects_a_wrong_password() -> None:
    assert rejected(BASIC, Request(basic("venue", "nope"), BODY)).reason == "bad_token"


def test_basic_rejects_undecodable_credentials() -> None:
    headers = {"authorization": "Basic !!!"}
    assert rejected(BASIC, Request(headers, BODY)).reason == "malformed_token"


# ---- Google channel -------------------------------------------------------------------
GOOGLE = source(method="google_channel", channels={"chan-1": "chan-token"})


def goog(**overrides: str) -> dict[str, str]:
    headers = {"x-goog-channel-id": "chan-1", "x-goog-channel-token": "chan-token",
               "x-goog-resource-id": "res-9", "x-goog-resource-state": "exists",
               "x-goog-message-number": "17"}  # fmt: skip
    return {**headers, **overrides}


def test_google_accepts_a_registered_channel_and_keeps_the_message_number() -> None:
    assert verify(GOOGLE, Request(goog(), b""), NOW).delivery_id == "chan-1:17"


def test_google_accepts_the_sync_message() -> None:
    headers = goog(**{"x-goog-resource-state": "sync", "x-goog-message-number": "1"})
    assert verify(GOOGLE, Request(headers, b""), NOW).delivery_id == "chan-1:1"


def test_google_rejects_an_unregistered_channel() -> None:
    headers = goog(**{"x-goog-channel-id": "chan-2"})
    assert rejected(GOOGLE, Request(headers, b"")).reason == "unknown_channel"


def test_google_rejects_a_wrong_channel_token() -> None:
    headers = goog(**{"x-goog-channel-token": "guess"})
    assert rejected(GOOGLE, Request(headers, b"")).reason == "bad_token"


def test_google_rejects_an_unknown_resource_state() -> None:
    headers = goog(**{"x-goog-resource-state": "deleted"})
    assert rejected(GOOGLE, Request(headers, b"")).status == 400


@pytest.mark.parametrize("number", ["²³", "١٢", "-1", ""])
def test_google_rejects_a_message_number_that_is_not_ascii_digits(number: str) -> None:
    headers = goog(**{"x-goog-message-number": number})
    assert rejected(GOOGLE, Request(headers, b"")).reason == "bad_message_number"


# ---- Microsoft Graph ------------------------------------------------------------------
GRAPH = source(method="graph_client_state", client_states=["cs-secret"])


def graph_body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def test_graph_echoes_the_validation_token() -> None:
    result = verify(GRAPH, Request({}, b"", {"validationToken": "Validation: abc 123"}), NOW)
    assert result.handshake == "Validation: abc 123"


def test_graph_accepts_a_notification_with_the_client_state() -> None:
    body = graph_body({"subscriptionId": "sub-1", "clientState": "cs-secret",
                       "changeType": "updated", "resource": "me/events/1"})  # fmt: skip
    verified = verify(GRAPH, Request({}, body), NOW)
    assert (verified.method, verified.delivery_id) == ("graph_client_state", None)


def test_graph_rejects_a_wrong_client_state() -> None:
    body = graph_body({"subscriptionId": "sub-1", "clientState": "guess"})
    assert rejected(GRAPH, Request({}, body)).reason == "bad_client_state"


def test_graph_rejects_a_batch_with_one_wrong_client_state() -> None:
    body = graph_body({"subscriptionId": "s", "clientState": "cs-secret"},
                      {"subscriptionId": "s", "clientState": "guess"})  # fmt: skip
    assert rejected(GRAPH, Request({}, body)).reason == "bad_client_state"


@pytest.mark.parametrize("event", ["reauthorizationRequired", "subscriptionRemoved", "missed"])
def test_graph_accepts_lifecycle_notifications(event: str) -> None:
    body = graph_body({"subscriptionId": "s", "clientState": "cs-secret", "lifecycleEvent": event})
    assert verify(GRAPH, Request({}, body), NOW).method == "graph_client_state"


def test_graph_rejects_an_unknown_lifecycle_event() -> None:
    body = graph_body({"subscriptionId": "s", "clientState": "cs-secret", "lifecycleEvent": "x"})
    assert rejected(GRAPH, Request({}, body)).reason == "unknown_lifecycle_event"


def test_graph_rejects_malformed_json_with_400() -> None:
    assert rejected(GRAPH, Request({}, b"{nope")).status == 400


def test_graph_rejects_a_lifecycle_event_that_is_not_a_string() -> None:
    body = graph_body({"subscriptionId": "s", "clientState": "cs-secret",
                       "lifecycleEvent": ["missed"]})  # fmt: skip
    assert rejected(GRAPH, Request({}, body)).reason == "unknown_lifecycle_event"


def test_graph_rejects_a_deeply_nested_body_with_400() -> None:
    body = b'{"value":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    found = rejected(GRAPH, Request({}, body))
    assert (found.status, found.reason) == (400, "too_deeply_nested")


# ---- secrets stay out of messages -------------------------------------------------------
def test_rejections_never_mention_the_secret_or_token() -> None:
    token = jwt.encode(claims(aud="x"), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    errors = [
        rejected(JWT_HS, Request(bearer(token), BODY)),
        rejected(BEARER, Request(bearer("tok-c"), BODY)),
        rejected(BASIC, Request(basic("venue", "wrong-pw"), BODY)),
    ]
    text = " ".join(f"{e} {e.detail}" for e in errors)
    for secret in ("jwt-shared-secret", token, "tok-", "pa:ss", "wrong-pw"):
        assert secret not in text


def test_jwt_with_a_non_numeric_iat_has_no_source_timestamp() -> None:
    token = jwt.encode(claims(iat="soon"), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert verify(JWT_HS, Request(bearer(token), BODY), NOW).source_ts_ms is None


def test_stored_headers_drop_credentials_and_configured_signature_headers() -> None:
    jwt_src = source(method="jwt", secret="k" * 32, issuer="i", audience="a", header="X-Venue-JWT")
    headers = {"x-venue-jwt": "t", "authorization": "b", "webhook-signature": "s",
               "x-goog-channel-token": "g", "cookie": "c", "webhook-id": "id-1"}  # fmt: skip
    assert stored_headers(headers, jwt_src) == {"webhook-id": "id-1"}


def test_jwt_can_come_in_a_configured_header() -> None:
    src = source(method="jwt", secret="jwt-shared-secret-of-32-bytes!!!", issuer="crm",
                 audience="wedsync", header="X-Venue-JWT")  # fmt: skip
    token = jwt.encode(claims(), "jwt-shared-secret-of-32-bytes!!!", "HS256")
    assert verify(src, Request({"x-venue-jwt": f"Bearer {token}"}, BODY), NOW).method == "jwt"
