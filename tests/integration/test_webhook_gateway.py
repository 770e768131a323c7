"""The ingest gateway end to end: real HTTP in (httpx), real Kafka out (the embedded broker),
records read back with confluent-kafka and decoded with the codec. Signatures come from the
official `standardwebhooks` package and PyJWT."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from connectors.producer import AckedProducer
from connectors.sources.webhooks.gateway import running_gateway
from prometheus_client import generate_latest
from streams.dev.broker import EmbeddedBroker, free_port
from streams.errors import BrokerUnavailable
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.topics import INGEST_CDC, INGEST_STATE, INGEST_WEBHOOKS

from tests.integration.gateway_support import DB, JWT_KEY, make_config, signed, stored

pytestmark = pytest.mark.integration
pytest_plugins = ("tests.integration.gateway_fixtures",)


# ---- stored before acknowledged ---------------------------------------------------------
async def test_signed_webhook_is_in_kafka_when_answered_200(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    body = b'{"type":"invoice.paid"}'
    response = await client.post(
        f"{base_url}/webhooks/billing", content=body, headers=signed(body, f"msg-{unique_id}")
    )
    assert response.status_code == 200
    [msg] = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"msg-{unique_id}")
    record = codecs[INGEST_WEBHOOKS].decode(msg.value())
    assert (record["source"], record["verification"], record["body"]) == (
        "billing", "standard_webhooks", body,
    )  # fmt: skip


async def test_stored_headers_exclude_signatures_and_authorization(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    headers = {"authorization": "Bearer crm-token", "x-delivery": f"d-{unique_id}",
               "x-api-key": "k", "x-trace": "t-1"}  # fmt: skip
    response = await client.post(f"{base_url}/webhooks/crm", json={"a": 1}, headers=headers)
    assert response.status_code == 200
    [msg] = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"d-{unique_id}")
    kept = codecs[INGEST_WEBHOOKS].decode(msg.value())["headers"]
    assert ("x-trace" in kept, "authorization" in kept, "x-api-key" in kept) == (True, False, False)


async def test_replayed_delivery_is_answered_200_and_stored_once(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    body = b'{"n":1}'
    headers = signed(body, f"dup-{unique_id}")
    first = await client.post(f"{base_url}/webhooks/billing", content=body, headers=headers)
    second = await client.post(f"{base_url}/webhooks/billing", content=body, headers=headers)
    assert (first.status_code, second.status_code, second.json()["status"]) == (
        200, 200, "duplicate",
    )  # fmt: skip
    assert len(await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"dup-{unique_id}")) == 1


async def test_equal_bodies_without_a_delivery_id_are_each_stored(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    """A -> B -> A -> B from a provider that sends no delivery id: four real changes."""
    headers = {"authorization": "Bearer crm-token"}
    url = f"{base_url}/webhooks/crm"
    answers = [
        await client.post(url, json={"booking": unique_id, "status": status}, headers=headers)
        for status in ("A", "B", "A", "B")
    ]
    assert [a.json()["status"] for a in answers] == ["stored"] * 4
    records = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, unique_id, 4)
    assert len(records) == 4
    assert len({m.key() for m in records}) == 4


async def test_concurrent_twins_are_answered_200_and_stored_once(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    body = b'{"n":2}'
    headers = signed(body, f"twin-{unique_id}")
    url = f"{base_url}/webhooks/billing"
    answers = await asyncio.gather(*(client.post(url, content=body, headers=headers)
                                     for _ in range(5)))  # fmt: skip
    assert {a.status_code for a in answers} == {200}
    assert len(await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"twin-{unique_id}")) == 1


async def test_jwt_authenticated_webhook_is_stored(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    claims = {"iss": "venue", "aud": "wedsync", "exp": int(time.time()) + 60, "jti": unique_id}
    token = jwt.encode(claims, JWT_KEY, algorithm="HS256")
    response = await client.post(
        f"{base_url}/webhooks/venue", json={"booking_id": "b-1"},
        headers={"authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert response.status_code == 200
    assert await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"venue:{unique_id}")


# ---- every bad input gets its status ------------------------------------------------------
async def test_unknown_source_is_404(base_url: str, client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{base_url}/webhooks/nobody", json={})).status_code == 404


async def test_an_unknown_path_is_404_with_a_json_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{base_url}/nowhere", json={})
    assert (response.status_code, response.json()["error"]) == (404, "unknown_path")


async def test_a_wrong_method_is_405_with_a_json_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{base_url}/webhooks/billing")
    assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")


async def test_a_body_cut_short_is_counted_as_truncated(
    base_url: str, client: httpx.AsyncClient
) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer crm-token\r\n"
                 b"Content-Length: 100\r\n\r\n{")  # fmt: skip
    writer.write_eof()  # the sender goes away mid-body
    await reader.read()
    writer.close()
    metrics = generate_latest().decode()  # the gateway counts in this process
    assert 'wedsync_ingest_rejections_total{reason="truncated_body",source="crm"}' in metrics


async def test_bad_signature_is_401(base_url: str, client: httpx.AsyncClient) -> None:
    headers = signed(b'{"a":1}', "msg-forged")
    response = await client.post(
        f"{base_url}/webhooks/billing", content=b'{"a":2}', headers=headers
    )
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")


async def test_missing_signature_is_401(base_url: str, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{base_url}/webhooks/billing", json={"a": 1})
    assert response.status_code == 401


async def test_stale_timestamp_is_401(base_url: str, client: httpx.AsyncClient) -> None:
    body = b'{"a":1}'
    headers = signed(body, "msg-old", ts=time.time() - 3600)
    response = await client.post(f"{base_url}/webhooks/billing", content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "stale_timestamp")


async def test_bad_bearer_token_is_401(base_url: str, client: httpx.AsyncClient) -> None:
    headers = {"authorization": "Bearer guess"}
    response = await client.post(f"{base_url}/webhooks/crm", json={}, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "bad_token")


async def test_body_over_256_kib_is_413(base_url: str, client: httpx.AsyncClient) -> None:
    body = b'"' + b"x" * (256 * 1024) + b'"'
    headers = {"authorization": "Bearer crm-token"}
    response = await client.post(f"{base_url}/webhooks/crm", content=body, headers=headers)
    assert response.status_code == 413


async def test_chunked_body_over_the_limit_is_413(base_url: str, client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * (64 * 1024)

    headers = {"authorization": "Bearer crm-token"}
    response = await client.post(f"{base_url}/webhooks/crm", content=chunks(), headers=headers)
    assert response.status_code == 413


async def test_undecodable_header_bytes_are_401_not_500(
    base_url: str, client: httpx.AsyncClient
) -> None:
    headers = {"authorization": b"Bearer \xff\xfe"}
    response = await client.post(f"{base_url}/webhooks/crm", json={}, headers=headers)
    assert response.status_code == 401


async def test_a_lone_surrogate_in_a_change_payload_is_400_not_500(
    base_url: str, client: httpx.AsyncClient
) -> None:
    body = b'{"type":"INSERT","table":"core_fields","schema":"public","record":{"id":"\\ud800"}}'
    response = await client.post(f"{base_url}/changes/supabase", content=body, headers=DB)
    assert (response.status_code, response.json()["error"]) == (400, "unencodable")


async def test_malformed_json_is_400_with_the_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    headers = {"authorization": "Bearer crm-token"}
    response = await client.post(f"{base_url}/webhooks/crm", content=b"{oops", headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "malformed_json")
    assert "line 1" in response.json()["detail"]


async def test_a_deeply_nested_graph_notification_is_400_with_the_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    body = b'{"value":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post(f"{base_url}/webhooks/outlook", content=body)
    assert (response.status_code, response.json()["error"]) == (400, "too_deeply_nested")


async def test_a_deeply_nested_change_payload_is_400_with_the_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    body = b'{"type":"INSERT","table":"t","schema":"public","record":{"id":1,"j":'
    body += b"[" * 5_000 + b"]" * 5_000 + b"}}"
    response = await client.post(f"{base_url}/changes/supabase", content=body, headers=DB)
    assert (response.status_code, response.json()["error"]) == (400, "too_deeply_nested")


async def test_over_the_rate_limit_is_429_with_retry_after(
    base_url: str, client: httpx.AsyncClient
) -> None:
    headers = {"authorization": "Bearer t"}
    answers = [await client.post(f"{base_url}/webhooks/tiny", json={"i": i}, headers=headers)
               for i in range(3)]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1


async def test_rejections_are_counted_by_source_and_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    await client.post(f"{base_url}/webhooks/crm", json={}, headers={"authorization": "Bearer x"})
    metrics = generate_latest().decode()  # the gateway counts in this process
    assert 'wedsync_ingest_rejections_total{reason="bad_token",source="crm"}' in metrics


async def test_healthz_answers_ok(base_url: str, client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{base_url}/healthz")).json() == {"status": "ok"}


# ---- calendar providers -------------------------------------------------------------------
def goog(channel: str, token: str, number: str) -> dict[str, str]:
    return {"x-goog-channel-id": channel, "x-goog-channel-token": token,
            "x-goog-resource-id": "res-1", "x-goog-resource-state": "exists",
            "x-goog-message-number": number}  # fmt: skip


async def test_google_notification_from_the_registered_channel_is_stored(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    number = str(uuid.uuid4().int % 10**12)
    headers = goog("chan-1", "chan-token", number)
    response = await client.post(f"{base_url}/webhooks/gcal", headers=headers)
    assert response.status_code == 200
    [msg] = await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"chan-1:{number}")
    record = codecs[INGEST_WEBHOOKS].decode(msg.value())
    assert (record["headers"]["x-goog-message-number"], "x-goog-channel-token" in record[
        "headers"]) == (number, False)  # fmt: skip


async def test_google_notification_with_a_wrong_channel_token_is_401(
    base_url: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{base_url}/webhooks/gcal", headers=goog("chan-1", "x", "5"))
    assert response.status_code == 401


async def test_google_notification_for_an_unknown_channel_is_401(
    base_url: str, client: httpx.AsyncClient
) -> None:
    headers = goog("chan-9", "chan-token", "5")
    response = await client.post(f"{base_url}/webhooks/gcal", headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "unknown_channel")


async def test_graph_validation_token_is_echoed_as_text(
    base_url: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        f"{base_url}/webhooks/outlook", params={"validationToken": "Validation: token 42"}
    )
    assert (response.status_code, response.text) == (200, "Validation: token 42")
    assert response.headers["content-type"].startswith("text/plain")


async def test_graph_notification_with_client_state_is_202_and_stored(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    note = {"value": [{"subscriptionId": f"sub-{unique_id}", "clientState": "cs-secret",
                       "changeType": "updated", "resource": "me/events/1"}]}  # fmt: skip
    response = await client.post(f"{base_url}/webhooks/outlook", json=note)
    assert response.status_code == 202
    assert await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, f"sub-{unique_id}")


async def test_graph_lifecycle_notification_is_accepted(
    base_url: str, client: httpx.AsyncClient
) -> None:
    note = {"value": [{"subscriptionId": "sub-l", "clientState": "cs-secret",
                       "lifecycleEvent": "reauthorizationRequired"}]}  # fmt: skip
    assert (await client.post(f"{base_url}/webhooks/outlook", json=note)).status_code == 202


async def test_graph_notification_with_a_wrong_client_state_is_401(
    base_url: str, client: httpx.AsyncClient
) -> None:
    note = {"value": [{"subscriptionId": "sub-x", "clientState": "guess"}]}
    response = await client.post(f"{base_url}/webhooks/outlook", json=note)
    assert (response.status_code, response.json()["error"]) == (401, "bad_client_state")


# ---- change events over HTTP ----------------------------------------------------------------


async def test_supabase_payload_becomes_a_change_event_on_the_cdc_topic(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    payload = {"type": "UPDATE", "table": "wedding_details", "schema": "public",
               "record": {"id": f"w-{unique_id}", "wedding_date": "2027-06-19"},
               "old_record": {"id": f"w-{unique_id}", "wedding_date": "2027-06-12"}}  # fmt: skip
    response = await client.post(f"{base_url}/changes/supabase", json=payload, headers=DB)
    assert response.status_code == 200
    [msg] = await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"w-{unique_id}")
    change = codecs[INGEST_CDC].decode(msg.value())
    assert (msg.key(), change["op"], change["source"]["connector"]) == (
        f"wedding_details:w-{unique_id}".encode(), "u", "supabase-webhook",
    )  # fmt: skip


async def test_debezium_envelope_becomes_a_change_event_on_the_cdc_topic(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    envelope = {"payload": {"op": "c", "before": None,
                            "after": {"id": f"fr-{unique_id}", "form_name": "f-1"},
                            "source": {"db": "platform", "schema": "public",
                                       "table": "form_responses", "lsn": 99, "txId": 7,
                                       "ts_ms": 1_790_000_000_000},
                            "ts_ms": 1_790_000_000_001}}  # fmt: skip
    response = await client.post(f"{base_url}/changes/debezium", json=envelope, headers=DB)
    assert response.status_code == 200
    [msg] = await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"fr-{unique_id}")
    change = codecs[INGEST_CDC].decode(msg.value())
    assert (change["op"], change["source"]["lsn"], change["source"]["connector"]) == (
        "c", 99, "debezium-http",
    )  # fmt: skip


def flip(unique_id: str, date: str) -> dict[str, Any]:
    """A Supabase update of one wedding's date (the same bytes whenever the date is)."""
    return {"type": "UPDATE", "table": "wedding_details", "schema": "public",
            "record": {"id": f"w-{unique_id}", "wedding_date": date}}  # fmt: skip


