"""What to cut from a change too large for one Kafka record, and whether it then fits. Pure.

A change is cut only when its record would be larger than `max_record_bytes`. Then its
cuttable columns are cut, the largest first and in both images, each to `bound` bytes, until
the record fits (`fit_change`):

    text, character varying, character   the first `bound` bytes of UTF-8, whole characters
    json, jsonb                          still JSON: an object drops its largest top-level
                                         members until it fits (a supplier's
                                         `realtime_channels` stays, a megabyte `note` goes),
                                         an array keeps its leading elements, a string is cut
    text[], character varying[]          the leading elements that fit

Never cut (`never_cut`): the primary key, the contract's identifier columns (kind `id`), and
`WHOLE`, the addresses, types and subscriptions routing and the sinks act on, where a
prefix would be a wrong value rather than a shorter one. Other types are small or would not
survive a cut (bytea, numbers, dates) and are never cut either. When the change still does
not fit, `fit_change` returns `TooLarge` with what it weighed: the caller dead-letters it.

A cut column keeps its meaning of "changed": when both images are cut to the same prefix but
the full values differ, the before image leaves the column out, so a reader comparing before
and after (`streams.logic.normalize.changed_columns`) still sees the change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from streams.errors import PoisonMessage
from streams.logic.contract import Contract
from streams.models import ChangeEvent, ColumnValue, Scalar

Kind = Literal["text", "json", "text[]"]

_KINDS: dict[int, Kind] = {
    25: "text", 1042: "text", 1043: "text",  # text, character, character varying
    114: "json", 3802: "json",
    1009: "text[]", 1015: "text[]",
}  # fmt: skip

# Contract table -> columns read whole: never cut (see the module docstring).
WHOLE: Mapping[str, frozenset[str]] = {
    "suppliers": frozenset({"email"}),
    "wedding_vendors": frozenset({"vendor_type"}),
    "webhook_endpoints": frozenset({"endpoint_url", "subscribed_events"}),
    "supplier_integrations": frozenset({"integration_type", "webhook_url"}),
    "venue_integrations": frozenset({"webhook_url"}),
    "email_integrations": frozenset({"platform_type", "webhook_url"}),
}


class RecordTooLarge(PoisonMessage):
    """A change does not fit one record even with its cuttable columns cut."""


@dataclass(frozen=True)
class Fitted:
    """The change as it is written: `cut` names the columns cut, in the order cut."""

    event: ChangeEvent
    cut: tuple[str, ...] = ()


@dataclass(frozen=True)
class TooLarge:
    """A change that does not fit: `size` bytes with every cuttable column cut."""

    size: int
    cut: tuple[str, ...]
    largest: tuple[tuple[str, int], ...]  # the largest remaining columns, (name, bytes)

    def reason(self, limit: int, bound: int) -> str:
        cut = f"cutting {', '.join(self.cut)} to {bound} bytes" if self.cut else "cutting nothing"
        columns = ", ".join(f"{name} {size} bytes" for name, size in self.largest)
        return (
            f"{self.size} bytes as one record after {cut}, over max_record_bytes {limit} "
            f"(WEDSYNC_CDC_MAX_RECORD_BYTES); largest columns: {columns or 'none'}; the "
            "primary key, identifiers, addresses and subscriptions are never cut"
        )


def kind_of(type_oid: int) -> Kind | None:
    """How a column of this type is cut; None: never."""
    return _KINDS.get(type_oid)


def never_cut(table: str, primary_key: Iterable[str], contract: Contract) -> frozenset[str]:
    """Columns of `table` (a contract name, or a table outside the contract) kept whole."""
    spec = contract.tables.get(table)
    ids = {c.name for c in spec.columns if c.kind == "id"} if spec is not None else set()
    return frozenset(primary_key) | ids | WHOLE.get(table, frozenset())


def cuttable_columns(
    types: Mapping[str, int], keep: frozenset[str]
) -> dict[str, Kind]:  # fmt: skip
    """Column -> how it is cut, for the columns of `types` (name -> type OID) not in `keep`."""
    out: dict[str, Kind] = {}
    for name, oid in types.items():
        kind = kind_of(oid)
        if kind is not None and name not in keep:
            out[name] = kind
    return out


def value_bytes(value: ColumnValue) -> int:
    """About what `value` weighs in a record (UTF-8 bytes of its text)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(value_bytes(item) + 1 for item in value)
    return 8


