"""Tokens: HS256 and RS256 (JWKS), audience, issuer, expiry, tampering, algorithm confusion."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from connectors.sinks.inapp import wire
from connectors.sinks.inapp.auth import TokenRejected, Verifier
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

SECRET = "unit-secret-of-at-least-32-bytes!"
NOW = 1_800_000_000.0
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks() -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}


def claims(**over: Any) -> dict[str, Any]:
    base = {"sub": "u-1", "org": "org-1", "exp": NOW + 60, "aud": "wedsync-inapp",
            "iss": "wedsync"}  # fmt: skip
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def hs(**over: Any) -> str:
    return jwt.encode(claims(**over), SECRET, "HS256")


def rs(key: Any = RSA_KEY, kid: str = "k1", **over: Any) -> str:
    return jwt.encode(claims(**over), key, "RS256", headers={"kid": kid})


def verifier(**kw: Any) -> Verifier:
    return Verifier(audience="wedsync-inapp", issuer="wedsync", leeway_s=0, **kw)


def rejected(v: Verifier, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        v.verify(token, NOW)
    return info.value


def test_hs256_token_gives_user_and_org() -> None:
    c = verifier(secret=SECRET).verify(hs(), NOW)
    assert (c.user, c.org, c.exp) == ("u-1", "org-1", NOW + 60)


def test_rs256_token_is_checked_against_the_jwks_key_named_by_kid() -> None:
    assert verifier(jwks=_jwks()).verify(rs(), NOW).user == "u-1"


def test_rs256_token_signed_by_another_key_is_refused() -> None:
    assert rejected(verifier(jwks=_jwks()), rs(OTHER_KEY)).code == wire.CLOSE_BAD_TOKEN


def test_unknown_kid_is_refused() -> None:
    assert "kid" in rejected(verifier(jwks=_jwks()), rs(kid="k9")).reason


def test_expired_token_closes_with_the_expired_code() -> None:
    assert rejected(verifier(secret=SECRET), hs(exp=NOW - 1)).code == wire.CLOSE_EXPIRED


def test_wrong_audience_is_a_bad_token() -> None:
    err = rejected(verifier(secret=SECRET), hs(aud="another-app"))
    assert (err.code, err.reason) == (wire.CLOSE_BAD_TOKEN, "token audience is wrong")


def test_wrong_issuer_is_a_bad_token() -> None:
    assert rejected(verifier(secret=SECRET), hs(iss="evil")).reason == "token issuer is wrong"


def test_tampered_payload_fails_the_signature() -> None:
    head, body, sig = hs().split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["sub"] = "u-2"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    err = rejected(verifier(secret=SECRET), f"{head}.{forged}.{sig}")
    assert (err.code, err.reason) == (wire.CLOSE_BAD_TOKEN, "token signature is invalid")


def test_missing_sub_is_refused() -> None:
    assert "sub" in rejected(verifier(secret=SECRET), hs(sub=None)).reason


def test_missing_exp_is_refused() -> None:
    assert "exp" in rejected(verifier(secret=SECRET), hs(exp=None)).reason


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(claims(), None, "none")
    assert rejected(verifier(secret=SECRET), unsigned).code == wire.CLOSE_BAD_TOKEN


def test_public_key_used_as_hs256_secret_is_refused() -> None:
    """Algorithm confusion: an HS256 token 'signed' with the RSA public key must not pass a
    verifier that only has RSA keys."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"k1"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    sig = hmac.new(pem, head + b"." + body, hashlib.sha256).digest()
    token = b".".join([head, body, base64.urlsafe_b64encode(sig).rstrip(b"=")]).decode()
    assert "HS256" in rejected(verifier(jwks=_jwks()), token).reason


def test_garbage_is_not_a_jwt() -> None:
    assert rejected(verifier(secret=SECRET), "not-a-token").reason == "token is not a JWT"


def test_a_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError, match="secret or a JWKS"):
        Verifier(audience="a", issuer="i")


def test_jwks_file_that_is_not_a_jwks_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"nope": 1}')
    with pytest.raises(ValueError, match=r"keys\.json"):
        Verifier.load_jwks(path)


def test_token_expiry_is_measured_against_the_clock_given() -> None:
    v = verifier(secret=SECRET)
    token = hs(exp=NOW + 10)
    assert v.verify(token, NOW + 9).user == "u-1"
    with pytest.raises(TokenRejected):
        v.verify(token, NOW + 10)


def test_the_name_claim_is_the_users_display_name() -> None:
    assert verifier(secret=SECRET).verify(hs(name="Zoë Kowalska"), NOW).name == "Zoë Kowalska"


def test_a_token_without_a_name_claim_gives_no_display_name() -> None:
    assert verifier(secret=SECRET).verify(hs(), NOW).name == ""


def test_a_name_claim_that_is_not_text_is_ignored_not_refused() -> None:
    assert verifier(secret=SECRET).verify(hs(name=["Zoë"]), NOW).name == ""
