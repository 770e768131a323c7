"""Verified inbound webhooks -> domain events."""

from __future__ import annotations

import pytest
from streams import topics
from streams.dev.samples import inbound_webhook as webhook
from streams.errors import PoisonMessage
from streams.logic.normalize import normalize_webhook
from streams.models import SourceRef

REF = SourceRef(
    kind="webhook",
    topic=topics.INGEST_WEBHOOKS.name,
    partition=0,
    offset=1,
    lsn=None,
    delivery_id="d-1",
    table=None,
)


GOOGLE = {
    "x-goog-channel-id": "chan-1",
    "x-goog-resource-id": "res-1",
    "x-goog-resource-state": "exists",
    "x-goog-message-number": "17",
    "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/calendars/x/events",
}


def test_google_exists_notification_is_calendar_event_changed() -> None:
    event = normalize_webhook(webhook(headers=GOOGLE, source="google-calendar"), REF)[0]
    assert event["event_type"] == "calendar.event_changed"
    assert event["aggregate_id"] == "chan-1"
    assert event["payload"]["provider"] == "google"


def test_google_message_number_is_the_aggregate_version() -> None:
    event = normalize_webhook(webhook(headers=GOOGLE), REF)[0]
    assert event["aggregate_version"] == 17


def test_google_sync_handshake_means_nothing() -> None:
    headers = {**GOOGLE, "x-goog-resource-state": "sync"}
    assert normalize_webhook(webhook(headers=headers), REF) == []


def test_google_not_exists_is_a_deletion() -> None:
    headers = {**GOOGLE, "x-goog-resource-state": "not_exists"}
    assert normalize_webhook(webhook(headers=headers), REF)[0]["payload"]["change_type"] == (
        "deleted"
    )


def test_graph_notifications_become_one_event_each() -> None:
    body = {
        "value": [
            {
                "subscriptionId": "sub-1",
                "changeType": "updated",
                "resource": "me/events/A",
                "resourceData": {"id": "A"},
                "clientState": "x",
            },
            {
                "subscriptionId": "sub-1",
                "changeType": "deleted",
                "resource": "me/events/B",
                "resourceData": {"id": "B"},
                "clientState": "x",
            },
        ]
    }
    events = normalize_webhook(webhook(body, source="graph"), REF)
    assert [e["payload"]["provider_event_id"] for e in events] == ["A", "B"]
    assert events[0]["aggregate_version"] < events[1]["aggregate_version"]


def test_graph_notification_does_not_leak_client_state() -> None:
    body = {
        "value": [
            {"subscriptionId": "s", "changeType": "updated", "resource": "r", "clientState": "shh"}
        ]
    }
    assert "shh" not in str(normalize_webhook(webhook(body), REF)[0]["payload"])


def test_graph_lifecycle_notification_is_subscription_lifecycle() -> None:
    body = {"value": [{"subscriptionId": "sub-1", "lifecycleEvent": "reauthorizationRequired"}]}
    event = normalize_webhook(webhook(body), REF)[0]
    assert event["event_type"] == "calendar.subscription_lifecycle"


def test_crm_booking_webhook_is_booking_changed_with_sequence_version() -> None:
    body = {
        "event": "booking.updated",
        "sequence": 9,
        "data": {
            "id": "b-1",
            "vendor_id": "s-photo",
            "wedding_id": "w-1",
            "start": "2027-06-12T14:00:00",
            "end": "2027-06-12T22:00:00",
            "timezone": "Europe/London",
        },
    }
    event = normalize_webhook(webhook(body), REF)[0]
    assert event["event_type"] == "booking.changed"
    assert event["aggregate_version"] == 9
    assert event["payload"]["supplier_id"] == "s-photo"
    assert event["payload"]["cancelled"] is False


def test_crm_cancellation_is_marked_cancelled() -> None:
    body = {"event": "booking.cancelled", "data": {"id": "b-1", "vendor_id": "s"}}
    assert normalize_webhook(webhook(body), REF)[0]["payload"]["cancelled"] is True


def test_crm_version_falls_back_to_provider_timestamp() -> None:
    body = {"event": "project.updated", "data": {"id": "b", "updated_at": "2027-01-01T00:00:00Z"}}
    assert normalize_webhook(webhook(body), REF)[0]["aggregate_version"] == 1798761600000


def test_crm_status_webhook_is_vendor_status_changed() -> None:
    body = {"type": "vendor.status_changed", "data": {"vendor_id": "s-1", "status": "booked"}}
    event = normalize_webhook(webhook(body), REF)[0]
    assert (event["event_type"], event["aggregate_id"]) == ("vendor.status_changed", "s-1")


def test_unrecognised_crm_event_means_nothing() -> None:
    assert normalize_webhook(webhook({"event": "invoice.paid", "data": {}}), REF) == []


def test_non_json_body_is_a_poison_message() -> None:
    with pytest.raises(PoisonMessage):
        normalize_webhook(webhook(b"<xml/>"), REF)
