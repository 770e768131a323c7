"""A stored webhook body nested past the interpreter's recursion limit (a source with
`json_body = false` stores it unparsed) is a PoisonMessage for the normalizer, not a crash."""

from __future__ import annotations

import pytest
from streams import topics
from streams.dev.samples import inbound_webhook
from streams.errors import PoisonMessage
from streams.logic.inbound import normalize_webhook
from streams.models import SourceRef

REF = SourceRef(kind="webhook", topic=topics.INGEST_WEBHOOKS.name, partition=0, offset=1, lsn=None,
                commit_lsn=None, state_lsn=None, delivery_id="d-1", table=None)  # fmt: skip


def test_a_body_nested_past_the_recursion_limit_is_a_poison_message() -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(PoisonMessage, match="nested too deeply"):
        normalize_webhook(inbound_webhook(body), REF)
