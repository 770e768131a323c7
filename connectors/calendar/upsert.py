"""The one write algorithm of the three calendar sinks (Google, Graph, CalDAV), over a small
provider port. Pure control flow: no HTTP here; each provider's sink implements `Port` with
its own requests and classifies its own answers (its `wire.classify`).

Upsert (`upsert`):
    create if absent                 an Answer (created, or refused) -> that answer
                                     `Exists` (it was there already, maybe from an earlier
                                     attempt whose answer was lost) -> re-apply:
    re-apply, at most REAPPLY_ROUNDS times:
        read it                      `Held` version >= ours -> OK, nothing written (a replay,
                                     or older news arriving late: retry topics reorder)
        update it, conditionally     (If-Match: the etag read) -> its Answer
                                     `Changed` (412: changed since the read) -> next round
                                     `Gone` (404/410, at the read or the update) -> create once
                                     more (an upsert means "be there"): its Answer, or
                                     `Exists` -> next round; gone a second time -> RETRY
                                     ``<name>.vanished``
    every round changed              -> the provider's 412 answer (RETRY)
Delete (`delete`):
    read every copy we hold          `Gone` -> OK (already gone)
    for each copy                    a strictly newer stored version -> kept (OK)
                                     else remove it, conditionally: `Gone` -> OK; a refusal
                                     (e.g. 412) -> that answer, the rest is left for the retry
    the answer                       the first copy's (OK)

A step the provider could not take (401, 429, 5xx ...) is an `Answer` returned by the port
and ends the algorithm with it. Transport errors propagate from the port (the runtime, or
the provider's sink, classifies them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.sinks.answer import Answer, ok, retry

REAPPLY_ROUNDS = 2  # reads + conditional updates of an existing event before RETRY


@dataclass(frozen=True)
class Exists:
    """A create found our event already there (Google 409 ``duplicate``; CalDAV 412 to
    ``If-None-Match: *``; Graph: the find saw it)."""


EXISTS = Exists()


@dataclass(frozen=True)
class Held:
    """Our event as the calendar holds it now: the aggregate version our last write left on
    it (None when absent or unreadable), its etag, the id to report (`Answer.provider_id`)
    and, for the provider's own update, what it read (`body`: e.g. CalDAV's SEQUENCE)."""

    version: int | None
    etag: str | None
    id: str | None = None
    body: Any = None


@dataclass(frozen=True)
class Gone:
    """The event is not there (404, 410, a cancelled Google event); `id` for the answer."""

    status: int
    id: str | None = None


@dataclass(frozen=True)
class Changed:
    """A conditional write answered 412: the event changed since it was read. `answer` is the
    provider's classification of that 412 (a RETRY), returned when every round changed."""

    answer: Answer


class Port(Protocol):
    """One record's calls to one provider. `name` prefixes the error classes made here."""

    name: str

    async def create(self) -> Answer | Exists:
        """Create the event unless it exists."""
        ...

    async def read(self) -> Held | Gone | Answer:
        """Read the event an upsert updates."""
        ...

    async def update(self, held: Held) -> Answer | Changed | Gone:
        """Write the record over `held`, on condition that it is still `held.etag`."""
        ...

    async def copies(self) -> Sequence[Held] | Gone | Answer:
        """Every copy of the event a delete removes (one, except Graph's duplicates)."""
        ...

    async def remove(self, held: Held) -> Answer | Gone:
        """Delete `held`, on condition that it is still `held.etag`."""
        ...


def version_of(record: Mapping[str, Any]) -> int:
    return int(record.get("aggregate_version") or 0)


async def write(port: Port, record: Mapping[str, Any]) -> Answer:
    """The record's operation: `delete`, else `upsert`, at its aggregate version."""
    if record.get("operation") == "delete":
        return await delete(port, version_of(record))
    return await upsert(port, version_of(record))


async def upsert(port: Port, version: int) -> Answer:
    """Make the event hold `version` (see the module docstring)."""
    made = await port.create()
    if not isinstance(made, Exists):
        return made
    recreated = False
    changed: Changed | None = None
    for _ in range(REAPPLY_ROUNDS):
        step: Held | Gone | Changed | Answer = await port.read()
        if isinstance(step, Held):
            if step.version is not None and step.version >= version:
                return ok(200, step.id)  # it holds this version or a newer one
            step = await port.update(step)
        if isinstance(step, Gone):
            if recreated:
                return retry(f"{port.name}.vanished", "the event kept vanishing while we "
                             "updated it", status=step.status)  # fmt: skip
            recreated = True
            made = await port.create()
            if isinstance(made, Exists):
                continue
            return made
        if isinstance(step, Changed):
            changed = step
            continue
        return step
    message = "the event kept changing while we updated it"
    if changed is None:  # only when REAPPLY_ROUNDS is 1 and that round re-created
        return retry(f"{port.name}.412", message, status=412)
    return dataclasses.replace(changed.answer, message=message)


async def delete(port: Port, version: int) -> Answer:
    """Remove every copy of the event not holding a newer version (module docstring)."""
    found = await port.copies()
    if isinstance(found, Gone):
        return ok(found.status, found.id)
    if isinstance(found, Answer):
        return found
    outcomes: list[Answer] = []
    for held in found:
        if held.version is not None and held.version > version:
            outcomes.append(ok(200, held.id))  # a newer upsert is kept
            continue
        step = await port.remove(held)
        if isinstance(step, Gone):
            step = ok(step.status, step.id)
        if not step.ok:
            return step
        outcomes.append(step)
    return outcomes[0] if outcomes else ok(404)
