"""Verified inbound webhooks -> domain events. Pure: the stored webhook record in, events out.

Which parser applies is decided from the record itself:

    Google Calendar   `x-goog-resource-state` header (verification google_channel). Body empty.
                      'sync' is the channel handshake: no event. Otherwise one
                      calendar.event_changed keyed by channel id, version = message number.
    Microsoft Graph   JSON body with a `value` array (verification graph_client_state). One
                      calendar.event_changed per change notification; lifecycle notifications
                      (`lifecycleEvent`) become calendar.subscription_lifecycle.
    vendor CRM        any other JSON body with an event name (`event`, `type`, `event_type` or
                      `topic`) and an object (`data`, `payload` or the body itself): booking,
                      project and job events -> booking.changed; status and availability
                      events -> vendor.status_changed. Version: `sequence`/`version` when the
                      provider sends one, else the provider timestamp.

A body that is not JSON, or nests too deeply to parse, raises `PoisonMessage` (dead-letter
it). A JSON body that means nothing we route yields []. Event ids derive from the webhook's
event id and index, so a replay yields the same ids.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from streams.errors import PoisonMessage
from streams.models import DomainEvent, InboundWebhook, PayloadValue, SourceRef

Emitted = list[tuple[str, str, str, int, dict[str, PayloadValue]]]

_GOOGLE_STATE = "x-goog-resource-state"


def _event_id(webhook_event_id: str, index: int, event_type: str) -> str:
    key = f"{webhook_event_id}|{index}|{event_type}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _scalar(value: Any) -> PayloadValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _epoch_ms(value: Any) -> int | None:
    """An ISO-8601 timestamp or epoch number as epoch milliseconds; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value * 1000) if value < 1e11 else int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return int(parsed.timestamp() * 1000)
    return None


