"""The calendar sinks' one write algorithm (connectors/calendar/upsert.py) over a scripted
in-memory port: each step answers what the script says, and every call is recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.calendar.upsert import (
    EXISTS,
    REAPPLY_ROUNDS,
    Changed,
    Exists,
    Gone,
    Held,
    delete,
    upsert,
    write,
)
from connectors.sinks.answer import Answer, Verdict, fatal, ok, reauth, retry

CHANGED = Changed(retry("test.412", "changed meanwhile", status=412))
CREATED = ok(201, "ev-1")
UPDATED = ok(200, "ev-1")


def held(version: int | None, etag: str = '"e1"', id: str = "ev-1") -> Held:
    return Held(version, etag, id)


class Scripted:
    """`upsert.Port` answering from per-method scripts (first in, first out); an exhausted
    script is a test failure. `calls` records (method, argument) in order."""

    name = "test"

    def __init__(self, **scripts: list[Any]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, Any]] = []

    def _next(self, method: str, argument: Any = None) -> Any:
        self.calls.append((method, argument))
        script = self.scripts.get(method)
        assert script, f"unscripted call: {method}"
        return script.pop(0)

    def made(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    async def create(self) -> Answer | Exists:
        return self._next("create")

    async def read(self) -> Held | Gone | Answer:
        return self._next("read")

    async def update(self, held: Held) -> Answer | Changed | Gone:
        return self._next("update", held)

    async def copies(self) -> Sequence[Held] | Gone | Answer:
        return self._next("copies")

    async def remove(self, held: Held) -> Answer | Gone:
        return self._next("remove", held)


# ---- upsert ----------------------------------------------------------------------------------
async def test_an_absent_event_is_created_and_nothing_else() -> None:
    port = Scripted(create=[CREATED])
    assert await upsert(port, 3) == CREATED
    assert port.calls == [("create", None)]


async def test_a_refused_create_is_the_answer() -> None:
    refused = reauth("test.401", status=401)
    port = Scripted(create=[refused])
    assert await upsert(port, 3) is refused


async def test_an_event_holding_this_version_is_not_written() -> None:
    port = Scripted(create=[EXISTS], read=[held(3)])
    answer = await upsert(port, 3)
    assert answer.verdict is Verdict.OK and answer.provider_id == "ev-1"
    assert port.made("update") == 0


async def test_an_event_holding_a_newer_version_is_not_written() -> None:
    port = Scripted(create=[EXISTS], read=[held(9)])
    assert (await upsert(port, 3)).ok
    assert port.made("update") == 0


async def test_an_event_holding_an_older_version_is_updated_with_its_etag() -> None:
    read = held(2, etag='"e2"')
    port = Scripted(create=[EXISTS], read=[read], update=[UPDATED])
    assert await upsert(port, 3) == UPDATED
    assert port.calls[-1] == ("update", read)


async def test_an_event_without_our_version_is_updated() -> None:
    port = Scripted(create=[EXISTS], read=[held(None)], update=[UPDATED])
    assert await upsert(port, 3) == UPDATED


async def test_changed_once_is_read_and_applied_again() -> None:
    port = Scripted(create=[EXISTS], read=[held(1, '"a"'), held(1, '"b"')],
                    update=[CHANGED, UPDATED])  # fmt: skip
    assert await upsert(port, 3) == UPDATED
    assert [arg.etag for name, arg in port.calls if name == "update"] == ['"a"', '"b"']


async def test_changed_every_round_is_retry_with_the_providers_class() -> None:
    port = Scripted(create=[EXISTS], read=[held(1)] * REAPPLY_ROUNDS,
                    update=[CHANGED] * REAPPLY_ROUNDS)  # fmt: skip
    answer = await upsert(port, 3)
    assert answer.verdict is Verdict.RETRY
    assert (answer.error_class, answer.status) == ("test.412", 412)
    assert answer.message == "the event kept changing while we updated it"
    assert port.made("update") == REAPPLY_ROUNDS == 2


async def test_a_newer_version_read_after_a_change_is_kept() -> None:
    port = Scripted(create=[EXISTS], read=[held(1), held(5)], update=[CHANGED])
    assert (await upsert(port, 3)).ok
    assert port.made("update") == 1


async def test_gone_at_update_is_created_once_more() -> None:
    port = Scripted(create=[EXISTS, CREATED], read=[held(1)], update=[Gone(404)])
    assert await upsert(port, 3) == CREATED
    assert [name for name, _ in port.calls] == ["create", "read", "update", "create"]


async def test_gone_at_read_is_created_once_more() -> None:
    port = Scripted(create=[EXISTS, CREATED], read=[Gone(410)])
    assert await upsert(port, 3) == CREATED
    assert port.made("update") == 0


async def test_recreated_meanwhile_by_someone_else_is_read_and_updated() -> None:
    port = Scripted(create=[EXISTS, EXISTS], read=[Gone(404), held(1)], update=[UPDATED])
    assert await upsert(port, 3) == UPDATED


async def test_vanishing_twice_is_retry_not_a_loop() -> None:
    port = Scripted(create=[EXISTS, EXISTS], read=[held(1), held(1)],
                    update=[Gone(404), Gone(404)])  # fmt: skip
    answer = await upsert(port, 3)
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "test.vanished"
    assert port.made("create") == 2


async def test_a_refused_update_is_the_answer() -> None:
    refused = fatal("test.400", status=400)
    port = Scripted(create=[EXISTS], read=[held(1)], update=[refused])
    assert await upsert(port, 3) is refused


async def test_a_refused_read_is_the_answer() -> None:
    refused = retry("test.503", status=503)
    port = Scripted(create=[EXISTS], read=[refused])
    assert await upsert(port, 3) is refused
    assert port.made("update") == 0


# ---- delete ----------------------------------------------------------------------------------
async def test_delete_of_a_gone_event_is_ok_with_its_status() -> None:
    port = Scripted(copies=[Gone(410, "ev-1")])
    answer = await delete(port, 3)
    assert (answer.verdict, answer.status, answer.provider_id) == (Verdict.OK, 410, "ev-1")
    assert port.made("remove") == 0


async def test_delete_keeps_a_strictly_newer_event() -> None:
    port = Scripted(copies=[[held(4)]])
    assert (await delete(port, 3)).ok
    assert port.made("remove") == 0


async def test_delete_removes_an_event_of_the_same_version() -> None:
    copy = held(3)
    port = Scripted(copies=[[copy]], remove=[ok(204, "ev-1")])
    assert (await delete(port, 3)).status == 204
    assert port.calls[-1] == ("remove", copy)


async def test_delete_of_an_event_gone_meanwhile_is_ok() -> None:
    port = Scripted(copies=[[held(1)]], remove=[Gone(404)])
    answer = await delete(port, 3)
    assert answer.verdict is Verdict.OK and answer.status == 404


async def test_a_refused_delete_is_the_answer() -> None:
    refused = retry("test.412", status=412)
    port = Scripted(copies=[[held(1)]], remove=[refused])
    assert await delete(port, 3) is refused


async def test_delete_removes_every_older_copy_and_keeps_a_newer_one() -> None:
    older, newer, other = held(1, id="a"), held(7, id="b"), held(2, id="c")
    port = Scripted(copies=[[older, newer, other]], remove=[ok(204, "a"), ok(204, "c")])
    answer = await delete(port, 3)
    assert answer.ok and answer.provider_id == "a"
    assert [arg.id for name, arg in port.calls if name == "remove"] == ["a", "c"]


async def test_a_refused_read_of_the_copies_is_the_answer() -> None:
    refused = reauth("test.401", status=401)
    assert await delete(Scripted(copies=[refused]), 3) is refused


# ---- write -----------------------------------------------------------------------------------
async def test_write_deletes_a_delete_at_its_version() -> None:
    port = Scripted(copies=[[held(4)], [held(4)]], remove=[ok(204)])
    assert (await write(port, {"operation": "delete", "aggregate_version": 4})).ok
    assert (await write(port, {"operation": "delete", "aggregate_version": 3})).ok
    assert port.made("remove") == 1  # the same version is removed, an older delete keeps it


async def test_write_upserts_anything_else_at_its_version() -> None:
    port = Scripted(create=[EXISTS], read=[held(4)])
    assert (await write(port, {"operation": "upsert", "aggregate_version": 4})).ok
    assert port.made("update") == 0
