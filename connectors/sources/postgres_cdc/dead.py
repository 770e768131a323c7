"""A row change the source cannot carry (a value the change event schema cannot hold): what
its dead letter on `wedsync.ingest.dlq` says. Pure.

The dead letter finds and replays the change: table, row key, LSN, the failing column and
the reason in headers; as value the text of the columns a change event would carry, as
PostgreSQL printed them (`{"op": "c", "before": null, "after": {"id": "...", ...}}`, SQL NULL
as null, an unchanged TOAST value left out). Never a secret or excluded column, and never
the raw pgoutput bytes of a row message, which hold every column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streams.errors import DecodeError
from streams.logic.contract import public_row

TextRow = dict[str, str | None]


@dataclass(frozen=True)
class DeadRow:
    table: str  # `schema.table`, the platform's name
    key: bytes  # the change's Kafka key, `<table>:<primary key>` (contract names)
    column: str  # the column (contract name) whose value cannot be carried
    error: DecodeError
    op: str
    before: TextRow | None
    after: TextRow | None

    def value(self) -> bytes:
        """The change's carried columns as text; endpoint URLs without their credentials."""
        table = self.key.split(b":", 1)[0].decode(errors="replace")
        before, after = public_row(table, self.before), public_row(table, self.after)
        image = {"op": self.op, "before": before, "after": after}
        return json.dumps(image, ensure_ascii=False).encode()


class BadColumn(Exception):
    """Raised while converting a row: `column`'s text is not a value the event can hold."""

    def __init__(self, column: str, error: DecodeError) -> None:
        super().__init__(str(error))
        self.column = column
        self.error = error
