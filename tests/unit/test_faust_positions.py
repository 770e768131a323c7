"""What the Faust worker may hand out and commit (`streams.kafka.faust_positions`)."""

from __future__ import annotations

from streams.kafka.faust_positions import ReadPositions, commit_offset
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
    assert positions.accept(TP, 27) == range(25, 27)


def test_a_jump_within_one_continuous_read_is_a_gap() -> None:
    positions = ReadPositions()
    positions.moved(TP, 10)
    positions.stamp()
    positions.accept(TP, 10)
    positions.stamp()  # the next batch, no seek between
    assert positions.accept(TP, 13) == range(11, 13)


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
