"""Route domain events to deliveries: rules (streams/routing.toml) x recipients' channel
preferences x routing state. Pure and fast: the rules file is validated once, by pydantic, at
load; `route` itself does dict look-ups and builds plain dicts.

    rules = load_rules()                          # once; ConfigurationError names a bad rule
    deliveries = route(event, state, rules, now_ms)

Each `Delivery` carries the destination kind, the Kafka key (the event's aggregate id) and a
record matching `schemas/deliveries/<kind>_delivery.v1.avsc`. `delivery_id` is derived from
event id + destination + target, so routing a replayed event yields the same ids.

Channels per recipient: the supplier's `realtime_channels` filtered by the rule's
`allowed_channels`; the rule's `default_channels` when the supplier chose nothing (an empty
list is a choice: no personal channels). A channel without an address (no email, no Slack
channel, no phone) is skipped. Couples are told in-app only: routing state holds no couple
contact details. Vendors of a wedding come from `wedding_vendors`; a couple's vendors (for
events keyed by couple) from the couple's weddings (`couple_weddings`).

A recipient the state does not know gets nothing (never a notice addressed to a made-up
user), and a delivery whose content cannot be built (a time that cannot be read in the
wedding's zone) is left out; both are appended to `problems`, so the engine can count and
dead-letter the event for replay while every other delivery goes out.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, NamedTuple, Protocol

from streams.logic import transform
from streams.logic.rules import (
    DEFAULT_RULES_PATH,
    RoutingRules,
    Rule,
    load_rules,
    parse_rules,
)
from streams.logic.state import IntegrationState, StateTables, SupplierState, active_integrations
from streams.logic.times import TimeRefused
from streams.models import DeliveryRecord, DomainEvent
from streams.topics import Destination

__all__ = [
    "DEFAULT_RULES_PATH",
    "Delivery",
    "Emit",
    "RoutingRules",
    "load_rules",
    "parse_rules",
    "route",
]


class Emit(Protocol):
    """Appends one delivery record (envelope added by `route`) to the result."""

    def __call__(
        self,
        dest: Destination,
        target: str,
        recipient: str | None,
        integration: str | None,
        fields: dict[str, Any],
    ) -> None: ...


class Delivery(NamedTuple):
    destination: Destination
    key: str
    record: DeliveryRecord


# ---- integration classes ------------------------------------------------------------------
_CLASS_OF_TYPE = {
    "photography_crm": "photography_crm",
    "tave": "photography_crm",
    "honeybook": "photography_crm",
    "light_blue": "photography_crm",
    "venue_booking": "venue_booking",
    "google_calendar": "calendar",
    "google": "calendar",
    "outlook": "calendar",
    "outlook_calendar": "calendar",
    "microsoft_graph": "calendar",
    "graph": "calendar",
    "office365": "calendar",
    "icloud": "calendar",
    "icloud_calendar": "calendar",
    "apple_calendar": "calendar",
    "caldav": "calendar",
    "email_marketing": "email_marketing",
    "mailchimp": "email_marketing",
}
_CLASS_OF_TABLE = {"venue_integrations": "venue_booking", "email_integrations": "email_marketing"}
_CALENDAR_PROVIDER: dict[str, Literal["google", "graph", "caldav"]] = {
    "google_calendar": "google",
    "google": "google",
    "outlook": "graph",
    "outlook_calendar": "graph",
    "microsoft_graph": "graph",
    "graph": "graph",
    "office365": "graph",
}
_CRM_KIND = {"tave": "tave", "honeybook": "honeybook", "light_blue": "light_blue"}
_AUTH = frozenset({"bearer", "api_key_header", "basic", "none"})


def calendar_provider(integration: IntegrationState) -> Literal["google", "graph", "caldav"]:
    """Which calendar API a calendar integration speaks (iCloud and CalDAV: caldav)."""
    return _CALENDAR_PROVIDER.get(integration["integration_type"], "caldav")


def integration_class(integration: IntegrationState) -> str | None:
    """Which rule integration kind an integration serves, None when none."""
    kind = _CLASS_OF_TYPE.get(integration["integration_type"])
    return kind or _CLASS_OF_TABLE.get(integration["source_table"])


def _delivery_id(event_id: str, destination: str, target: str) -> str:
    key = f"{event_id}|{destination}|{target}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def _recipients(event: DomainEvent, rule: Rule, state: StateTables) -> list[str]:
    payload = event["payload"]
    supplier = payload.get("supplier_id")
    out: list[str] = [supplier] if isinstance(supplier, str) else []
    if rule.recipients == "wedding_vendors":
        for wedding in _weddings(payload, state):
            links = state.wedding_vendors.get(wedding)
            if links:
                out.extend(links[k]["supplier_id"] for k in sorted(links))
    return list(dict.fromkeys(out))


def _weddings(payload: dict[str, Any], state: StateTables) -> list[str]:
    """The event's wedding, or every wedding of its couple."""
    wedding = payload.get("wedding_id")
    if isinstance(wedding, str):
        return [wedding]
    couple = payload.get("couple_id")
    found = state.couple_weddings.get(couple) if isinstance(couple, str) else None
    return sorted(found) if found else []


