"""Tokens: who a connection is. HS256 with a shared secret and RS256 with a JWKS (by `kid`).

Pure apart from the clock passed in: `Verifier.verify(token, now)` returns the claims the
gateway uses or raises `TokenRejected` with the close code and a reason safe to send back
(never the token). Each algorithm is accepted only with its own kind of key, so an RS256 public
key can never be used as an HS256 secret (algorithm confusion).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKSet

from connectors.sinks.inapp import wire


class TokenRejected(Exception):
    """The token cannot be used. `code` is the close code (4001 bad, 4003 expired)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    user: str
    org: str
    exp: float
    name: str = ""  # the user's display name (the token's `name` claim); "" when it has none


class Verifier:
    def __init__(
        self,
        *,
        audience: str,
        issuer: str,
        secret: str | None = None,
        jwks: dict[str, Any] | None = None,
        leeway_s: float = 5.0,
    ) -> None:
        if secret is None and jwks is None:
            raise ValueError("a Verifier needs an HS256 secret or a JWKS")
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self._secret = secret
        self._rsa: dict[str, Any] = {}
        if jwks is not None:
            for key in PyJWKSet.from_dict(jwks).keys:
                if key.key_type == "RSA" and key.key_id:
                    self._rsa[key.key_id] = key.key

    @staticmethod
    def load_jwks(path: Path) -> dict[str, Any]:
        """Read a JWKS file; ValueError says which file is wrong and why."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"JWKS file {path}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError(f"JWKS file {path}: expected an object with a 'keys' list")
        return data

    def _key(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token is not a JWT") from None
        alg = header.get("alg")
        if alg == "HS256" and self._secret is not None:
            return self._secret, alg
        if alg == "RS256" and self._rsa:
            kid = header.get("kid")
            if kid not in self._rsa:
                raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token's kid is not in the JWKS")
            return self._rsa[kid], alg
        raise TokenRejected(wire.CLOSE_BAD_TOKEN, f"algorithm {alg!r} is not accepted")

    def verify(self, token: str, now: float) -> Claims:
        if not isinstance(token, str) or not token:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token missing")
        key, alg = self._key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["sub", "exp", "aud", "iss"], "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token audience is wrong") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token issuer is wrong") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token signature is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, f"token lacks {exc.claim!r}") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(
                wire.CLOSE_BAD_TOKEN, f"token refused: {type(exc).__name__}"
            ) from None
        exp = claims["exp"]
        if not isinstance(exp, int | float):
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token exp is not a number")
        if exp + self.leeway_s <= now:
            raise TokenRejected(wire.CLOSE_EXPIRED, "token expired")
        sub, org = claims["sub"], claims.get("org", "")
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token sub is not a user id")
        if not isinstance(org, str) or len(org) > 200:
            raise TokenRejected(wire.CLOSE_BAD_TOKEN, "token org is not an organisation id")
        name = claims.get("name")
        shown = name.strip()[:200] if isinstance(name, str) else ""  # optional: never refused
        return Claims(user=sub, org=org, exp=float(exp), name=shown)


def issue(secret: str, user: str, *, org: str = "", ttl_s: float = 3600.0, audience: str,
          issuer: str, now: float, name: str = "") -> str:  # fmt: skip
    """An HS256 token for local use (`make run`, `wedsync inapp token`); production tokens
    come from the platform's login. `name` is the display name others see (claim `name`)."""
    claims = {"sub": user, "org": org, "iat": int(now), "exp": int(now + ttl_s),
              "aud": audience, "iss": issuer}  # fmt: skip
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, "HS256")
