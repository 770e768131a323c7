"""A wedding week on the platform's schema, as SQL: four vendors of one wedding (and a fifth
linked later) with their preferences, integrations and a customer webhook endpoint, then the
four workflows of DOMAIN.md. `make run` plays it; the integration tests assert on it.

`expected(k)` is what the rules (streams/routing.toml) and the seeded preferences imply:
(event type, destination, recipient id) for every delivery. It is written out by hand from
the rules, not computed by the routing code, so it can catch the routing code being wrong.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

PEOPLE = ("photo", "venue", "florist", "band", "cake", "wedding", "couple", "journey")
VENDORS = ("photo", "venue", "florist", "band", "cake")

SECRETS = ("whsec_photo_endpoint_secret", "sk_live_photo_crm", "venue-api-secret", "mc-key-9")


@dataclass(frozen=True)
class Endpoints:
    """Where the seeded integrations point. The defaults are documentation addresses (routing
    tests never call them); `make run` and the delivery tests point them at local servers."""

    photo_crm: str = "https://crm.example/hook"
    venue_booking: str = "https://venue.example/bookings"
    marketing: str = "https://mc.example/trigger"
    webhook: str = "https://hooks.example/photo"
    webhook_secret: str = SECRETS[0]
    calendar_type: str = "google_calendar"
    calendar_url: str | None = None  # a CalDAV collection when calendar_type is caldav
    calendar_settings: dict[str, Any] = field(
        default_factory=lambda: {"calendar_id": "photo@group.example"}
    )
    calendar_secret: str | None = None


def ids(*names: str) -> dict[str, str]:
    """Fresh uuids for the scenario's rows (default: every one it needs)."""
    return {name: str(uuid.uuid4()) for name in names or PEOPLE}


def seed(cur: Any, k: dict[str, str], at: Endpoints | None = None) -> None:
    """Four vendors of one wedding, with preferences, integrations and an endpoint."""
    at = at or Endpoints()

    def supplier(sid: str, name: str, prefs: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO suppliers (id, business_name, email, notification_preferences) "
            "VALUES (%s, %s, %s, %s)",
            (sid, name, f"{name.lower()}@vendors.example", json.dumps(prefs)),
        )

    supplier(k["photo"], "Photo", {"realtime_channels": ["email", "slack", "in-app"],
                                   "slack_channel": "C-PHOTO"})  # fmt: skip
    supplier(k["venue"], "Venue", {"realtime_channels": ["email", "in-app", "sms"],
                                   "phone": "+447700900222"})  # fmt: skip
    supplier(k["florist"], "Florist", {})  # chose nothing: the rules' defaults
    supplier(k["band"], "Band", {"realtime_channels": []})  # chose no personal channel
    supplier(k["cake"], "Cake", {"realtime_channels": ["in_app"]})
    cur.execute(
        "INSERT INTO wedding_details (id, couple_id, wedding_date, bride_name, groom_name, "
        "ceremony_time, reception_time, setup_time, venue_id, venue_name, guest_count, "
        "special_requests, venue_notes) VALUES (%s, %s, '2027-06-12', 'Alex', 'Sam', "
        "'14:00', '18:30', '10:00', %s, 'Oak Barn', 120, 'step-free access', 'call Jo')",
        (k["wedding"], k["couple"], k["venue"]),
    )
    for vendor, kind in (("photo", "photographer"), ("venue", "venue"), ("florist", "florist"),
                         ("band", "band")):  # fmt: skip
        cur.execute(
            "INSERT INTO wedding_vendors (wedding_id, vendor_id, vendor_type) VALUES (%s, %s, %s)",
            (k["wedding"], k[vendor], kind),
        )
    cur.execute(
        "INSERT INTO supplier_integrations (supplier_id, integration_type, webhook_url, api_key, "
        "settings) VALUES (%s, 'photography_crm', %s, %s, '{}'), (%s, %s, %s, %s, %s)",
        (k["photo"], at.photo_crm, SECRETS[1], k["photo"], at.calendar_type, at.calendar_url,
         at.calendar_secret, json.dumps(at.calendar_settings)),
    )  # fmt: skip
    cur.execute(
        "INSERT INTO venue_integrations (venue_id, webhook_url, api_credentials) "
        "VALUES (%s, %s, %s)",
        (k["venue"], at.venue_booking, json.dumps({"api_key": SECRETS[2]})),
    )
    cur.execute(
        "INSERT INTO email_integrations (supplier_id, platform_type, api_key, webhook_url) "
        "VALUES (%s, 'mailchimp', %s, %s)",
        (k["photo"], SECRETS[3], at.marketing),
    )
    cur.execute(
        "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, subscribed_events)"
        " VALUES (%s, %s, %s, '{form_responses.insert,wedding_details.update}')",
        (k["photo"], at.webhook, at.webhook_secret),
    )
    cur.execute(
        "INSERT INTO core_fields (couple_id, partner1_name, partner2_name, phone) "
        "VALUES (%s, 'Alex', 'Sam', '+447700900999')",
        (k["couple"],),
    )
    cur.execute(
        "INSERT INTO journey_progress (id, supplier_id, couple_id, client_name, milestone_name, "
        "completion_percentage) VALUES (%s, %s, %s, 'Alex & Sam', 'contract signed', 40)",
        (k["journey"], k["photo"], k["couple"]),
    )