def _with_wedding(event: DomainEvent, state: StateTables) -> DomainEvent:
    """The event, its payload given the couple's wedding id when it names none and the couple
    has exactly one wedding (a form response or milestone row carries only the couple): a
    CRM files the update under that wedding."""
    payload = event["payload"]
    if payload.get("wedding_id"):
        return event
    couple = payload.get("couple_id") or payload.get("client_id")  # events name it client_id
    weddings = _weddings({"couple_id": couple}, state)
    if len(weddings) != 1:
        return event
    return {**event, "payload": {**payload, "wedding_id": weddings[0]}}


def _couple_name(wedding: Any, couple: Any, state: StateTables) -> str | None:
    """The couple's names ('Alex & Sam') of `wedding`, else of `couple`'s only wedding."""
    weddings = [wedding] if isinstance(wedding, str) and wedding else []
    weddings = weddings or _weddings({"couple_id": couple}, state)
    found = state.weddings.get(weddings[0]) if len(weddings) == 1 else None
    return None if found is None else found["couple_name"]


def _named(event: DomainEvent, state: StateTables) -> DomainEvent:
    """The event, its payload given the couples' names from the routing state where it
    carries none (a CRM booking names the wedding, not the couple), so that every message
    names people as the recipient knows them."""
    p = event["payload"]
    extra: dict[str, Any] = {}
    couple = p.get("couple_id") or p.get("client_id")
    if not p.get("client_name"):
        extra["client_name"] = _couple_name(p.get("wedding_id"), couple, state)
    if event["event_type"] == "booking.conflict_detected" and not p.get("conflicting_client_name"):
        extra["conflicting_client_name"] = _couple_name(
            p.get("conflicting_wedding_id"), p.get("conflicting_client_id"), state
        )
    extra = {k: v for k, v in extra.items() if v}
    return {**event, "payload": {**p, **extra}} if extra else event


def _channels(rule: Rule, supplier: SupplierState | None) -> tuple[str, ...]:
    chosen = None if supplier is None else supplier["realtime_channels"]
    if chosen is None:
        return rule.default_channels
    return tuple(c for c in dict.fromkeys(chosen) if c in rule.allowed_channels)