def _json(webhook: InboundWebhook) -> Any:
    try:
        return json.loads(webhook["body"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessage(f"webhook {webhook['event_id']}: body is not JSON: {exc}") from exc
    except RecursionError:
        raise PoisonMessage(f"webhook {webhook['event_id']}: body is nested too deeply") from None


def _google(webhook: InboundWebhook) -> Emitted:
    headers = webhook["headers"]
    state = headers[_GOOGLE_STATE]
    if state == "sync":
        return []
    channel = headers.get("x-goog-channel-id", "")
    try:
        version = int(headers.get("x-goog-message-number", ""))
    except ValueError:
        version = webhook["source_ts_ms"]
    payload: dict[str, PayloadValue] = {
        "provider": "google",
        "channel_id": channel,
        "resource_id": headers.get("x-goog-resource-id"),
        "resource_state": state,
        "resource_uri": headers.get("x-goog-resource-uri"),
        "change_type": "deleted" if state == "not_exists" else "updated",
        "source": webhook["source"],
    }
    return [("calendar.event_changed", "calendar_event", channel, version, payload)]


def _graph(webhook: InboundWebhook, body: dict[str, Any]) -> Emitted:
    out: Emitted = []
    base = webhook["source_ts_ms"] * 1000
    for index, note in enumerate(body.get("value") or []):
        if not isinstance(note, dict):
            continue
        subscription = str(note.get("subscriptionId", ""))
        version = base + index  # Graph sends no sequence: commit time, then batch order
        if note.get("lifecycleEvent"):
            payload: dict[str, PayloadValue] = {
                "provider": "graph",
                "subscription_id": subscription,
                "lifecycle_event": _str(note["lifecycleEvent"]),
                "expires_at": _str(note.get("subscriptionExpirationDateTime")),
                "source": webhook["source"],
            }
            out.append(
                (
                    "calendar.subscription_lifecycle",
                    "calendar_subscription",
                    subscription,
                    version,
                    payload,
                )
            )
            continue
        data = note.get("resourceData") if isinstance(note.get("resourceData"), dict) else {}
        payload = {
            "provider": "graph",
            "subscription_id": subscription,
            "change_type": _str(note.get("changeType")),
            "resource": _str(note.get("resource")),
            "provider_event_id": _str(data.get("id")) if data else None,
            "tenant_id": _str(note.get("tenantId")),
            "source": webhook["source"],
        }
        out.append(("calendar.event_changed", "calendar_event", subscription, version, payload))
    return out


_BOOKING_WORDS = ("booking", "project", "job", "appointment", "event")
_STATUS_WORDS = ("status", "availability")
_BOOKING_FIELDS = {
    "booking_id": ("booking_id", "id", "project_id", "job_id"),
    "supplier_id": ("supplier_id", "vendor_id"),
    "previous_supplier_id": ("previous_supplier_id", "previous_vendor_id"),
    "wedding_id": ("wedding_id",),
    "client_id": ("client_id", "couple_id"),
    "client_name": ("client_name", "couple_name"),
    "status": ("status", "state"),
    "starts_at": ("starts_at", "start", "start_time"),
    "ends_at": ("ends_at", "end", "end_time"),
    "time_zone": ("time_zone", "timezone", "tz"),
}


def _pick(data: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _crm(webhook: InboundWebhook, body: dict[str, Any]) -> Emitted:
    name = _pick(body, ("event", "type", "event_type", "topic"))
    if not isinstance(name, str):
        return []
    data = _pick(body, ("data", "payload"))
    data = data if isinstance(data, dict) else body
    lowered = name.lower()
    sequence = _pick(body, ("sequence", "version")) or _pick(data, ("sequence", "version"))
    if isinstance(sequence, int) and not isinstance(sequence, bool):
        version = sequence
    else:
        stamp = _pick(data, ("updated_at", "timestamp")) or _pick(body, ("timestamp", "sent_at"))
        version = _epoch_ms(stamp) or webhook["source_ts_ms"]
    if any(word in lowered for word in _STATUS_WORDS):
        supplier = _str(_pick(data, ("supplier_id", "vendor_id")))
        if supplier is None:
            return []
        payload: dict[str, PayloadValue] = {
            "supplier_id": supplier,
            "new_status": _str(_pick(data, ("status", "availability", "state"))),
            "provider_event": name,
            "source": webhook["source"],
        }
        return [("vendor.status_changed", "vendor", supplier, version, payload)]
    if any(word in lowered for word in _BOOKING_WORDS):
        payload = {key: _scalar(_pick(data, names)) for key, names in _BOOKING_FIELDS.items()}
        if payload["booking_id"] is None:
            return []
        payload["booking_id"] = str(payload["booking_id"])
        payload["cancelled"] = (
            "cancel" in lowered
            or "delete" in lowered
            or (str(payload["status"]).lower() in ("cancelled", "canceled", "deleted"))
        )
        payload["provider_event"] = name
        payload["source"] = webhook["source"]
        return [("booking.changed", "booking", str(payload["booking_id"]), version, payload)]
    return []


def normalize_webhook(webhook: InboundWebhook, source: SourceRef) -> list[DomainEvent]:
    """The domain events one verified inbound webhook means; [] when none.

    Raises `PoisonMessage` when a body that must be JSON is not.
    """
    if _GOOGLE_STATE in webhook["headers"]:
        emitted = _google(webhook)
    else:
        body = _json(webhook)
        if not isinstance(body, dict):
            return []
        if isinstance(body.get("value"), list):
            emitted = _graph(webhook, body)
        else:
            emitted = _crm(webhook, body)
    return [
        DomainEvent(
            event_id=_event_id(webhook["event_id"], index, event_type),
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at_ms=webhook["source_ts_ms"],
            correlation_id=f"webhook:{webhook['delivery_id']}",
            source_ts_ms=webhook["source_ts_ms"],
            source=source,
            payload=payload,
            organization_id=None,
        )
        for index, (event_type, aggregate_type, aggregate_id, version, payload) in enumerate(
            emitted
        )
    ]
