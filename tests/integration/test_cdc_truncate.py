"""TRUNCATE: a state table's truncate removes its rows from the routing state (a delete for
every row key the state holds, in commit order, also after a restart of the source); an
event table's truncate is counted and logged; a publication that does not publish truncate
is refused, saying how to fix it."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from streams import metrics, topics
from streams.errors import ConfigurationError
from streams.kafka.codec import TopicCodecs
from streams.logic.state import RoutingState

from tests.integration.cdc_support import PlatformDb, read_topic
from tests.pg import wait_until

pytestmark = pytest.mark.integration


def new_endpoint(cur: Any, supplier: str) -> str:
    cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                "subscribed_events) VALUES (%s, 'https://h.example/in', 'whsec_k', "
                "'{form_responses.insert}') RETURNING id", (supplier,))  # fmt: skip
    return str(cur.fetchone()[0])


def new_supplier(cur: Any) -> str:
    cur.execute("INSERT INTO suppliers (business_name) VALUES ('Oak Barn') RETURNING id")
    return str(cur.fetchone()[0])


def state_after(kafka: str, codecs: TopicCodecs, until: str) -> tuple[RoutingState, list[Any]]:
    """The routing state folded from wedsync.ingest.state up to the row `until` (a key
    written last), and the changes of webhook_endpoints in topic order."""
    decode = codecs[topics.INGEST_STATE].decode
    seen: list[Message] = []

    def upto(m: Message) -> bool:
        seen.append(m)
        return m.key() == until.encode()

    read_topic(kafka, topics.INGEST_STATE, upto)
    state, changes = RoutingState(), []
    for m in seen:
        change = decode(m.value())
        state.apply_change(change)
        if change["source"]["table"] == "webhook_endpoints":
            changes.append((m.key().decode(), change["op"]))
    return state, changes


def test_a_truncate_of_a_state_table_removes_every_row_it_held_from_the_state(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        before = [new_endpoint(cur, supplier) for _ in range(2)]  # read by the snapshot
        platform.start_cdc(kafka_bootstrap, codecs)
        after = new_endpoint(cur, supplier)  # streamed
        cur.execute("TRUNCATE webhook_endpoints")
        marker = new_supplier(cur)
    state, _ = state_after(kafka_bootstrap, codecs, f"suppliers:{marker}")
    assert [e for e in [*before, after] if f"webhook_endpoints:{e}" in state.rows] == []
    assert supplier not in state.tables.webhook_endpoints


def test_a_truncate_is_in_commit_order_with_the_changes_around_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        cur.execute("BEGIN")
        gone = new_endpoint(cur, supplier)
        cur.execute("TRUNCATE webhook_endpoints")
        kept = new_endpoint(cur, supplier)
        cur.execute("COMMIT")
        marker = new_supplier(cur)
    state, changes = state_after(kafka_bootstrap, codecs, f"suppliers:{marker}")
    ours = {f"webhook_endpoints:{gone}", f"webhook_endpoints:{kept}"}
    assert [c for c in changes if c[0] in ours] == [
        (f"webhook_endpoints:{gone}", "c"), (f"webhook_endpoints:{gone}", "d"),
        (f"webhook_endpoints:{kept}", "c"),
    ]  # fmt: skip
    assert list(state.tables.webhook_endpoints[supplier]) == [kept]


def test_a_truncate_after_a_restart_removes_the_rows_the_source_wrote_before_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    config = platform.cdc_config()
    first = platform.start_cdc(kafka_bootstrap, codecs, config)
    with platform.connect() as conn, conn.cursor() as cur:
        supplier = new_supplier(cur)
        endpoint = new_endpoint(cur, supplier)
        read_topic(kafka_bootstrap, topics.INGEST_STATE,
                   lambda m: m.key() == f"webhook_endpoints:{endpoint}".encode())  # fmt: skip
        first.stop()
        cur.execute("TRUNCATE webhook_endpoints")  # while the source is down
        platform.start_cdc(kafka_bootstrap, codecs, config)  # the same slot, a new process
        marker = new_supplier(cur)
    state, changes = state_after(kafka_bootstrap, codecs, f"suppliers:{marker}")
    assert (f"webhook_endpoints:{endpoint}", "d") in changes
    assert supplier not in state.tables.webhook_endpoints


def test_a_truncate_of_an_event_table_is_counted(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    counted = metrics.CDC_TRUNCATES_SKIPPED._value.get()
    platform.start_cdc(kafka_bootstrap, codecs)
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE form_responses")
    assert wait_until(lambda: metrics.CDC_TRUNCATES_SKIPPED._value.get() == counted + 1, 20)


def test_a_publication_that_does_not_publish_truncate_is_refused_saying_how_to_fix_it(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    config = platform.cdc_config()
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE PUBLICATION {config.publication} FOR ALL TABLES "
                    "WITH (publish = 'insert, update, delete')")  # fmt: skip
    with pytest.raises(ConfigurationError, match=f"ALTER PUBLICATION {config.publication}"):
        platform.start_cdc(kafka_bootstrap, codecs, config)


def test_a_state_topic_whose_records_expire_is_refused_saying_the_command(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def policy(value: str) -> None:
        resource = ConfigResource(ResourceType.TOPIC, topics.INGEST_STATE.name,
                                  set_config={"cleanup.policy": value})  # fmt: skip
        for future in admin.alter_configs([resource]).values():
            future.result(timeout=10)

    policy("delete")
    try:
        with pytest.raises(
            ConfigurationError, match=r"--add-config cleanup\.policy=compact,retention\.ms=-1"
        ):
            platform.start_cdc(kafka_bootstrap, codecs)
    finally:
        policy("compact")
