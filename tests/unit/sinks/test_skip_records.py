"""A skipped delivery says why: its result names the delivery that superseded it
(connectors.sinks.envelope), the result encodes with the schema, and `wedsync deliveries show`
prints it (connectors.sinks.show)."""

from __future__ import annotations

from typing import Any

from connectors.sinks import envelope
from connectors.sinks.show import attempt_line
from streams.kafka.codec import TopicCodecs
from streams.topics import DELIVER, DELIVERY_RESULTS, Destination


def item() -> envelope.Item:
    record = {"delivery_id": "older", "event_id": "evt-1", "event_type": "wedding.date_changed",
              "aggregate_id": "wedding-1", "aggregate_version": 100, "source_ts_ms": 1_000,
              "routed_at_ms": 1_100, "integration_id": None}  # fmt: skip
    return envelope.Item.read(DELIVER[Destination.EMAIL].deliver.name, 0, 7, b"k", b"", [], record)


def stale(superseded_by: str | None = "newer") -> dict[str, Any]:
    return envelope.result(
        item(), destination=Destination.EMAIL, target="email:s1", outcome="skipped_stale",
        now_ms=2_000, superseded_by=superseded_by,
    )  # fmt: skip


def test_a_stale_result_names_the_delivery_that_superseded_it() -> None:
    assert stale()["superseded_by"] == "newer"


def test_a_result_without_a_superseding_delivery_names_none() -> None:
    done = envelope.result(item(), destination=Destination.EMAIL, target="email:s1",
                           outcome="delivered", now_ms=2_000)  # fmt: skip
    assert done["superseded_by"] is None


def test_the_superseding_delivery_survives_the_ledger_codec(codecs: TopicCodecs) -> None:
    codec = codecs[DELIVERY_RESULTS]
    assert codec.decode(codec.encode(stale()))["superseded_by"] == "newer"


def test_deliveries_show_prints_the_superseding_delivery_of_a_skip() -> None:
    assert "superseded by delivery newer" in attempt_line(stale())


def test_deliveries_show_reads_results_written_before_skips_named_their_cause() -> None:
    old = {k: v for k, v in stale().items() if k != "superseded_by"}
    assert "superseded" not in attempt_line(old)