def route(
    event: DomainEvent,
    state: StateTables,
    rules: RoutingRules,
    now_ms: int,
    problems: list[str] | None = None,
) -> list[Delivery]:
    """Every delivery `event` means under `rules` and `state`, in a deterministic order.

    [] when no rule names the event type or nobody is to be told. What could not be routed
    (unknown recipient, refused content) is appended to `problems` when given."""
    if problems is None:
        problems = []
    rule = rules.by_event_type.get(event["event_type"])
    if rule is None:
        return []
    event = _named(event, state)
    event_id = event["event_id"]
    key = event["aggregate_id"]
    base: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event["event_type"],
        "aggregate_id": key,
        "aggregate_version": event["aggregate_version"],
        "source_ts_ms": event["source_ts_ms"],
        "routed_at_ms": now_ms,
        "attempt": 0,
    }
    out: list[Delivery] = []
    cache: dict[str, Any] = {}

    def emit(
        dest: Destination,
        target: str,
        recipient: str | None,
        integration: str | None,
        fields: dict[str, Any],
    ) -> None:
        record = {
            "delivery_id": _delivery_id(event_id, dest.value, target),
            **base,
            "recipient_id": recipient,
            "integration_id": integration,
            **fields,
        }
        # in-app: keyed by user (one ordered stream per user, see streams/topics.py)
        k = fields["user_id"] if dest is Destination.INAPP else key
        out.append(Delivery(dest, k, record))  # type: ignore[arg-type]

    if rule.recipients != "none":
        for supplier_id in _recipients(event, rule, state):
            supplier = state.suppliers.get(supplier_id)
            if supplier is None:
                problems.append(f"supplier {supplier_id} is not in the routing state")
                continue
            for channel in _channels(rule, supplier):
                _personal(event, channel, supplier_id, supplier, rule, cache, emit)
            if rule.integrations:
                for integration in active_integrations(state.integrations, supplier_id):
                    kind = integration_class(integration)
                    if kind not in rule.integrations:
                        continue
                    try:
                        _system(_with_wedding(event, state), kind, supplier_id, integration,
                                rules.default_time_zone, emit)  # fmt: skip
                    except TimeRefused as exc:
                        problems.append(f"{kind} {integration['integration_id']}: {exc}")
        if rule.recipients == "vendor_and_couple":
            _couple(event, state, cache, emit)
    if rule.webhooks:
        _webhooks(event, state, emit)
    return out


def _personal(
    event: DomainEvent,
    channel: str,
    supplier_id: str,
    supplier: SupplierState,
    rule: Rule,
    cache: dict[str, Any],
    emit: Emit,
) -> None:
    if channel == "inapp":
        if "inapp" not in cache:
            cache["inapp"] = transform.inapp_content(event)
        title, body, link, data = cache["inapp"]
        user = supplier["user_id"]
        emit(
            Destination.INAPP,
            f"inapp:{user}",
            supplier_id,
            None,
            {
                "user_id": user,
                "notification_type": event["event_type"],
                "title": title,
                "body": body,
                "link": link,
                "data": data,
            },
        )
    elif channel == "email" and supplier["email"]:
        template, subject, variables = transform.email_content(event, supplier["name"])
        emit(
            Destination.EMAIL,
            f"email:{supplier_id}",
            supplier_id,
            None,
            {
                "to_address": supplier["email"],
                "to_name": supplier["name"],
                "template": template,
                "subject": subject,
                "variables": variables,
            },
        )
    elif channel == "slack" and supplier["slack_channel"]:
        if "slack" not in cache:
            cache["slack"] = transform.slack_content(event)
        text, blocks = cache["slack"]
        emit(
            Destination.SLACK,
            f"slack:{supplier['slack_channel']}",
            supplier_id,
            None,
            {"channel": supplier["slack_channel"], "text": text, "blocks_json": blocks},
        )
    elif channel == "sms" and supplier["phone"]:
        emit(
            Destination.SMS,
            f"sms:{supplier_id}",
            supplier_id,
            None,
            {
                "to_number": supplier["phone"],
                "text": transform.sms_text(event),
                "urgent": rule.urgent,
            },
        )