def cut_value(value: ColumnValue, kind: Kind, bound: int) -> ColumnValue:
    """`value` cut to at most `bound` bytes as its kind allows (values within it unchanged)."""
    if value is None or value_bytes(value) <= bound:
        return value
    if kind == "text[]" and isinstance(value, list):
        kept: list[Scalar] = []
        total = 0
        for item in value:
            total += value_bytes(item) + 1
            if total > bound:
                break
            kept.append(item)
        return kept
    if not isinstance(value, str):
        return value
    if kind == "json":
        return _cut_json(value, bound)
    return _cut_text(value, bound)


def _cut_text(text: str, bound: int) -> str:
    return text.encode()[:bound].decode("utf-8", "ignore")


def _dumps(doc: object) -> str:
    return json.dumps(doc, ensure_ascii=False)  # PostgreSQL's jsonb separators: ", " ": "


def _cut_json(text: str, bound: int) -> str:
    try:
        doc = json.loads(text)
    except ValueError:  # not JSON after all (cannot happen for json/jsonb): an empty value
        return "null"
    if isinstance(doc, dict):
        sizes = {k: len(_dumps(k).encode()) + 2 + len(_dumps(v).encode()) for k, v in doc.items()}
        total = 2 + sum(sizes.values()) + 2 * max(0, len(sizes) - 1)
        for name in sorted(sizes, key=lambda k: -sizes[k]):
            if total <= bound:
                break
            total -= sizes[name] + (2 if len(doc) > 1 else 0)
            del doc[name]
        return _dumps(doc)
    if isinstance(doc, list):
        kept: list[object] = []
        total = 2
        for item in doc:
            total += len(_dumps(item).encode()) + (2 if kept else 0)
            if total > bound:
                break
            kept.append(item)
        return _dumps(kept)
    if isinstance(doc, str):
        cut = _cut_text(doc, bound - 2)
        while len(_dumps(cut).encode()) > bound:  # escapes made it longer
            cut = cut[: len(cut) * 3 // 4]
        return _dumps(cut)
    return text


def fit_change(
    event: ChangeEvent,
    *,
    record_size: Callable[[ChangeEvent, tuple[str, ...]], int],
    limit: int,
    bound: int,
    cuttable: Mapping[str, Kind],
) -> Fitted | TooLarge:
    """`event` as it fits one record of `limit` bytes, with the fewest, largest columns cut
    to `bound`; TooLarge when cutting everything cuttable is not enough. `record_size(event,
    cut)` is the size of the largest record the change is written as, with the header that
    names the `cut` columns."""
    if record_size(event, ()) <= limit:
        return Fitted(event)
    work = copy.copy(event)
    before = dict(event["before"]) if event["before"] is not None else None
    after = dict(event["after"]) if event["after"] is not None else None
    work["before"], work["after"] = before, after
    images = [image for image in (before, after) if image is not None]

    def weight(column: str) -> int:
        return max(value_bytes(image[column]) for image in images if column in image)

    present = {c for image in images for c in image}
    candidates = sorted(
        (c for c in cuttable if c in present and weight(c) > bound), key=lambda c: -weight(c)
    )
    cut: list[str] = []
    for column in candidates:
        originals = {id(image): image[column] for image in images if column in image}
        for image in images:
            if column in image:
                image[column] = cut_value(image[column], cuttable[column], bound)
        if (
            before is not None and after is not None and column in before and column in after
            and before[column] == after[column] and originals[id(before)] != originals[id(after)]
        ):  # fmt: skip
            del before[column]  # still reads as changed
        cut.append(column)
        if record_size(work, tuple(cut)) <= limit:
            return Fitted(work, tuple(cut))
    largest = sorted(((c, weight(c)) for c in present), key=lambda cw: -cw[1])[:3]
    return TooLarge(record_size(work, tuple(cut)), tuple(cut), tuple(largest))
