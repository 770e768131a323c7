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

The same agent reads `wedsync.calendar.busy` (the calendar feed's busy intervals of vendors'
own calendars, keyed by supplier id with the same partitioner and partition count, so a
vendor's intervals land on the partition that holds their bookings) and folds each into the
same table with `streams.logic.calendar.detect.apply_busy`: a private event over a booking
is a conflict, one that moves away resolves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust

from streams import metrics, topics
from streams.agents.common import dead_letter
from streams.logic.calendar.busy import BusyRecord
from streams.logic.calendar.detect import apply_busy
from streams.logic.conflicts import VendorBookings, apply_booking, booking_keys, booking_notice
from streams.models import DomainEvent

if TYPE_CHECKING:
    from streams.agents.app import Context

STAGE = "conflicts"


def register(app: faust.App, context: Context) -> dict[str, Any]:
    regrouped = topics.app_topics(app.conf.id).bookings_by_supplier.name
    source = app.topic(
        regrouped,
        topics.CALENDAR_BUSY.name,
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
    busy_codec = context.codecs[topics.CALENDAR_BUSY]

    @app.agent(source, name=STAGE)
    async def conflicts(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            metrics.RECORDS_IN.labels(STAGE).inc()
            try:
                supplier = (event.message.key or b"").decode()
                stored: VendorBookings | None = bookings.get(supplier)
                if event.message.topic == topics.CALENDAR_BUSY.name:
                    interval: BusyRecord = busy_codec.decode(event.message.value)  # type: ignore[assignment]
                    if interval["supplier_id"] != supplier:
                        continue  # keyed for another vendor: not this vendor's time
                    updated, found = apply_busy(stored, interval, supplier_id=supplier)
                else:
                    booking: DomainEvent = codec.decode(event.message.value)  # type: ignore[assignment]
                    if supplier not in booking_keys(booking):
                        continue  # not a vendor this booking names: nothing it could double-book
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
