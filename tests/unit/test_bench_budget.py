"""bench/budget.py's tail line: when the slowest deliveries of a phase were committed."""

from __future__ import annotations

from bench.budget import Hop, tail_spread


def hop(commit_ms: int, total_ms: int) -> Hop:
    answer = commit_ms + total_ms
    return Hop("crm", commit_ms, commit_ms, commit_ms, commit_ms, commit_ms, commit_ms,
               answer, answer)  # fmt: skip


def test_a_stall_puts_the_slow_deliveries_in_one_window() -> None:
    hops = [hop(n * 10, 20) for n in range(1000)]  # 10 s, every 10 ms, 20 ms each
    hops[500:505] = [hop(5000 + n * 10, 400) for n in range(5)]  # a stall at 5.0 s
    line = tail_spread(hops, 20.0)
    assert "(5, above the p99): committed in 1 of" in line
    assert "at 5.0 s" in line


def test_spread_slow_deliveries_are_counted_per_window() -> None:
    hops = [hop(n * 10, 300 if n % 100 == 0 else 20) for n in range(1000)]
    assert "(10, above the p99): committed in 10 of" in tail_spread(hops, 20.0)


def test_the_slow_deliveries_name_their_longest_hop() -> None:
    hops = [hop(n * 10, 20) for n in range(100)]
    hops[50] = Hop("crm", 500, 501, 502, 503, 900, 901, 905, 906)  # waited for its pickup
    assert tail_spread(hops, 20.0).endswith("their longest hop: sink's pickup 1")
