"""SASL/OAUTHBEARER tokens for Faust's aiokafka clients: the OAuth 2.0 client credentials
grant (RFC 6749 section 4.4) against KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL, the client
authenticated with HTTP Basic, the token kept until a minute before it expires. The
confluent-kafka clients get theirs from librdkafka itself (`sasl.oauthbearer.method=oidc`,
the same endpoint and client), so both halves of a process log in as the same principal."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx
from aiokafka.abc import AbstractTokenProvider

from streams.errors import KafkaAuthenticationFailed

if TYPE_CHECKING:
    from streams.kafka.connection import KafkaConnection

EARLY_S = 60.0  # a token is renewed this long before it expires


class ClientCredentialsTokens(AbstractTokenProvider):
    def __init__(self, conn: KafkaConnection, timeout_s: float = 10.0) -> None:
        assert conn.sasl_oauthbearer_token_endpoint_url and conn.sasl_oauthbearer_client_id
        assert conn.sasl_oauthbearer_client_secret is not None
        self.url = conn.sasl_oauthbearer_token_endpoint_url
        self.client_id = conn.sasl_oauthbearer_client_id
        self._secret = conn.sasl_oauthbearer_client_secret
        self.scope = conn.sasl_oauthbearer_scope
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock: asyncio.Lock | None = None

    async def token(self) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, lifetime = await self._fetch()
                self._renew_at = time.monotonic() + max(0.0, lifetime - EARLY_S)
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        auth = (self.client_id, self._secret.get_secret_value())
        async with httpx.AsyncClient(timeout=self.timeout_s) as http:
            try:
                answer = await http.post(self.url, data=form, auth=auth)
            except httpx.HTTPError as exc:
                raise KafkaAuthenticationFailed(
                    f"no OAUTHBEARER token: the token endpoint {self.url} did not answer "
                    f"({type(exc).__name__}): check KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"
                ) from None
        if answer.status_code != 200:
            reason = _error(answer)
            raise KafkaAuthenticationFailed(
                f"no OAUTHBEARER token: the token endpoint {self.url} refused client "
                f"{self.client_id!r} ({answer.status_code} {reason}): check "
                "KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"
            )
        body = answer.json()
        return str(body["access_token"]), float(body.get("expires_in", 300))


def _error(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("error", ""))[:80]
    except ValueError:
        return ""
