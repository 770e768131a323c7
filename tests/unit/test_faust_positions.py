"""What the Faust worker may hand out and commit (`streams.kafka.faust_positions`)."""

from __future__ import annotations

from streams.kafka.faust_positions import (
    HoleWatch,
    ReadPositions,
    Skipped,
    commit_offset,
    counts_as_processed,
)
from streams.topics import INGEST_CDC

TP = (INGEST_CDC.name, 0)


def test_a_record_fetched_before_a_seek_is_stale() -> None:
    positions = ReadPositions()
    positions.stamp()  # a batch fetched at position epoch 0
    positions.moved(TP, 25)  # then recovery seeks the partition back to its committed offset
    assert positions.stale(TP)


def test_records_fetched_after_the_seek_are_fresh() -> None:
    positions = ReadPositions()
    positions.moved(TP, 25)
    positions.stamp()
    assert not positions.stale(TP)


def test_a_seek_of_another_partition_leaves_the_batch_fresh() -> None:
    positions = ReadPositions()
    positions.stamp()
    positions.moved((INGEST_CDC.name, 1), 3)
    assert not positions.stale(TP)


def test_the_first_record_at_the_offset_sought_is_no_gap() -> None:
    positions = ReadPositions()
    positions.moved(TP, 25)
    positions.stamp()
    assert positions.accept(TP, 25) is None
    assert positions.accept(TP, 26) is None


def test_offsets_the_broker_skipped_after_the_seek_are_a_gap() -> None:
    positions = ReadPositions()
    positions.moved(TP, 25)  # 25 and 26 are transaction markers, say
    positions.stamp()
    assert positions.accept(TP, 27) == Skipped(range(25, 27), by_broker=True)


def test_a_jump_within_one_continuous_read_is_records_dropped_not_a_gap() -> None:
    positions = ReadPositions()
    positions.moved(TP, 10)
    positions.stamp()
    positions.accept(TP, 10)
    positions.stamp()  # the next batch, no seek between: 11 and 12 were dropped by Faust
    assert positions.accept(TP, 13) == Skipped(range(11, 13), by_broker=False)


def test_reading_again_after_a_seek_back_is_no_gap() -> None:
    positions = ReadPositions()
    positions.moved(TP, 10)
    positions.stamp()
    for offset in range(10, 20):
        positions.accept(TP, offset)
    positions.moved(TP, 10)  # seek back to the committed offset
    positions.stamp()
    assert positions.accept(TP, 10) is None


def test_without_a_known_position_the_first_record_is_no_gap() -> None:
    positions = ReadPositions()
    positions.stamp()
    assert positions.accept(TP, 500) is None


def test_commit_passes_processed_records_that_follow_the_committed_offset() -> None:
    assert commit_offset([25, 26, 27], committed=25) == (28, 3)


def test_commit_stops_at_the_first_hole() -> None:
    assert commit_offset([25, 26, 29, 30], committed=25) == (27, 2)


def test_an_unprocessed_record_at_the_committed_offset_holds_the_commit() -> None:
    # Faust's own check (`min(acked) - committed > 1`) committed 28 here, losing 25
    assert commit_offset([26, 27], committed=25) == (None, 0)


def test_without_a_committed_offset_the_first_run_commits() -> None:
    assert commit_offset([0, 1, 2], committed=None) == (3, 3)


def test_nothing_acked_commits_nothing() -> None:
    assert commit_offset([], committed=4) == (None, 0)


def test_a_hole_at_the_committed_offset_is_stuck_after_the_patience() -> None:
    watch = HoleWatch(patience_s=5)
    assert not watch.stuck(TP, committed=25, head=26, now=100.0)
    assert not watch.stuck(TP, committed=25, head=27, now=104.0)
    assert watch.stuck(TP, committed=25, head=27, now=105.0)


def test_a_stuck_partition_is_reported_once_per_patience() -> None:
    watch = HoleWatch(patience_s=5)
    watch.stuck(TP, committed=25, head=26, now=100.0)
    assert watch.stuck(TP, committed=25, head=26, now=105.0)
    assert not watch.stuck(TP, committed=25, head=26, now=106.0)


def test_a_commit_that_moves_restarts_the_patience() -> None:
    watch = HoleWatch(patience_s=5)
    watch.stuck(TP, committed=25, head=27, now=100.0)
    assert not watch.stuck(TP, committed=26, head=27, now=105.0)


def test_processed_records_at_the_committed_offset_are_no_hole() -> None:
    watch = HoleWatch(patience_s=5)
    watch.stuck(TP, committed=25, head=25, now=100.0)
    assert not watch.stuck(TP, committed=25, head=25, now=200.0)


def test_an_ack_of_a_message_from_an_earlier_generation_is_not_processing() -> None:
    assert not counts_as_processed(message_generation=3, current_generation=4, flowing=True)


def test_an_ack_while_the_flow_is_stopped_for_a_rebalance_is_not_processing() -> None:
    assert not counts_as_processed(message_generation=4, current_generation=4, flowing=False)


def test_an_ack_in_the_current_generation_while_flowing_is_processing() -> None:
    assert counts_as_processed(message_generation=4, current_generation=4, flowing=True)
