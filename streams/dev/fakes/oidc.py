"""A fake OAuth 2.0 / OpenID Connect token issuer, for Kafka's SASL/OAUTHBEARER: the client
credentials grant (RFC 6749 section 4.4) and a JSON Web Key Set (RFC 7517), as identity
providers serve them:

    POST /token   grant_type=client_credentials[&scope=...], the client authenticated with
                  HTTP Basic (client_secret_basic) or form fields (client_secret_post)
                  -> {"access_token": <RS256 JWT>, "token_type": "Bearer", "expires_in": N}
                  an unknown client or a wrong secret: 401 {"error": "invalid_client"};
                  another grant: 400 {"error": "unsupported_grant_type"}
    GET  /jwks    {"keys": [<the RSA public key, with its kid>]}

The token's claims: `sub` (the client id: Kafka's principal `User:<sub>`), `iss`, `aud`,
`iat`, `exp`, and `scope` when one was asked."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Any

from aiohttp import web

from streams.dev.fakes.kit import FakeProvider, Switches

ISSUER = "https://issuer.wedsync.test"
AUDIENCE = "kafka"


class OidcIssuerFake(FakeProvider):
    name = "oidc"

    def __init__(
        self, switches: Switches | None = None, clients: dict[str, str] | None = None,
        lifetime_s: int = 300,
    ) -> None:  # fmt: skip
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.clients = dict(clients or {})
        self.lifetime_s = lifetime_s
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:12]
        super().__init__(switches)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.jwks)

    def _client(self, request: web.Request, form: Any) -> str | None:
        """The authenticated client id, or None."""
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
        else:
            client, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client if client and self.clients.get(client) == secret else None

    async def token(self, request: web.Request) -> web.Response:
        import jwt

        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        client = self._client(request, form)
        if client is None:
            self.counters["invalid_client"] += 1
            return web.json_response({"error": "invalid_client"}, status=401,
                                     headers={"WWW-Authenticate": "Basic"})  # fmt: skip
        now = int(time.time())
        claims: dict[str, Any] = {"sub": client, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                                  "exp": now + self.lifetime_s}  # fmt: skip
        if form.get("scope"):  # granted as asked (an identity provider may narrow it)
            claims["scope"] = str(form["scope"])
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        self.counters["issued"] += 1
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s}
        )

    async def jwks(self, request: web.Request) -> web.Response:
        import json

        from jwt.algorithms import RSAAlgorithm

        key = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return web.json_response({"keys": [{**key, "kid": self.kid, "use": "sig", "alg": "RS256"}]})
