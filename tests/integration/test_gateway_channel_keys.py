"""The ingest gateway with channel-key (MAC) sources against the session's broker: Google
notifications of any channel with a valid token are stored with their integration id, Graph
batches keep only their good items, and the Google fake's pushes land on Kafka."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from connectors.sources.webhooks.config import parse_gateway_config
from connectors.sources.webhooks.gateway import INTEGRATION_HEADER, running_gateway
from prometheus_client import REGISTRY
from streams.dev.broker import free_port
from streams.dev.fakes.calendar_kit import owner_of
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.kit import FakeServer
from streams.kafka.codec import TopicCodecs
from streams.logic.calendar.channels import issue_token
from streams.topics import INGEST_WEBHOOKS

from tests.integration.gateway_support import stored

pytestmark = pytest.mark.integration

KEY, OLD = "gateway-channel-key-0123456789", "gateway-channel-key-previous-01"
INTEGRATION = "8c1d7f0e-5b8a-4d2e-9a7c-3f1e2d4c5b6a"
SOURCES = {
    "gcal-mac": {"method": "google_channel", "channel_keys": [KEY, OLD]},
    "outlook-mac": {"method": "graph_client_state", "channel_keys": [KEY, OLD]},
}


@pytest.fixture
async def base_url(kafka_bootstrap: str, codecs: TopicCodecs) -> AsyncIterator[str]:
    config = parse_gateway_config({"sources": SOURCES}, {})
    async with running_gateway(config, kafka_bootstrap, codecs, port=free_port()) as (_, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


def token(channel: str, key: str = KEY) -> str:
    return issue_token([key.encode()], INTEGRATION, channel)


def goog(channel: str, number: str, channel_token: str) -> dict[str, str]:
    return {"x-goog-channel-id": channel, "x-goog-channel-token": channel_token,
            "x-goog-resource-id": "res-1", "x-goog-resource-state": "exists",
            "x-goog-message-number": number,
            "x-goog-channel-expiration": "Tue, 19 Nov 2030 01:13:52 GMT"}  # fmt: skip


async def test_a_google_channel_with_a_valid_mac_is_stored_with_its_integration(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    channel = f"chan-{unique_id}"
    headers = {**goog(channel, "42", token(channel, OLD)), INTEGRATION_HEADER: "forged"}
    response = await client.post(f"{base_url}/webhooks/gcal-mac", headers=headers)
    assert response.status_code == 200
    [msg] = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"{channel}:42")
    kept = codecs[INGEST_WEBHOOKS].decode(msg.value())["headers"]
    assert kept[INTEGRATION_HEADER] == INTEGRATION
    assert kept["x-goog-channel-expiration"] == "Tue, 19 Nov 2030 01:13:52 GMT"
    assert "x-goog-channel-token" not in kept


async def test_a_google_channel_with_a_wrong_mac_is_401(
    base_url: str, client: httpx.AsyncClient
) -> None:
    headers = goog("chan-x", "7", token("chan-other"))
    response = await client.post(f"{base_url}/webhooks/gcal-mac", headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "bad_token")


async def test_a_graph_batch_keeps_its_good_items_and_answers_202(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    good = {"subscriptionId": f"sub-{unique_id}", "clientState": token(f"sub-{unique_id}"),
            "changeType": "updated", "resource": "me/events/1"}  # fmt: skip
    bad = {"subscriptionId": "sub-forged", "clientState": "guess", "changeType": "deleted"}
    before = _rejected_items()
    response = await client.post(f"{base_url}/webhooks/outlook-mac", json={"value": [bad, good]})
    assert response.status_code == 202
    [msg] = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"sub-{unique_id}")
    assert json.loads(codecs[INGEST_WEBHOOKS].decode(msg.value())["body"]) == {"value": [good]}
    assert _rejected_items() == before + 1


async def test_a_graph_batch_without_a_good_item_is_401(
    base_url: str, client: httpx.AsyncClient
) -> None:
    bad = {"subscriptionId": "sub-1", "clientState": token("sub-2")}
    response = await client.post(f"{base_url}/webhooks/outlook-mac", json={"value": [bad]})
    assert (response.status_code, response.json()["error"]) == (401, "bad_client_state")


def _rejected_items() -> float:
    labels = {"source": "outlook-mac", "reason": "bad_client_state_item"}
    return REGISTRY.get_sample_value("wedsync_ingest_rejections_total", labels) or 0.0


# ---- the Google fake's pushes, through the gateway --------------------------------------------
@pytest.fixture
def fake() -> Iterator[GoogleCalendarFake]:
    provider = GoogleCalendarFake()
    with FakeServer(provider) as server:
        provider.base_url = server.url  # type: ignore[attr-defined]
        yield provider


async def test_the_fakes_sync_and_exists_pushes_are_stored(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    fake: GoogleCalendarFake, unique_id: str,
) -> None:  # fmt: skip
    base = fake.base_url  # type: ignore[attr-defined]
    grant = {"grant_type": "refresh_token", "refresh_token": "vendor-refresh"}
    access = (await client.post(f"{base}/token", data=grant)).json()["access_token"]
    channel = f"chan-{unique_id}"
    body = {"id": channel, "type": "web_hook", "address": f"{base_url}/webhooks/gcal-mac",
            "token": token(channel)}  # fmt: skip
    answer = await client.post(f"{base}/calendar/v3/calendars/primary/events/watch", json=body,
                               headers={"Authorization": f"Bearer {access}"})  # fmt: skip
    assert answer.status_code == 200
    fake.vendor_upsert(owner_of("vendor-refresh"), "primary", {"start": {}, "end": {}})
    msgs = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, channel, want=2)
    records = [codecs[INGEST_WEBHOOKS].decode(m.value()) for m in msgs]
    states = sorted(r["headers"]["x-goog-resource-state"] for r in records)
    assert states == ["exists", "sync"]
    assert {r["headers"][INTEGRATION_HEADER] for r in records} == {INTEGRATION}
