"""Vendor CRM booking webhooks -> booking.changed: what the conflicts agent needs to know."""

from __future__ import annotations

from streams.dev.samples import inbound_webhook as webhook
from streams.logic.normalize import normalize_webhook

from tests.unit.logic.test_inbound import REF


def test_a_booking_moved_between_vendors_carries_the_previous_vendor() -> None:
    body = {
        "event": "booking.updated",
        "data": {"id": "b-1", "vendor_id": "s-dj", "previous_vendor_id": "s-photo"},
    }
    payload = normalize_webhook(webhook(body), REF)[0]["payload"]
    assert (payload["supplier_id"], payload["previous_supplier_id"]) == ("s-dj", "s-photo")
