"""When `make run` gives up waiting, it says what was not routed and how far the records got
(CDC changes per table, domain events per type), read from the real records' bytes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streams import topics
from streams.dev.demo_view import Watch
from streams.dev.samples import demo_changes
from streams.kafka.codec import TopicCodecs
from streams.kafka.registry import EmbeddedRegistry
from streams.kafka.schema_store import SchemaStore
from streams.logic.normalize import normalize_change
from streams.models import SourceRef
from streams.settings import REPO_ROOT

PHOTO = "9b2f6a4e-0c1d-4e8a-9f1b-2a3c4d5e6f70"
REF = SourceRef(kind="cdc", topic=topics.INGEST_CDC.name, partition=0, offset=0, lsn=None,
                commit_lsn=None, state_lsn=None, delivery_id=None, table=None)  # fmt: skip


@pytest.fixture
def codecs() -> TopicCodecs:
    store = SchemaStore(REPO_ROOT / "schemas")
    return TopicCodecs(store, EmbeddedRegistry(store))


@pytest.fixture
def watch(codecs: TopicCodecs) -> Iterator[Watch]:
    watching = Watch("127.0.0.1:9", codecs, {PHOTO: "Photo"}, lambda user, name: None)
    try:
        yield watching
    finally:
        watching.close()


def test_the_form_response_read_but_not_routed_is_named_with_how_far_it_got(
    watch: Watch, codecs: TopicCodecs
) -> None:
    change = demo_changes()[0]  # the form response the demo's act opens with
    watch._what("CDC changes", topics.INGEST_CDC.name, codecs[topics.INGEST_CDC].encode(change))
    for event in normalize_change(change, REF):
        watch._what("domain events", topics.EVENTS.name, codecs[topics.EVENTS].encode(event))
    said = watch.missing({("form.response_received", "email", PHOTO)})
    assert "not routed: form.response_received email Photo;" in said
    assert "CDC changes read: form_responses 1" in said
    assert "form.response_received 1" in said.split("domain events read: ")[1]


def test_bytes_that_are_no_record_are_not_counted_and_do_not_stop_the_watch(
    watch: Watch,
) -> None:
    watch._what("CDC changes", topics.INGEST_CDC.name, b"\x00junk")
    assert watch.missing(set()) == (
        "not routed: none; routed but not delivered: 0; CDC changes read: ; domain events read: "
    )