def debezium_at(unique_id: str, date: str, lsn: int) -> dict[str, Any]:
    return {"op": "u", "before": None, "after": {"id": f"d-{unique_id}", "wedding_date": date},
            "source": {"db": "platform", "schema": "public", "table": "wedding_details",
                       "lsn": lsn, "txId": lsn // 10, "ts_ms": 1_790_000_000_000}}  # fmt: skip


async def test_a_change_sequence_a_b_a_b_is_stored_whole_with_four_event_ids(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    url = f"{base_url}/changes/supabase"
    for date in ("2027-06-12", "2027-06-19", "2027-06-12", "2027-06-19"):
        answer = await client.post(url, json=flip(unique_id, date), headers=DB)
        assert (answer.status_code, answer.json()["status"]) == (200, "stored")
    records = await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"w-{unique_id}", want=4)
    changes = [codecs[INGEST_CDC].decode(m.value()) for m in records]
    assert [c["after"]["wedding_date"] for c in changes] == [
        "2027-06-12", "2027-06-19", "2027-06-12", "2027-06-19",
    ]  # fmt: skip
    assert len({c["event_id"] for c in changes}) == 4


async def test_debezium_changes_at_new_positions_are_all_stored(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    url = f"{base_url}/changes/debezium"
    dates = ("2027-06-12", "2027-06-19", "2027-06-12", "2027-06-19")
    for lsn, date in enumerate(dates, start=100):
        answer = await client.post(url, json=debezium_at(unique_id, date, lsn), headers=DB)
        assert answer.json()["status"] == "stored"
    assert len(await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"d-{unique_id}", 4)) == 4


async def test_a_debezium_change_resent_at_its_position_is_stored_once(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    url = f"{base_url}/changes/debezium"
    change = debezium_at(unique_id, "2027-06-12", 500)
    answers = [await client.post(url, json=change, headers=DB) for _ in range(2)]
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate"]
    assert len(await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"d-{unique_id}")) == 1


async def test_a_change_resent_with_its_delivery_id_is_stored_once(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str
) -> None:
    url = f"{base_url}/changes/supahook"
    headers = {**DB, "x-delivery": f"del-{unique_id}"}
    answers = [await client.post(url, json=flip(unique_id, "2027-06-12"), headers=headers)
               for _ in range(2)]  # fmt: skip
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate"]
    assert len(await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"w-{unique_id}")) == 1


async def test_unconvertible_change_payload_is_400_with_the_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    payload = {"type": "TRUNCATE", "table": "t", "schema": "public"}
    response = await client.post(f"{base_url}/changes/supabase", json=payload, headers=DB)
    assert (response.status_code, response.json()["error"]) == (400, "bad_change_event")
    assert "INSERT, UPDATE or DELETE" in response.json()["detail"]


async def test_a_state_table_change_reaches_the_state_topic_too_keyed_by_id(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    """As the PostgreSQL CDC source writes it: wedsync.ingest.cdc and wedsync.ingest.state,
    the same key (the contract's: id), both acknowledged before the 200."""
    row = {"id": f"wv-{unique_id}", "wedding_id": "w-1", "vendor_id": "s-1",
           "vendor_type": "florist", "created_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    payload = {"type": "INSERT", "table": "wedding_vendors", "schema": "public",
               "record": row, "old_record": None}  # fmt: skip
    response = await client.post(f"{base_url}/changes/supabase", json=payload, headers=DB)
    assert response.status_code == 200
    key = f"wedding_vendors:wv-{unique_id}".encode()
    [cdc] = await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"wv-{unique_id}")
    [state] = await stored(kafka_bootstrap, INGEST_STATE, unique_id, f"wv-{unique_id}")
    assert (cdc.key(), state.key()) == (key, key)
    assert codecs[INGEST_STATE].decode(state.value()) == codecs[INGEST_CDC].decode(cdc.value())


@pytest.mark.parametrize("op", ["INSERT", "DELETE"])
async def test_a_secret_never_reaches_kafka(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, unique_id: str, op: str
) -> None:
    row = {"id": f"e-{unique_id}", "supplier_id": "s-1", "endpoint_url": "https://x.example",
           "secret_key": f"whsec-{unique_id}-never", "subscribed_events": ["a.insert"],
           "is_active": True}  # fmt: skip
    payload = {"type": op, "table": "webhook_endpoints", "schema": "public",
               "record": row if op == "INSERT" else None,
               "old_record": row if op == "DELETE" else None}  # fmt: skip
    response = await client.post(f"{base_url}/changes/supabase", json=payload, headers=DB)
    assert response.status_code == 200
    for topic in (INGEST_CDC, INGEST_STATE):
        [msg] = await stored(kafka_bootstrap, topic, f"{unique_id}-{topic.name}", f"e-{unique_id}")
        assert b"-never" not in msg.value()


async def test_a_table_outside_the_contract_is_422_with_the_reason(
    base_url: str, client: httpx.AsyncClient
) -> None:
    payload = {"type": "INSERT", "table": "auth_users", "schema": "public",
               "record": {"id": "u-1", "encrypted_password": "x"}}  # fmt: skip
    response = await client.post(f"{base_url}/changes/supabase", json=payload, headers=DB)
    assert (response.status_code, response.json()["error"]) == (422, "unknown_table")
    assert "not in the source contract" in response.json()["detail"]


async def test_numbers_in_a_change_body_are_stored_exactly_with_their_scale(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    big = "1234567890123456789012345678901234567890.0123456789"
    body = (
        '{"type":"INSERT","table":"journey_progress","schema":"public","old_record":null,'
        f'"record":{{"id":"jp-{unique_id}","completion_percentage":40.5}}}}'
    ).encode()
    core = (
        '{"type":"INSERT","table":"core_fields","schema":"public","old_record":null,'
        f'"record":{{"id":"cf-{unique_id}","budget":{big}}}}}'
    ).encode()
    for content in (body, core):
        response = await client.post(f"{base_url}/changes/supabase", content=content, headers=DB)
        assert response.status_code == 200
    [journey] = await stored(kafka_bootstrap, INGEST_CDC, unique_id, f"jp-{unique_id}")
    [profile] = await stored(kafka_bootstrap, INGEST_CDC, f"{unique_id}-c", f"cf-{unique_id}")
    decode = codecs[INGEST_CDC].decode
    assert decode(journey.value())["after"]["completion_percentage"] == "40.50"
    assert decode(profile.value())["after"]["budget"] == big


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
          "parameters": {"scale": "2"}}, "not base64!", "is not base64"),
        ({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
          "parameters": {"scale": "x"}}, "AfM=", "parameters.scale"),
        ({"type": "string", "name": "io.debezium.data.Geometry"}, "x", "logical type"),
    ],
)  # fmt: skip
async def test_a_hostile_debezium_value_is_400_with_the_reason(
    base_url: str, client: httpx.AsyncClient, field: dict[str, Any], value: Any, detail: str
) -> None:
    row = {"type": "struct", "optional": True, "fields": [
        {"type": "string", "optional": False, "field": "id"},
        {"optional": True, "field": "completion_percentage", **field}]}  # fmt: skip
    envelope = {"schema": {"type": "struct", "fields": [{**row, "field": "after"}]},
                "payload": {"op": "c", "before": None, "ts_ms": 1,
                            "after": {"id": "jp-1", "completion_percentage": value},
                            "source": {"db": "p", "schema": "public", "lsn": 9, "txId": 1,
                                       "table": "journey_progress", "ts_ms": 1}}}  # fmt: skip
    response = await client.post(f"{base_url}/changes/debezium", json=envelope, headers=DB)
    assert (response.status_code, response.json()["error"]) == (400, "bad_change_event")
    assert detail in response.json()["detail"]