def play(cur: Any, k: dict[str, str]) -> None:
    """The four workflows, the wedding move in the transaction that links a new vendor."""
    cur.execute(
        "INSERT INTO form_responses (supplier_id, couple_id, client_name, form_name, "
        "question_count) VALUES (%s, %s, 'Alex & Sam', 'Wedding day', 12)",
        (k["photo"], k["couple"]),
    )
    cur.execute(
        "UPDATE journey_progress SET completion_percentage = 60 WHERE id = %s", (k["journey"],)
    )
    cur.execute("BEGIN")
    cur.execute(
        "INSERT INTO wedding_vendors (wedding_id, vendor_id, vendor_type) VALUES (%s, %s, 'cake')",
        (k["wedding"], k["cake"]),
    )
    cur.execute("UPDATE wedding_details SET wedding_date = '2027-06-19' WHERE id = %s",
                (k["wedding"],))  # fmt: skip
    cur.execute("COMMIT")
    cur.execute("UPDATE core_fields SET phone = '+447700900000' WHERE couple_id = %s",
                (k["couple"],))  # fmt: skip


INTEGRATIONS_SQL = """
SELECT i.id::text, s.business_name, i.integration_type FROM supplier_integrations i
  JOIN suppliers s ON s.id = i.supplier_id
UNION ALL SELECT v.id::text, s.business_name, 'venue_booking' FROM venue_integrations v
  JOIN suppliers s ON s.id = v.venue_id
UNION ALL SELECT e.id::text, s.business_name, e.platform_type FROM email_integrations e
  JOIN suppliers s ON s.id = e.supplier_id
UNION ALL SELECT w.id::text, s.business_name, 'webhook' FROM webhook_endpoints w
  JOIN suppliers s ON s.id = w.supplier_id
"""


def integrations(cur: Any) -> list[tuple[str, str, str]]:
    """(integration id, vendor's business name, kind) of every seeded integration and
    webhook endpoint: how the board names what the SLA agent reports by id."""
    cur.execute(INTEGRATIONS_SQL)
    return [(str(i), str(name), str(kind)) for i, name, kind in cur.fetchall()]


EM, SL, IA, SM, CRM, CAL, HOOK = "email", "slack", "inapp", "sms", "crm", "calendar", "webhook"


def expected(k: dict[str, str]) -> set[tuple[str, str, str]]:
    """(event type, destination, recipient) the rules (streams/routing.toml) and the seeded
    preferences imply."""
    want = {("form.response_received", d, k["photo"]) for d in (EM, SL, IA, CRM)} | {
        ("journey.milestone_completed", d, k["photo"]) for d in (EM, SL, IA, CRM)
    }
    moved = "wedding.date_changed"
    want |= {(moved, d, k["photo"]) for d in (EM, SL, IA, CRM, CAL)}
    want |= {(moved, d, k["venue"]) for d in (EM, IA, SM, CRM)}
    want |= {(moved, d, k["florist"]) for d in (EM, IA)}  # defaults; no Slack channel, no phone
    want |= {(moved, IA, k["cake"])}  # linked in the same transaction as the move
    profile = "client.profile_updated"
    want |= {(profile, d, k["photo"]) for d in (EM, SL, IA)}
    want |= {(profile, d, k["venue"]) for d in (EM, IA)}
    want |= {(profile, d, k["florist"]) for d in (EM, IA)}
    want |= {(profile, IA, k["cake"])}
    want |= {("record.changed", HOOK, k["photo"])}  # form_responses.insert, wedding_details.update
    return want
