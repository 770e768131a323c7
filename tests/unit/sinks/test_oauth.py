"""The shared OAuth2 refresh-token helper: pure classification and the token cache (the
token endpoint is an httpx MockTransport: no sockets)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from connectors.sinks.answer import Answer, Verdict
from connectors.sinks.base import DeliveryContext
from connectors.sinks.credentials import MemoryCredentialStore, MissingCredential
from connectors.sinks.oauth import (
    OAuthClient,
    TokenGrant,
    classify_token_answer,
    parse_token,
    token_form,
)
from pydantic import SecretStr


# ---- pure --------------------------------------------------------------------------------
def test_token_form_is_a_refresh_grant() -> None:
    assert token_form("r", "id", "s") == {
        "grant_type": "refresh_token",
        "refresh_token": "r",
        "client_id": "id",
        "client_secret": "s",
    }


def test_token_form_adds_scope_when_given() -> None:
    assert token_form("r", "id", "s", "offline_access")["scope"] == "offline_access"


def test_parse_token() -> None:
    assert parse_token({"access_token": "a", "expires_in": 120}) == TokenGrant("a", 120.0)


def test_parse_token_defaults_expiry_to_an_hour() -> None:
    assert parse_token({"access_token": "a"}) == TokenGrant("a", 3600.0)


@pytest.mark.parametrize("body", [None, [], {}, {"access_token": ""}, {"access_token": 3}])
def test_parse_token_without_a_token(body: Any) -> None:
    assert parse_token(body) is None


@pytest.mark.parametrize(
    ("status", "error", "verdict", "error_class"),
    [
        (400, "invalid_grant", Verdict.REAUTH, "google.oauth.invalid_grant"),
        (400, "interaction_required", Verdict.REAUTH, "google.oauth.interaction_required"),
        (400, "consent_required", Verdict.REAUTH, "google.oauth.consent_required"),
        (401, "invalid_client", Verdict.FATAL, "google.oauth.invalid_client"),
        (400, "unauthorized_client", Verdict.FATAL, "google.oauth.unauthorized_client"),
        (400, "invalid_scope", Verdict.FATAL, "google.oauth.invalid_scope"),
        (400, "invalid_request", Verdict.FATAL, "google.oauth.invalid_request"),
        (400, "unsupported_grant_type", Verdict.FATAL, "google.oauth.unsupported_grant_type"),
        (503, "temporarily_unavailable", Verdict.RETRY, "google.oauth.temporarily_unavailable"),
        (500, None, Verdict.RETRY, "google.oauth.500"),
        (429, None, Verdict.BACKPRESSURE, "google.oauth.429"),
        (400, "something_else", Verdict.FATAL, "google.oauth.400"),
        (200, None, Verdict.RETRY, "google.oauth.200"),
    ],
)
def test_classify_token_answer(
    status: int, error: str | None, verdict: Verdict, error_class: str
) -> None:
    body = {"error": error, "error_description": "user@example.com revoked"} if error else {}
    answer = classify_token_answer(status, body, None, "google")
    assert answer.verdict is verdict
    assert answer.error_class == error_class
    assert "example.com" not in answer.message


def test_token_429_carries_retry_after() -> None:
    assert classify_token_answer(429, None, "30", "graph").retry_after == 30.0


# ---- the client --------------------------------------------------------------------------
class TokenEndpoint:
    """A scripted token endpoint: answers from `script`, records the forms it got."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        from urllib.parse import parse_qsl

        self.forms.append(dict(parse_qsl(request.content.decode())))
        if len(self.answers) > 1:
            return self.answers.pop(0)
        return self.answers[0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token(value: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": value, "expires_in": expires_in})


def client(endpoint: TokenEndpoint, clock: Clock | None = None) -> OAuthClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    return OAuthClient(
        http,
        token_url="https://oauth.test/token",
        client_id="app",
        client_secret=SecretStr("app-secret"),
        prefix="google",
        skew_s=60,
        clock=clock or Clock(),
    )


class CountingStore(MemoryCredentialStore):
    def __init__(self, refresh: str = "refresh-1") -> None:
        super().__init__({("integration", "i1"): {"api_key": refresh}})
        self.invalidated: list[tuple[str, str]] = []

    def invalidate(self, kind: Any, key: str) -> None:
        self.invalidated.append((kind, key))


def ctx(store: MemoryCredentialStore, refresh: bool = False) -> DeliveryContext:
    return DeliveryContext(credentials=store, idempotency_key="k", attempt=0, refresh=refresh)


async def test_first_call_posts_the_refresh_grant() -> None:
    endpoint = TokenEndpoint(token("A"))
    assert await client(endpoint).access_token("i1", ctx(CountingStore())) == "A"
    assert endpoint.forms == [
        {
            "grant_type": "refresh_token",
            "refresh_token": "refresh-1",
            "client_id": "app",
            "client_secret": "app-secret",
        }
    ]


async def test_token_is_cached_until_shortly_before_expiry() -> None:
    endpoint, clock, store = TokenEndpoint(token("A", 600), token("B")), Clock(), CountingStore()
    oauth = client(endpoint, clock)
    assert await oauth.access_token("i1", ctx(store)) == "A"
    clock.now += 500  # 100 s left > 60 s skew
    assert await oauth.access_token("i1", ctx(store)) == "A"
    clock.now += 50  # 50 s left < skew
    assert await oauth.access_token("i1", ctx(store)) == "B"
    assert len(endpoint.forms) == 2


async def test_refresh_drops_the_token_and_invalidates_the_row() -> None:
    endpoint, store = TokenEndpoint(token("A"), token("B")), CountingStore()
    oauth = client(endpoint)
    await oauth.access_token("i1", ctx(store))
    assert await oauth.access_token("i1", ctx(store, refresh=True)) == "B"
    assert store.invalidated == [("integration", "i1")]


async def test_a_new_refresh_token_is_not_served_the_old_access_token() -> None:
    endpoint, store = TokenEndpoint(token("A"), token("B")), CountingStore()
    oauth = client(endpoint)
    await oauth.access_token("i1", ctx(store))
    store.set("integration", "i1", {"api_key": "refresh-2"})  # reconnected
    assert await oauth.access_token("i1", ctx(store)) == "B"


async def test_concurrent_callers_share_one_refresh() -> None:
    import asyncio

    endpoint, store = TokenEndpoint(token("A")), CountingStore()
    oauth = client(endpoint)
    results = await asyncio.gather(*(oauth.access_token("i1", ctx(store)) for _ in range(5)))
    assert results == ["A"] * 5
    assert len(endpoint.forms) == 1


async def test_invalid_grant_is_a_reauth_answer() -> None:
    endpoint = TokenEndpoint(httpx.Response(400, json={"error": "invalid_grant"}))
    answer = await client(endpoint).access_token("i1", ctx(CountingStore()))
    assert isinstance(answer, Answer)
    assert answer.verdict is Verdict.REAUTH


async def test_refused_refresh_is_not_cached() -> None:
    endpoint = TokenEndpoint(httpx.Response(503, text="down"), token("A"))
    oauth = client(endpoint)
    first = await oauth.access_token("i1", ctx(CountingStore()))
    assert isinstance(first, Answer) and first.verdict is Verdict.RETRY
    assert await oauth.access_token("i1", ctx(CountingStore())) == "A"


async def test_missing_refresh_token_raises_missing_credential() -> None:
    store = MemoryCredentialStore({("integration", "i1"): {"api_key": None}})
    with pytest.raises(MissingCredential) as raised:
        await client(TokenEndpoint(token("A"))).access_token("i1", ctx(store))
    assert "i1" in str(raised.value)