async def test_change_sources_are_not_served_as_webhooks(
    base_url: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{base_url}/webhooks/supabase", json={}, headers=DB)
    assert response.status_code == 404


# ---- the broker stops answering ------------------------------------------------------------
async def test_paused_broker_gives_503_and_every_2xx_is_in_kafka(
    codecs: TopicCodecs, client: httpx.AsyncClient, unique_id: str
) -> None:
    broker = EmbeddedBroker()
    bootstrap = broker.start()
    try:
        create_topics(bootstrap, [INGEST_WEBHOOKS])
        config = make_config(ack_timeout_seconds=1.0, retry_after_seconds=2)
        async with running_gateway(config, bootstrap, codecs, port=free_port()) as (_, port):
            url = f"http://127.0.0.1:{port}/webhooks/billing"

            async def post(i: int) -> tuple[str, int, str | None]:
                msg_id, body = f"{unique_id}-{i}", json.dumps({"i": i}).encode()
                answer = await client.post(url, content=body, headers=signed(body, msg_id))
                return msg_id, answer.status_code, answer.headers.get("Retry-After")

            before = await asyncio.gather(*(post(i) for i in range(20)))
            broker.pause()
            during = await asyncio.gather(*(post(i) for i in range(20, 40)))
            broker.resume()
            retried, fresh = [], []
            for i in range(20, 60):  # senders retry their 503s (same id), new ones arrive
                for _ in range(20):
                    result = await post(i)
                    if result[1] != 503:
                        break
                    await asyncio.sleep(0.5)  # Retry-After, shortened
                (retried if i < 40 else fresh).append(result)
        assert {status for _, status, _ in before} == {200}
        assert {(status, retry) for _, status, retry in during} == {(503, "2")}
        assert {status for _, status, _ in [*retried, *fresh]} == {200}
        acked = {msg_id for msg_id, status, _ in [*before, *retried, *fresh] if status == 200}
        records = await stored(bootstrap, INGEST_WEBHOOKS, unique_id, unique_id, len(acked))
        in_kafka = [codecs[INGEST_WEBHOOKS].decode(m.value())["delivery_id"] for m in records]
        assert len(acked) == 60
        assert acked <= set(in_kafka)
    finally:
        broker.stop()


async def test_producer_without_a_broker_raises_broker_unavailable_in_time() -> None:
    producer = AckedProducer(f"127.0.0.1:{free_port()}", ack_timeout=0.5)
    producer.start()
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailable, match="no ack"):
            await producer.send(INGEST_WEBHOOKS, key=b"k", value=b"v")
        assert time.monotonic() - started < 2.0
    finally:
        assert await producer.close(timeout=0.2) == 1