def _system(
    event: DomainEvent, kind: str, supplier_id: str, integration: IntegrationState,
    default_zone: str | None, emit: Emit,
) -> None:  # fmt: skip
    integration_id = integration["integration_id"]
    if kind == "calendar":
        fields = transform.calendar_fields(event, integration["time_zone"] or default_zone)
        if fields is None:
            return
        wedding = str(event["payload"].get("wedding_id") or event["aggregate_id"])
        emit(
            Destination.CALENDAR,
            f"calendar:{integration_id}",
            supplier_id,
            integration_id,
            {
                "provider": calendar_provider(integration),
                "calendar_id": integration["calendar_id"] or "primary",
                "operation": "upsert",
                "external_event_id": transform.external_event_id(
                    wedding, supplier_id, integration_id
                ),
                **fields,
            },
        )
        return
    if not integration["endpoint_url"]:
        return
    if kind == "venue_booking":
        crm_kind, auth, payload = (
            "venue_booking",
            "api_key_header",
            transform.venue_booking_payload(event),
        )
    elif kind == "email_marketing":
        crm_kind, auth, payload = "custom", "bearer", transform.email_marketing_payload(event)
    else:
        crm_kind = _CRM_KIND.get(integration["integration_type"], "photography_crm")
        auth, payload = "bearer", transform.photography_crm_payload(event)
    if integration["auth_scheme"] in _AUTH:
        auth = str(integration["auth_scheme"])
    emit(
        Destination.CRM,
        f"crm:{integration_id}",
        supplier_id,
        integration_id,
        {
            "crm_kind": crm_kind,
            "endpoint_url": integration["endpoint_url"],
            "auth_scheme": auth,
            "payload": payload,
        },
    )


def _couple(event: DomainEvent, state: StateTables, cache: dict[str, Any], emit: Emit) -> None:
    """In-app notices to the couple(s); a double booking tells each couple only that their
    vendor (by business name) has a conflict at their own booking's time."""
    payload = event["payload"]
    clients = payload.get("client_ids")
    ids = list(clients) if isinstance(clients, list) else []
    if isinstance(payload.get("client_id"), str):
        ids.insert(0, str(payload["client_id"]))
    vendor = state.suppliers.get(str(payload.get("supplier_id")))
    for client in dict.fromkeys(ids):
        if event["event_type"] == "booking.conflict_detected":
            title, body, link, data = transform.couple_conflict_content(
                event, client, None if vendor is None else vendor["name"]
            )
        else:
            if "inapp" not in cache:
                cache["inapp"] = transform.inapp_content(event)
            title, body, link, data = cache["inapp"]
        emit(
            Destination.INAPP,
            f"inapp:{client}",
            client,
            None,
            {
                "user_id": client,
                "notification_type": event["event_type"],
                "title": title,
                "body": body,
                "link": link,
                "data": data,
            },
        )


def _webhooks(event: DomainEvent, state: StateTables, emit: Emit) -> None:
    payload = event["payload"]
    name = f"{payload.get('table')}.{payload.get('op')}"
    owners: list[str] = []
    if isinstance(payload.get("supplier_id"), str):
        owners.append(str(payload["supplier_id"]))
    for wedding in _weddings(payload, state):
        links = state.wedding_vendors.get(wedding)
        if links:
            owners.extend(links[k]["supplier_id"] for k in sorted(links))
    body: str | None = None
    for owner in dict.fromkeys(owners):
        endpoints = state.webhook_endpoints.get(owner)
        if not endpoints:
            continue
        for endpoint_id in sorted(endpoints):
            endpoint = endpoints[endpoint_id]
            if not endpoint["is_active"] or name not in endpoint["subscribed_events"]:
                continue
            if body is None:
                body = transform.webhook_body(event, name)
            emit(
                Destination.WEBHOOK,
                f"webhook:{endpoint_id}",
                owner,
                endpoint_id,  # the endpoint row holds the secret: it is the integration
                {
                    "endpoint_id": endpoint_id,
                    "endpoint_url": endpoint["endpoint_url"],
                    "event_name": name,
                    "body_json": body,
                },
            )
