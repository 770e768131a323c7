"""Agent: booking.changed, regrouped by supplier -> double-booking detection.

    wedsync.events (booking.changed)
        --route engine re-keys by payload supplier_id--> `<app id>-bookings-by-supplier`
        --conflicts--> Table bookings (supplier id -> {booking id -> interval})
        --booking.conflict_detected--> wedsync.events  (routed like any event: to the vendor
                                                        and the couple)
        --booking.updated--> wedsync.events  (the vendor's notice: new, moved from -> to,
                                              cancelled; `booking_notice`)

The routing engine forwards each booking.changed event it reads to the internal
bookings-by-supplier topic, once under each supplier id `streams.logic.conflicts.booking_keys`
names (the booking's vendor and, when it moved, its previous one), which is this agent's
regrouping: every booking of one vendor lands on one partition, so the `bookings` table,
co-partitioned with that topic, holds a vendor's whole calendar on one worker and recovers
from its changelog after a restart. The record's key says whose bookings to update; the
decision is `streams.logic.conflicts.apply_booking`.
Conflict events go back to wedsync.events, so routing stays in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust

from streams import metrics, topics
from streams.agents.common import dead_letter
from streams.logic.conflicts import VendorBookings, apply_booking, booking_keys, booking_notice
from streams.models import DomainEvent

if TYPE_CHECKING:
    from streams.agents.app import Context

STAGE = "conflicts"


def register(app: faust.App, context: Context) -> dict[str, Any]:
    source = app.topic(
        topics.app_topics(app.conf.id).bookings_by_supplier.name,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
        partitions=topics.EVENTS.partitions,
    )
    output = context.output
    bookings = app.Table(
        topics.BOOKINGS_TABLE,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        partitions=topics.EVENTS.partitions,
        help="supplier id -> {booking id -> booked interval}",
    )
    codec = context.codecs[topics.EVENTS]

    @app.agent(source, name=STAGE)
    async def conflicts(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            metrics.RECORDS_IN.labels(STAGE).inc()
            try:
                booking: DomainEvent = codec.decode(event.message.value)  # type: ignore[assignment]
                supplier = (event.message.key or b"").decode()
                if supplier not in booking_keys(booking):
                    continue  # not a vendor this booking names: nothing it could double-book
                stored: VendorBookings | None = bookings.get(supplier)
                before = (stored or {}).get(str(booking["payload"].get("booking_id")))
                notice = booking_notice(before, booking, supplier_id=supplier)
                updated, found = apply_booking(stored, booking, supplier_id=supplier)
                found += [notice] if notice is not None else []
            except Exception as exc:  # a bad record is data: dead-letter it
                dead_letter(output, topics.EVENTS_DLQ.name, STAGE, event.message, exc)
                continue
            if updated:
                bookings[supplier] = updated
            elif supplier in bookings:
                del bookings[supplier]  # nothing left to come: keep the table bounded
            for conflict in found:
                key = conflict["aggregate_id"].encode()
                output.send(topics.EVENTS.name, key, codec.encode(conflict))
            metrics.RECORDS_OUT.labels(STAGE).inc(len(found))

    return {"agent": conflicts, "source": source, "bookings": bookings}
