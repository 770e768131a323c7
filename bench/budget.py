"""The latency budget: where the time between a commit and the provider's answer goes, per
destination and per hop, read back from what the pipeline wrote to Kafka.

Each delivered result is joined to the records it came from: its delivery record on
`wedsync.deliver.<kind>` (by delivery id), the domain event on `wedsync.events` (by event
id), and the CDC record on `wedsync.ingest.cdc` (by the change's LSN, which the event
carries). The hops, each measured from the one before:

  commit -> CDC record      the CDC source read, decoded and produced the change
  -> domain event           the Faust normalizer read it and produced the event
  -> routed record          the routing process read the event and produced the delivery
  -> sink's pickup          Kafka and the sink's consumer handed it over (picked_up_at_ms)
  -> request sent           inside the sink: its turn, a rate-limit token, a slot
  -> provider's answer      the call itself (latency_ms)
  -> result acked           the ledger record reached Kafka

A record "reached Kafka" at its broker timestamp: `stamp_on_append` sets the topics to
LogAppendTime for the run where the engine takes it, else the producers' CreateTime is what
there is (the report says which). Clocks are this machine's one clock, so hops add up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

HOPS = (
    ("commit -> CDC record", "commit_ms", "cdc_ms"),
    ("-> domain event", "cdc_ms", "event_ms"),
    ("-> routed record", "event_ms", "routed_ms"),
    ("-> sink's pickup", "routed_ms", "picked_ms"),
    ("-> request sent", "picked_ms", "sent_ms"),
    ("-> provider's answer", "sent_ms", "answer_ms"),
    ("-> result acked", "answer_ms", "acked_ms"),
)
KINDS = ("email", "crm", "webhook")
TARGETS_MS = {"trickle": 50, "load": 100}  # the p99 targets, webhook and CRM
TARGETED = ("crm", "webhook")


@dataclass(frozen=True)
class Hop:
    """One delivery's timeline, milliseconds since the epoch."""

    destination: str
    commit_ms: int
    cdc_ms: int
    event_ms: int
    routed_ms: int
    picked_ms: int
    sent_ms: int
    answer_ms: int
    acked_ms: int

    @property
    def total_ms(self) -> int:
        return self.answer_ms - self.commit_ms


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def stamp_on_append(bootstrap: str) -> str:
    """Set the hop topics to LogAppendTime; says which timestamps the report reads."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
    from streams.topics import DELIVER, DELIVERY_RESULTS, EVENTS, INGEST_CDC, Destination

    names = [INGEST_CDC.name, EVENTS.name, DELIVERY_RESULTS.name]
    names += [DELIVER[Destination(kind)].deliver.name for kind in KINDS]
    entry = ConfigEntry(
        "message.timestamp.type", "LogAppendTime",
        incremental_operation=AlterConfigOpType.SET,
    )  # fmt: skip
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [ConfigResource("TOPIC", name, incremental_configs=[entry]) for name in names]
    try:
        for future in admin.incremental_alter_configs(resources).values():
            future.result(timeout=10)
    except Exception as exc:
        return f"the producers' CreateTime: this engine refused LogAppendTime ({exc})"
    return "the broker's LogAppendTime"


def collect(bootstrap: str, codecs: Any) -> list[Hop]:
    """Every delivered email, CRM and webhook delivery's timeline (first delivered result
    of each delivery id); deliveries whose records cannot all be found are left out."""
    from streams.kafka.replay import read_topic
    from streams.topics import DELIVER, DELIVERY_RESULTS, EVENTS, INGEST_CDC, Destination

    cdc: dict[int, tuple[int, int]] = {}  # lsn -> (commit ms, record ms)
    events: dict[str, tuple[int, int]] = {}  # event id -> (lsn, record ms)
    routed: dict[str, int] = {}  # delivery id -> record ms
    results: dict[str, tuple[dict[str, Any], int]] = {}

    def on_cdc(msg: Message) -> None:
        change = codecs[INGEST_CDC].decode(msg.value())
        cdc[int(change["source"]["lsn"])] = (int(change["source_ts_ms"]), _ms(msg))

    def on_event(msg: Message) -> None:
        event = codecs[EVENTS].decode(msg.value())
        lsn = (event.get("source") or {}).get("lsn")
        if lsn is not None:
            events[event["event_id"]] = (int(lsn), _ms(msg))

    def on_result(msg: Message) -> None:
        result = codecs[DELIVERY_RESULTS].decode(msg.value())
        if result["outcome"] == "delivered":
            results.setdefault(result["delivery_id"], (result, _ms(msg)))

    read_topic(bootstrap, INGEST_CDC, on_cdc, timeout=60)
    read_topic(bootstrap, EVENTS, on_event, timeout=60)
    for kind in KINDS:
        topic = DELIVER[Destination(kind)].deliver

        def on_routed(msg: Message, topic: Any = topic) -> None:
            routed[codecs[topic].decode(msg.value())["delivery_id"]] = _ms(msg)

        read_topic(bootstrap, topic, on_routed, timeout=60)
    read_topic(bootstrap, DELIVERY_RESULTS, on_result, timeout=60)
    return list(_join(cdc, events, routed, results.values()))


def _ms(msg: Message) -> int:
    return int(msg.timestamp()[1])


def _join(
    cdc: dict[int, tuple[int, int]], events: dict[str, tuple[int, int]],
    routed: dict[str, int], results: Iterable[tuple[dict[str, Any], int]],
) -> Iterable[Hop]:  # fmt: skip
    for result, acked_ms in results:
        event = events.get(result["event_id"])
        change = cdc.get(event[0]) if event else None
        routed_ms = routed.get(result["delivery_id"])
        if event is None or change is None or routed_ms is None:
            continue
        answer_ms = int(result["completed_at_ms"])
        yield Hop(
            destination=result["destination"], commit_ms=change[0], cdc_ms=change[1],
            event_ms=event[1], routed_ms=routed_ms,
            picked_ms=int(result.get("picked_up_at_ms") or routed_ms),
            sent_ms=answer_ms - int(result["latency_ms"]), answer_ms=answer_ms,
            acked_ms=acked_ms,
        )  # fmt: skip


def report(phase: str, hops: list[Hop]) -> list[str]:
    """The budget of one phase: per destination, each hop's p50 and p99, then the whole
    commit -> answer against the target and the baseline (commit -> CDC record)."""
    lines = [f"  {phase}: {len(hops)} deliveries"]
    header = "    " + f"{'hop (p50 / p99 ms)':<24}" + "".join(f"{k:>16}" for k in KINDS)
    lines.append(header)
    by_kind = {k: [h for h in hops if h.destination == k] for k in KINDS}
    for label, a, b in HOPS:
        cells = []
        for kind in KINDS:
            spans = [float(getattr(h, b) - getattr(h, a)) for h in by_kind[kind]]
            cells.append(f"{pct(spans, 0.5):>7.0f} /{pct(spans, 0.99):>6.0f}" if spans else "-")
        lines.append(f"    {label:<24}" + "".join(f"{c:>16}" for c in cells))
    totals = {k: [float(h.total_ms) for h in v] for k, v in by_kind.items()}
    lines.append(
        f"    {'commit -> answer':<24}"
        + "".join(f"{pct(t, 0.5):>7.0f} /{pct(t, 0.99):>6.0f}" for t in totals.values())
    )
    floor = [float(h.cdc_ms - h.commit_ms) for h in hops]
    targeted = [t for k in TARGETED for t in totals[k]]
    target = TARGETS_MS["trickle" if phase.startswith("trickle") else "load"]
    p99 = pct(targeted, 0.99)
    verdict = "met" if p99 < target else f"missed by {p99 - target:.0f} ms"
    lines += [
        f"    webhook + CRM commit -> answer p99 {p99:.0f} ms (target < {target} ms: {verdict})",
        f"    {tail_spread([h for k in TARGETED for h in by_kind[k]], p99)}",
        f"    baseline, commit -> CDC record: p50 {pct(floor, 0.5):.0f} ms, "
        f"p99 {pct(floor, 0.99):.0f} ms; ratio of p99s (whole / CDC alone) "
        f"{p99 / max(pct(floor, 0.99), 1.0):.1f}",
    ]
    return lines


def tail_spread(hops: list[Hop], p99: float) -> str:
    """When the deliveries slower than `p99` were committed: one stall puts them in a few
    adjacent 100 ms windows, an oversubscribed machine spreads them over the phase."""
    slow_hops = [h for h in hops if h.total_ms > p99]
    if not slow_hops:
        return "the slowest 1 %: none above the p99"
    slow = sorted(h.commit_ms for h in slow_hops)
    start = min(h.commit_ms for h in hops)
    windows: dict[int, int] = {}
    for commit in slow:
        windows[(commit - start) // 100] = windows.get((commit - start) // 100, 0) + 1
    worst, count = max(windows.items(), key=lambda item: item[1])
    biggest: dict[str, int] = {}  # the hop that took the most of each slow delivery's time
    for h in slow_hops:
        label = max(HOPS, key=lambda hop: getattr(h, hop[2]) - getattr(h, hop[1]))[0]
        biggest[label] = biggest.get(label, 0) + 1
    hops_line = ", ".join(f"{label.removeprefix('-> ')} {n}" for label, n in
                          sorted(biggest.items(), key=lambda item: -item[1]))  # fmt: skip
    return (
        f"the slowest 1 % ({len(slow)}, above the p99): committed in {len(windows)} of the "
        f"phase's 100 ms windows, the most ({count}) in the one at {worst / 10:.1f} s, "
        f"first {(slow[0] - start) / 1000:.1f} s, last {(slow[-1] - start) / 1000:.1f} s; "
        f"their longest hop: {hops_line}"
    )
