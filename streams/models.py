"""Typed views of the Avro records, mirroring `schemas/` field for field.

TypedDicts cost nothing at run time: the codec hands out plain dicts and these give them
names and types for mypy. `tests/unit/test_models.py` checks that each mirrors its schema.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Scalar = bool | int | float | str | None
ColumnValue = Scalar | list[Scalar]  # arrays (text[], int[], uuid[]) are lists
PayloadValue = bool | int | float | str | list[str] | None


class ChangeSource(TypedDict):
    connector: str
    db: str
    schema: str
    table: str
    lsn: int | None
    commit_lsn: int | None
    state_lsn: int | None
    tx_id: int | None
    ts_ms: int
    snapshot: bool


class ChangeEvent(TypedDict):
    event_id: str
    op: Literal["c", "u", "d", "r", "h"]
    before: dict[str, ColumnValue] | None
    after: dict[str, ColumnValue] | None
    primary_key: list[str]
    source: ChangeSource
    ts_ms: int
    source_ts_ms: int


class InboundWebhook(TypedDict):
    event_id: str
    source: str
    verification: str
    delivery_id: str
    headers: dict[str, str]
    content_type: str
    body: bytes
    received_at_ms: int
    source_ts_ms: int


class SourceRef(TypedDict):
    kind: Literal["cdc", "webhook", "internal"]
    topic: str
    partition: int
    offset: int
    lsn: int | None
    commit_lsn: int | None
    state_lsn: int | None
    delivery_id: str | None
    table: str | None


class DomainEvent(TypedDict):
    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at_ms: int
    correlation_id: str | None
    source_ts_ms: int
    source: SourceRef
    payload: dict[str, PayloadValue]
    organization_id: str | None


# ---- delivery records (schemas/deliveries/*.avsc) ------------------------------------------
# One TypedDict per destination kind, field for field. The first ten fields are shared by
# every delivery record (the envelope); each kind adds its own target and content fields.


class DeliveryCommon(TypedDict):
    """Fields every delivery record carries (schemas/deliveries/*.avsc start with them)."""

    delivery_id: str
    event_id: str
    event_type: str
    aggregate_id: str
    aggregate_version: int
    source_ts_ms: int
    routed_at_ms: int
    recipient_id: str | None
    integration_id: str | None
    attempt: int


class CalendarDelivery(DeliveryCommon):
    provider: Literal["google", "graph", "caldav"]
    calendar_id: str
    operation: Literal["upsert", "delete"]
    external_event_id: str
    title: str
    description: str | None
    location: str | None
    starts_at_ms: int | None
    ends_at_ms: int | None
    time_zone: str | None
    all_day: bool
    local_start: str | None
    local_end: str | None
    fallback_time_zone: str | None


CrmValue = bool | int | float | str | None


class CrmDelivery(DeliveryCommon):
    crm_kind: Literal[
        "photography_crm", "venue_booking", "tave", "honeybook", "light_blue", "custom"
    ]
    endpoint_url: str
    auth_scheme: Literal["bearer", "api_key_header", "basic", "none"]
    payload: dict[str, CrmValue]


class EmailDelivery(DeliveryCommon):
    to_address: str
    to_name: str | None
    template: str
    subject: str
    variables: dict[str, str]


class InAppDelivery(DeliveryCommon):
    user_id: str
    notification_type: str
    title: str
    body: str
    link: str | None
    data: dict[str, str]


class SlackDelivery(DeliveryCommon):
    channel: str
    text: str
    blocks_json: str


class SmsDelivery(DeliveryCommon):
    to_number: str
    text: str
    urgent: bool


class WebhookDelivery(DeliveryCommon):
    endpoint_id: str
    endpoint_url: str
    event_name: str
    body_json: str


DeliveryRecord = (
    CalendarDelivery
    | CrmDelivery
    | EmailDelivery
    | InAppDelivery
    | SlackDelivery
    | SmsDelivery
    | WebhookDelivery
)


Outcome = Literal[
    "delivered",
    "retry_scheduled",
    "dead_lettered",
    "rejected",
    "skipped_duplicate",
    "skipped_stale",
    "paused",
    "seen",
    "read",
]


class DeliveryResult(TypedDict):
    """One attempt's outcome on the delivery ledger (deliveries/delivery_result)."""

    delivery_id: str
    event_id: str
    event_type: str
    destination: str
    target: str
    integration_id: str | None
    attempt: int
    outcome: Outcome
    status_code: int | None
    latency_ms: float
    provider_id: str | None
    error_class: str | None
    error_message: str | None
    source_ts_ms: int
    completed_at_ms: int
    aggregate_id: str
    aggregate_version: int
    routed_at_ms: int
    source_topic: str
    source_partition: int
    source_offset: int
    superseded_by: str | None
    picked_up_at_ms: int | None


class InAppPresence(TypedDict):
    """A gateway's presence record (inapp/presence)."""

    event_id: str
    source_ts_ms: int
    gateway_id: str
    kind: Literal["heartbeat", "join", "gone"]
    user_id: str | None
    org_id: str | None
    display_name: NotRequired[str | None]  # v2: the user's name as others see it, for join


class SlaEvent(TypedDict):
    """A change in an integration's SLA health (health/sla_event)."""

    event_id: str
    integration_id: str
    destination: str
    kind: Literal["state_changed", "alert_firing", "alert_resolved"]
    name: str
    previous: str | None
    detail: str
    source_ts_ms: int
    computed_at_ms: int
