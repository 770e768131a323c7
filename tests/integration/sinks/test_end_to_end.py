"""A row change in PostgreSQL arrives at the SMTP server, the Slack fake, the CRM fake,
Radicale and the customer's webhook receiver, with the expected content.

The whole pipeline runs on a broker of its own: the platform schema, the CDC source, the
worker (normalize, state, routing), and one sink runtime per destination, reading
credentials from the platform database. The wedding week of `streams.dev.scenario` is played
with its integrations pointed at the local servers.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import caldav
import psycopg2
import pytest
from connectors.sinks.credentials import PostgresCredentialStore
from streams.dev.demo import worker_process
from streams.dev.local import CALDAV_PASSWORD, CALDAV_USER, LocalProviders
from streams.dev.scenario import SECRETS, ids, play, seed
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings
from streams.topics import DELIVER, Destination

from tests.integration.cdc_support import PlatformDb
from tests.integration.sinks.support import (
    RunningSink,
    make_runtime,
    own_broker,
    read_all,
    results,
    wait_until,
)

pytestmark = pytest.mark.integration

KINDS = (Destination.EMAIL, Destination.SLACK, Destination.CRM, Destination.CALENDAR,
         Destination.WEBHOOK)  # fmt: skip


@pytest.fixture(scope="module")
def week(postgres: Any, codecs: TopicCodecs) -> Iterator[dict[str, Any]]:
    """The played wedding week once every routed delivery has an outcome."""
    from tests.integration.cdc_support import create_platform_db, drop_platform_db

    platform: PlatformDb = create_platform_db(postgres)
    with own_broker() as bootstrap, LocalProviders() as local:
        k = ids()
        conn = psycopg2.connect(platform.dsn)
        conn.autocommit = True
        seed(conn.cursor(), k, local.endpoints())
        cdc = platform.start_cdc(bootstrap, codecs)
        store = PostgresCredentialStore(platform.dsn)
        sinks = [
            RunningSink(make_runtime(local.connector(kind), bootstrap, codecs, store))
            for kind in KINDS
        ]
        settings = Settings(kafka_bootstrap_servers=bootstrap, app_id=f"e2e-{uuid.uuid4().hex[:8]}")
        try:
            with worker_process(bootstrap, settings):
                play(conn.cursor(), k)
                routed = wait_until(lambda: _routed(bootstrap, codecs), timeout=120)
                try:
                    wait_until(lambda: _all_settled(bootstrap, codecs, routed), timeout=90)
                except AssertionError:
                    raise AssertionError(_unsettled(bootstrap, codecs, routed)) from None
        finally:
            for sink in sinks:
                sink.stop()
            cdc.stop()
            conn.close()
            store.close()
        yield {"k": k, "local": local, "results": results(bootstrap, codecs), "routed": routed,
               "bootstrap": bootstrap}  # fmt: skip
    drop_platform_db(platform)


# what the played week routes to the sinks (streams.dev.scenario.expected, counted by hand):
# emails to Photo x4, Venue x2, Florist x2; Photo's Slack x4; Photo's CRM x2, its marketing
# trigger, the venue booking system; Photo's calendar; two record.changed webhooks
ROUTED = {"email": 8, "slack": 4, "crm": 4, "calendar": 1, "webhook": 2}


def _routed(bootstrap: str, codecs: TopicCodecs) -> dict[str, str] | None:
    """delivery id -> destination, once every delivery the week means is on its topic."""
    out: dict[str, str] = {}
    for kind in KINDS:
        codec = codecs[DELIVER[kind].deliver]
        for msg in read_all(bootstrap, DELIVER[kind].deliver):
            out[codec.decode(msg.value())["delivery_id"]] = kind.value
    return out if Counter(out.values()) == Counter(ROUTED) else None


def _all_settled(bootstrap: str, codecs: TopicCodecs, routed: dict[str, str]) -> bool:
    done = {r["delivery_id"] for r in results(bootstrap, codecs) if r["outcome"] == "delivered"}
    return set(routed) <= done


def _unsettled(bootstrap: str, codecs: TopicCodecs, routed: dict[str, str]) -> str:
    seen = results(bootstrap, codecs)
    done = {r["delivery_id"] for r in seen if r["outcome"] == "delivered"}
    lines = [f"{len(set(routed) - done)} of {len(routed)} deliveries not delivered:"]
    for delivery_id in sorted(set(routed) - done):
        story = [f"{r['outcome']}/{r['error_class']}/{r['error_message']}"
                 for r in seen if r["delivery_id"] == delivery_id]  # fmt: skip
        lines.append(f"  {routed[delivery_id]} {delivery_id}: {story}")
    return "\n".join(lines)


def test_every_routed_delivery_was_delivered_once(week: dict[str, Any]) -> None:
    delivered = Counter(r["delivery_id"] for r in week["results"] if r["outcome"] == "delivered")
    assert set(delivered) == set(week["routed"])
    assert set(delivered.values()) == {1}


def test_the_emails_reach_the_smtp_server_with_the_new_date(week: dict[str, Any]) -> None:
    local, routed = week["local"], week["routed"]
    messages = local.servers["smtp"].messages
    assert len(messages) == sum(1 for d in routed.values() if d == "email")
    moved = [m for m in messages if "florist@" in str(m.message["To"])
             and "wedding moved to" in str(m.message["Subject"])]  # fmt: skip
    assert len(moved) == 1, [str(m.message["Subject"]) for m in messages]
    body = moved[0].message.get_body(("plain",)).get_content()
    assert "to Saturday 19 June 2027" in body


def test_slack_gets_block_kit_messages_in_the_supplier_channel(week: dict[str, Any]) -> None:
    local = week["local"]
    posted = local.fake("slack").stats()["posted"]
    assert set(posted) == {"C-PHOTO"}
    assert len(posted["C-PHOTO"]) == sum(1 for d in week["routed"].values() if d == "slack")


def test_the_crms_get_their_payloads_with_their_auth(week: dict[str, Any]) -> None:
    received = week["local"].fake("crm").stats()["received"]
    photo = [r["body"] for r in received if r["route"] == "photography"]
    moved = [b for b in photo if b.get("wedding_date") == "2027-06-19"]
    assert len(moved) == 1 and moved[0]["client_name"] == "Alex & Sam"
    venue = [r["body"] for r in received if r["route"] == "venue"]
    assert [b["event_date"] for b in venue] == ["2027-06-19"]
    assert not any(secret in str(received) for secret in SECRETS)


def test_radicale_holds_the_moved_wedding(week: dict[str, Any]) -> None:
    local = week["local"]
    client = caldav.DAVClient(url=local.calendar_url, username=CALDAV_USER,
                              password=CALDAV_PASSWORD)  # fmt: skip
    events = caldav.Calendar(client=client, url=local.calendar_url).events()
    assert len(events) == 1
    start = events[0].icalendar_component["DTSTART"].dt
    assert str(start)[:10] == "2027-06-19"


def test_the_customer_webhook_receiver_verifies_every_signature(week: dict[str, Any]) -> None:
    receiver = week["local"].fake("webhook")
    assert receiver.counters["bad_signature"] == 0
    assert receiver.counters["side_effects"] == sum(
        1 for d in week["routed"].values() if d == "webhook"
    )


def test_deliveries_show_tells_the_chain_from_the_commit_to_each_answer(
    week: dict[str, Any], codecs: TopicCodecs
) -> None:
    from connectors.sinks.show import chain

    moved = next(r for r in week["results"] if r["event_type"] == "wedding.date_changed")
    lines = chain(week["bootstrap"], codecs, moved["event_id"])
    assert lines[0].startswith(f"event {moved['event_id']} wedding.date_changed")
    assert "table=wedding_details" in lines[1] and "commit_lsn=None" not in lines[1]
    attempts = [line for line in lines if "attempt 0 delivered" in line]
    expected = [r for r in week["results"] if r["event_id"] == moved["event_id"]]
    assert len(attempts) == len(expected)
    assert any(f"provider_id={r['provider_id']}" in "\n".join(lines)
               for r in expected if r["provider_id"])  # fmt: skip
