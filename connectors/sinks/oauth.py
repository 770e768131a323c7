"""OAuth 2.0 refresh-token grant shared by the calendar sinks (Google, Microsoft Graph).

The platform stores each connected calendar's OAuth *refresh token* in the integration row's
`api_key` column; the OAuth client id and secret are the platform app's (sink config). Before
calling the provider a sink asks `OAuthClient.access_token(integration_id, ctx)`:

- a cached access token is returned while it has more than `skew_s` seconds to live (cached
  in memory per integration, and only for the refresh token it came from, so a reconnect
  with another account never reuses the old account's token);
- otherwise it POSTs ``grant_type=refresh_token`` (form) to the token endpoint, one request
  per integration at a time (concurrent deliveries wait for the same refresh);
- on ``ctx.refresh`` (the runtime's one extra call after a REAUTH answer, or the probe of a
  paused integration) the credential row is invalidated and the cached token dropped first.

A token endpoint refusal comes back as an `Answer` instead of a token: ``invalid_grant``
(refresh token revoked or expired: the user must consent again) and ``interaction_required``
/ ``consent_required`` are REAUTH, so the runtime pauses only that integration; a refused
*client* (``invalid_client``...) is the platform's configuration: FATAL; 429 backpressure;
5xx and ``temporarily_unavailable`` retry. Pure parts (`token_form`, `classify_token_answer`,
`parse_token`) do no I/O.

Refresh tokens a provider rotates (Microsoft returns a new one on every refresh) are not
written back: the platform database is read-only to the sinks, and the stored one stays
valid until its own expiry.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.sinks.answer import (
    Answer,
    backpressure,
    fatal,
    parse_retry_after,
    reauth,
    retry,
)
from connectors.sinks.base import DeliveryContext

# OAuth error codes (RFC 6749 5.2, plus the ones Microsoft identity platform returns)
# -> what they mean for the delivery. Anything else is classified by status.
REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})
CLIENT_ERRORS = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_request",
        "invalid_scope",
    }
)
RETRY_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


@dataclass(frozen=True)
class TokenGrant:
    """An access token and how many seconds it lives (`expires_in`)."""

    access_token: str
    expires_in: float


def token_form(
    refresh_token: str, client_id: str, client_secret: str, scope: str | None = None
) -> dict[str, str]:
    """The form body of a refresh-token grant (client credentials in the body, as both
    Google and Microsoft accept)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if scope:
        form["scope"] = scope
    return form


def parse_token(body: Any) -> TokenGrant | None:
    """The grant in a 200 answer, or None when the body has no usable access token.
    `expires_in` defaults to one hour when absent or unreadable."""
    if not isinstance(body, Mapping):
        return None
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    try:
        expires_in = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    return TokenGrant(token, max(0.0, expires_in))


def classify_token_answer(status: int, body: Any, retry_after: str | None, prefix: str) -> Answer:
    """What a token endpoint refusal (non-200, or 200 without a token) means.

    error_class is ``<prefix>.oauth.<error>`` for the known OAuth error codes above and
    ``<prefix>.oauth.<status>`` otherwise (a closed set: never the provider's text)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, str) else None
    if error in REAUTH_ERRORS:
        return reauth(
            f"{prefix}.oauth.{error}",
            "the refresh token was refused: the calendar owner must connect it again",
            status=status,
        )
    if error in CLIENT_ERRORS:
        return fatal(
            f"{prefix}.oauth.{error}",
            "the token endpoint refused the platform's OAuth client: check its client id, "
            "secret and scope",
            status=status,
        )
    code = f"{prefix}.oauth.{status}"
    if status == 429:
        return backpressure(code, parse_retry_after(retry_after), status=status)
    if error in RETRY_ERRORS:
        return retry(f"{prefix}.oauth.{error}", status=status)
    if status >= 500 or status in (408, 425):
        return retry(code, status=status)
    if status == 200:
        return retry(code, "the token endpoint answered without an access token", status=status)
    if status == 401:
        return fatal(code, "the token endpoint refused the platform's OAuth client", status=status)
    return fatal(code, "the token endpoint refused the refresh", status=status)


def _fingerprint(secret: str) -> str:
    return hashlib.blake2b(secret.encode(), digest_size=8).hexdigest()


@dataclass
class _Cached:
    token: str
    expires_at: float
    fingerprint: str


class OAuthClient:
    """Access tokens for integrations, from their stored refresh tokens (see the module
    docstring). `prefix` names the provider in error classes (``google``, ``graph``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        prefix: str,
        scope: str | None = None,
        skew_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._prefix = prefix
        self._scope = scope
        self._skew = skew_s
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, integration_id: str) -> None:
        """Drop the cached access token of one integration (the next call refreshes)."""
        self._cache.pop(integration_id, None)

    async def access_token(self, integration_id: str, ctx: DeliveryContext) -> str | Answer:
        """A usable access token, or the classified refusal of the token endpoint.

        Raises `MissingCredential` (a FatalError) when the integration has no stored refresh
        token; transport errors propagate (the runtime retries them)."""
        if ctx.refresh:
            ctx.credentials.invalidate("integration", integration_id)
            self.forget(integration_id)
        credential = await ctx.credentials.get("integration", integration_id)
        refresh_token = credential.secret("api_key", f"integration {integration_id}")
        fingerprint = _fingerprint(refresh_token)
        lock = self._locks.setdefault(integration_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(integration_id)
            if (
                cached is not None
                and cached.fingerprint == fingerprint
                and cached.expires_at - self._skew > self._clock()
            ):
                return cached.token
            return await self._refresh(integration_id, refresh_token, fingerprint)

    async def _refresh(
        self, integration_id: str, refresh_token: str, fingerprint: str
    ) -> str | Answer:
        """POST the grant; cache and return the token, or the classified refusal."""
        self.forget(integration_id)
        form = token_form(
            refresh_token, self._client_id, self._client_secret.get_secret_value(), self._scope
        )
        started = self._clock()
        response = await self._http.post(
            self._token_url, data=form, headers={"Accept": "application/json"}
        )
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        grant = parse_token(body) if response.status_code == 200 else None
        if grant is None:
            return classify_token_answer(
                response.status_code, body, response.headers.get("Retry-After"), self._prefix
            )
        self._cache[integration_id] = _Cached(
            grant.access_token, started + grant.expires_in, fingerprint
        )
        return grant.access_token


__all__ = [
    "OAuthClient",
    "TokenGrant",
    "classify_token_answer",
    "parse_token",
    "token_form",
]
