"""The TypedDicts in streams.models mirror the Avro schemas field for field."""

from __future__ import annotations

from typing import get_type_hints

import pytest
from streams import models
from streams.kafka.schema_store import SchemaStore

MIRRORS = {
    "ingest/change_event": models.ChangeEvent,
    "ingest/inbound_webhook": models.InboundWebhook,
    "events/domain_event": models.DomainEvent,
    "deliveries/calendar_delivery": models.CalendarDelivery,
    "deliveries/crm_delivery": models.CrmDelivery,
    "deliveries/email_delivery": models.EmailDelivery,
    "deliveries/inapp_delivery": models.InAppDelivery,
    "deliveries/slack_delivery": models.SlackDelivery,
    "deliveries/sms_delivery": models.SmsDelivery,
    "deliveries/webhook_delivery": models.WebhookDelivery,
    "deliveries/delivery_result": models.DeliveryResult,
    "inapp/presence": models.InAppPresence,
    "health/sla_event": models.SlaEvent,
}


@pytest.mark.parametrize("key", sorted(MIRRORS))
def test_model_fields_equal_schema_fields(key: str, schema_store: SchemaStore) -> None:
    schema_fields = [f["name"] for f in schema_store.latest(key).raw["fields"]]
    assert sorted(get_type_hints(MIRRORS[key])) == sorted(schema_fields)
