"""Fixtures of the ingest-gateway integration tests: `base_url` (the gateway with
`gateway_support.SOURCES`, on a free loopback port, against the session's broker) and
`client` (httpx). Test modules load them with
`pytest_plugins = ("tests.integration.gateway_fixtures",)`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from connectors.sources.webhooks.gateway import running_gateway
from streams.dev.broker import free_port
from streams.kafka.codec import TopicCodecs

from tests.integration.gateway_support import make_config


@pytest.fixture
async def base_url(kafka_bootstrap: str, codecs: TopicCodecs) -> AsyncIterator[str]:
    """The gateway with `SOURCES`, on a free loopback port, against the session's broker."""
    port = free_port()
    async with running_gateway(make_config(), kafka_bootstrap, codecs, port=port) as (_, bound):
        yield f"http://127.0.0.1:{bound}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http
