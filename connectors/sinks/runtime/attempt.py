"""One attempt at a provider: the call, its deadline, what an exception means, the reauth retry.

`Attempts.deliver(item, target, probe=...)` is called by the runtime once a record was
admitted (its turn, its rate-limit token, its slot): it calls the connector inside the call
timeout and the audit scope, and turns whatever comes out into an `Answer` (a raised
exception through `translate`, once, here). A REAUTH answer gets exactly one more call with
a refreshed credential (unless this is a probe, which refreshed already); what the second
answer means is the caller's business.

Stopping: once `stopping` is set no call starts (`NotStarted` is raised instead); the tasks
inside a call are in `calling`, which the stop lets finish up to its drain bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from streams import metrics
from streams.errors import BackpressureError, FatalError

from connectors.sinks.answer import Answer, Verdict, backpressure, fatal, retry
from connectors.sinks.base import Connector, DeliveryContext
from connectors.sinks.credentials import CredentialStore
from connectors.sinks.envelope import Item
from connectors.sinks.outbound import audit_scope

log = logging.getLogger("connectors.sinks.runtime")


class NotStarted(Exception):
    """Raised instead of calling a provider once the sink is stopping."""


class Attempts:
    def __init__(self, connector: Connector, credentials: CredentialStore,
                 call_timeout_s: float) -> None:  # fmt: skip
        self.connector = connector
        self.credentials = credentials
        self.call_timeout_s = call_timeout_s
        self.kind = connector.destination.value
        self.calling: set[asyncio.Task[Any]] = set()  # tasks inside a provider call
        self.stopping = False
        self._seconds = {  # metric children, looked up once (labels() costs per call)
            v: metrics.SINK_ATTEMPT_SECONDS.labels(self.kind, v.value) for v in Verdict
        }

    async def deliver(self, item: Item, target: str, *, probe: bool) -> tuple[Answer, float]:
        """The answer for `item` and the last call's latency in ms; a REAUTH answer to a
        first call is retried once with a refreshed credential. `NotStarted` once stopping."""
        answer, latency = await self.call(item, target, refresh=probe)
        if answer.verdict is Verdict.REAUTH and not probe:
            answer, latency = await self.call(item, target, refresh=True)
        return answer, latency

    async def call(self, item: Item, target: str, *, refresh: bool) -> tuple[Answer, float]:
        """One call to the provider; `NotStarted` instead once stopping. While it runs, its
        task is in `calling`: a stop lets it finish (up to the drain bound)."""
        if self.stopping:
            raise NotStarted
        record = item.record
        ctx = DeliveryContext(self.credentials, record["delivery_id"], item.attempt, refresh)
        started = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self.calling.add(task)
        try:
            with audit_scope(self.kind, target):
                async with asyncio.timeout(self.call_timeout_s):
                    answer = await self.connector.deliver(record, ctx)
        except Exception as exc:
            answer = translate(exc)
        finally:
            if task is not None:
                self.calling.discard(task)
        latency = time.monotonic() - started
        self._seconds[answer.verdict].observe(latency)
        return answer, latency * 1000


def translate(exc: BaseException) -> Answer:
    """An exception out of a connector, as an answer. Foreign exceptions keep only their
    class name (their text may carry a URL or a token)."""
    name = type(exc).__name__
    if isinstance(exc, BackpressureError):
        return backpressure(f"error.{name}", exc.retry_after, str(exc))
    if isinstance(exc, FatalError):
        return fatal(f"error.{name}", str(exc))
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return retry("timeout", "no answer within the call timeout")
    if isinstance(exc, httpx.TransportError | OSError):
        return retry(f"transport.{name}", f"transport error ({name})")
    log.warning("connector raised %s; retrying the record", name)
    log.debug("connector exception", exc_info=exc)
    return retry(f"error.{name}", f"unexpected {name} in the connector")
