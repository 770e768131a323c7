"""The inbound webhook gateway: an aiohttp server that stores requests in Kafka before it
acknowledges them.

    POST /webhooks/{source}   verified request -> InboundWebhook on INGEST_WEBHOOKS
    POST /changes/{source}    verified Supabase/Debezium payload -> ChangeEvent on INGEST_CDC
                              (and INGEST_STATE for the contract's state tables, as the
                              PostgreSQL CDC source writes them; 422 for a table outside
                              the source contract)
    GET  /healthz             200 while the Kafka producer is usable, else 503 (for the load
                              balancer in front; the process's /metrics and /healthz are
                              served apart, as every process's are: `streams.observe`)

Per request, in this order: the source exists (404) -> body within its limit (413) -> the
source's rate limit (429 + Retry-After; checked before verification so forged floods cost
little) -> verification (401, see `verify.py`; Graph's validationToken is echoed here) ->
JSON parses (400) -> already stored within the dedupe window (200, nothing produced) -> the
record is produced and acknowledged by Kafka (200, or 202 for Graph) -> the delivery id is
marked seen. Change payloads are deduplicated only on an identifier (the source's delivery-id
header, else Debezium's source position; see `convert.py`): one without is always stored.
When Kafka does not acknowledge within the configured timeout the answer is 503 with
Retry-After: nothing is acknowledged that is not stored.

Push channels in channel-key (MAC) mode (`channel_keys` of a Google or Graph source): any
channel whose token verifies is accepted (orphans are the calendar feed's to stop), and the
record carries the token's integration id as header `x-wedsync-integration-id`. A Graph batch
is checked item by item: items that do not verify are dropped (counted as reason
`bad_client_state_item`), the record's body is the good items only (`{"value": [...]}`, JSON
re-encoded; the raw body when none was dropped), and the answer is 202; no good item is 401.

Every refusal is counted in `wedsync_ingest_rejections_total{source, reason}`. Logs name the
source and the reason only: never a body, a header value, a secret or a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import struct
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from streams import metrics
from streams.errors import BrokerUnavailable
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka
from streams.logic.contract import Contract
from streams.logic.ratelimit import TokenBucket
from streams.models import InboundWebhook
from streams.topics import INGEST_CDC, INGEST_STATE, INGEST_WEBHOOKS, Topic, change_key

from connectors.producer import AckedProducer
from connectors.sources.webhooks.config import GatewayConfig, HmacSource, JwtSource, SourceConfig
from connectors.sources.webhooks.convert import (
    ConversionError,
    from_debezium,
    from_supabase,
)
from connectors.sources.webhooks.dedupe import DedupeWindow
from connectors.sources.webhooks.record import WebhookWriter
from connectors.sources.webhooks.verify import Rejected, Request, Verified, parse_json, verify

log = logging.getLogger(__name__)

UNKNOWN = "_unknown"
_HTTP_REASONS = {404: "unknown_path", 405: "method_not_allowed"}
_CHUNK = 64 * 1024
# Header names containing any of these never reach Kafka (credentials and signatures).
_SECRET_HEADER_PARTS = (
    "authorization", "signature", "token", "secret", "cookie", "api-key", "apikey", "password",
)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _secret_header(name: str) -> bool:
    return any(part in name for part in _SECRET_HEADER_PARTS)


INTEGRATION_HEADER = "x-wedsync-integration-id"


def stored_headers(
    headers: dict[str, str], source: SourceConfig, verified: Verified | None = None
) -> dict[str, str]:
    """The request headers worth keeping, lower-cased, without credentials or signatures
    (Google's X-Goog-Channel-ID, -Resource-ID, -Resource-State, -Message-Number and
    -Channel-Expiration are kept; -Channel-Token is not). A verified channel token's
    integration id is added as INTEGRATION_HEADER; a sender's own header of that name is
    never kept."""
    extra: str | None = None
    if isinstance(source, HmacSource):
        extra = source.signature_header
    elif isinstance(source, JwtSource):
        extra = source.header
    kept = {
        name: value
        for name, value in headers.items()
        if name != extra and name != INTEGRATION_HEADER and not _secret_header(name)
    }
    if verified is not None and verified.integration_id is not None:
        kept[INTEGRATION_HEADER] = verified.integration_id
    return kept


@dataclass(frozen=True)
class _Record:
    topic: Topic
    key: bytes
    value: bytes
    delivery_id: str | None  # what duplicates share; None: never deduplicated
    # the same key there too, with the value as that topic's codec writes it (a state
    # table's change: wedsync.ingest.state, as the CDC source writes it)
    also: tuple[tuple[Topic, bytes], ...] = ()


class Gateway:
    """Request handling and its in-memory state (dedupe window, rate buckets, in-flight ids).

    `wall_clock` gives unix seconds (signature timestamps, record times); `monotonic` drives
    the dedupe window and the rate limits. Both are injectable for tests."""

    def __init__(
        self,
        config: GatewayConfig,
        producer: AckedProducer,
        codecs: TopicCodecs,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        contract: Contract | None = None,
    ) -> None:
        metrics.export("ingest")  # this process's /metrics serves them
        self.config = config
        self.contract = contract or Contract.default()
        self.state_tables = self.contract.state_tables()
        self.producer = producer
        self.codecs = codecs
        self._wall = wall_clock
        self._mono = monotonic
        self.dedupe = DedupeWindow(config.dedupe_window_seconds, config.dedupe_max_entries)
        now = monotonic()
        self._buckets = {
            name: TokenBucket(src.rate_per_second, src.burst, now)
            for name, src in config.sources.items()
        }
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._counted = {  # metric children per source, looked up once
            (name, outcome): metrics.INGEST_REQUESTS.labels(name, outcome)
            for name in config.sources
            for outcome in ("stored", "duplicate", "handshake")
        }
        self._ack_seconds: dict[str, Any] = {}  # topic -> its ack-time histogram child
        codec = codecs[INGEST_WEBHOOKS]
        self._writer = WebhookWriter.of(codec.schema)  # None: a schema it does not know
        self._framing = struct.pack(">bI", 0, codec.schema_id) if self._writer else b""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._json_refusals])
        app.router.add_post("/webhooks/{source}", self.handle_webhook)
        app.router.add_post("/changes/{source}", self.handle_change)
        app.router.add_get("/healthz", self.handle_health)
        return app

    @web.middleware
    async def _json_refusals(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """aiohttp's own refusals (no such path, wrong method) as JSON with a reason, counted
        like ours."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            reason = _HTTP_REASONS.get(exc.status, f"http_{exc.status}")
            response = self._refuse(UNKNOWN, Rejected(exc.status, reason, exc.reason))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response

    # ---- endpoints ----------------------------------------------------------------------
    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, changes=False)

    async def handle_change(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, changes=True)

    @property
    def healthy(self) -> bool:
        return not self.producer.fatal

    async def handle_health(self, request: web.Request) -> web.StreamResponse:
        if not self.healthy:
            return web.json_response({"status": "kafka producer failed"}, status=503)
        return web.json_response({"status": "ok"})

    # ---- the pipeline ---------------------------------------------------------------------
    async def _handle(self, request: web.Request, *, changes: bool) -> web.StreamResponse:
        name = request.match_info["source"]
        source = self.config.sources.get(name)
        if source is None or (source.payload != "raw") != changes:
            return self._refuse(UNKNOWN, Rejected(404, "unknown_source", "no such source"))
        try:
            return await self._accept(request, name, source)
        except Rejected as rejected:
            return self._refuse(name, rejected)
        except ConversionError as exc:
            return self._refuse(name, Rejected(exc.status, exc.reason, str(exc)))
        except BrokerUnavailable as exc:
            log.warning("ingest %s: Kafka unavailable (%s); answering 503", name, exc)
            retry = self.config.retry_after_seconds
            return self._refuse(name, Rejected(503, "kafka_unavailable", retry_after=retry))
        except Exception as exc:  # a bug, not bad input; the message may quote the request,
            where = traceback.extract_tb(exc.__traceback__)[-1]  # so log only where it was
            log.error("ingest %s: %s at %s:%s", name, type(exc).__name__, where.filename,
                      where.lineno)  # fmt: skip
            return self._refuse(name, Rejected(500, "internal_error"))

    async def _accept(
        self, request: web.Request, name: str, source: SourceConfig
    ) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > source.max_body_bytes:
            raise Rejected(413, "body_too_large", f"limit is {source.max_body_bytes} bytes")
        wait = self._buckets[name].try_acquire(self._mono())
        if wait > 0:
            retry = int(TokenBucket.retry_after_header(wait))
            raise Rejected(429, "rate_limited", "too many requests", retry_after=retry)
        body = await _read_limited(request, source.max_body_bytes)
        headers = {k.lower(): _text(v) for k, v in request.headers.items()}
        now = self._wall()
        verified = verify(source, Request(headers, body, dict(request.query)), now)
        if verified.handshake is not None:
            self._counted[name, "handshake"].inc()
            return web.Response(
                text=verified.handshake,
                content_type="text/plain",
                headers={"X-Content-Type-Options": "nosniff"},
            )
        if verified.rejected_items:  # Graph items whose clientState did not verify
            metrics.INGEST_REJECTIONS.labels(name, "bad_client_state_item").inc(
                verified.rejected_items
            )
        if verified.body is not None:  # only the good items are stored
            body = verified.body
        needs_json = source.json_body or source.payload != "raw"
        exact = source.payload != "raw"  # change values: numbers exactly, never via float
        document = parse_json(body, exact_numbers=exact) if needs_json else None
        record = self._record(name, source, verified, headers, body, document, now)
        ok_status = 202 if verified.method == "graph_client_state" else 200
        return await self._store_once(name, record, ok_status)

    def _record(
        self,
        name: str,
        source: SourceConfig,
        verified: Verified,
        headers: dict[str, str],
        body: bytes,
        document: Any,
        now: float,
    ) -> _Record:
        received_ms = int(now * 1000)
        if source.payload != "raw":
            header = source.delivery_id_header
            delivery = headers.get(header) if header else None
            common: dict[str, Any] = {
                "contract": self.contract,
                "database": source.database,
                "received_ms": received_ms,
                "request_id": uuid.uuid4().hex,
                "delivery_id": f"{name}:{delivery}" if delivery else None,
            }
            if source.payload == "supabase":
                change, identity = from_supabase(document, **common)
            else:
                placeholder = source.unavailable_value_placeholder
                change, identity = from_debezium(document, placeholder=placeholder, **common)
            value = _encode(self.codecs, INGEST_CDC, dict(change))
            # a state table's change also goes where the CDC source sends it (routing state)
            state: tuple[tuple[Topic, bytes], ...] = ()
            if change["source"]["table"] in self.state_tables:
                state = ((INGEST_STATE, _encode(self.codecs, INGEST_STATE, dict(change))),)
            return _Record(INGEST_CDC, change_key(change), value, identity, state)
        # no provider id: a fresh one, so this request is its own event (never deduplicated)
        delivery_id = verified.delivery_id or f"req:{uuid.uuid4().hex}"
        webhook = InboundWebhook(
            event_id=hashlib.blake2b(f"{name}:{delivery_id}".encode(), digest_size=16).hexdigest(),
            source=name,
            verification=verified.method,
            delivery_id=delivery_id,
            headers=stored_headers(headers, source, verified),
            content_type=headers.get("content-type", ""),
            body=body,
            received_at_ms=received_ms,
            source_ts_ms=verified.source_ts_ms or received_ms,
        )
        value = self._encode_webhook(webhook)
        key = f"{name}:{delivery_id}".encode()
        return _Record(INGEST_WEBHOOKS, key, value, verified.delivery_id)

    def _encode_webhook(self, webhook: InboundWebhook) -> bytes:
        """Avro bytes of the record (`record.py`, else the codec); 400 when a value cannot
        be written (e.g. a lone surrogate in a string)."""
        if self._writer is None:
            return _encode(self.codecs, INGEST_WEBHOOKS, dict(webhook))
        try:
            return self._framing + self._writer.write(webhook)
        except (ValueError, TypeError) as exc:
            detail = f"cannot store the payload: {type(exc).__name__}"
            raise Rejected(400, "unencodable", detail) from None

    async def _store_once(self, name: str, record: _Record, ok_status: int) -> web.Response:
        """Produce unless stored within the window; concurrent twins wait for the first.
        A record without a delivery id is always produced."""
        if record.delivery_id is None:
            await self._produce(record, on_late_ack=None)
            self._counted[name, "stored"].inc()
            return _answer(_STORED, ok_status)
        seen_key = f"{name}:{record.delivery_id}"
        if self.dedupe.seen(seen_key, self._mono()):
            self._counted[name, "duplicate"].inc()
            return _answer(_DUPLICATE, 200)
        twin = self._inflight.get(seen_key)
        if twin is not None:
            await asyncio.shield(twin)  # raises BrokerUnavailable if the first one failed
            self._counted[name, "duplicate"].inc()
            return _answer(_DUPLICATE, 200)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[seen_key] = done
        try:
            await self._produce(record, lambda: self.dedupe.mark(seen_key, self._mono()))
        except BrokerUnavailable as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._inflight.pop(seen_key, None)
        self.dedupe.mark(seen_key, self._mono())
        done.set_result(None)
        self._counted[name, "stored"].inc()
        return _answer(_STORED, ok_status)

    async def _produce(self, record: _Record, on_late_ack: Callable[[], None] | None) -> None:
        """Send and wait for Kafka's ack (BrokerUnavailable if none comes in time)."""
        started = time.perf_counter()
        copies = ((record.topic, record.value), *record.also)
        # Every copy acknowledged before the answer: a failed one is a 503 and a resend. A
        # late ack marks the change seen only when it was the one copy (else a resend could
        # be deduplicated while the other copy was lost; stored twice is safe, lost is not).
        if len(copies) == 1:  # the usual case: no gather (a task per copy) needed
            await self.producer.send(record.topic, key=record.key, value=record.value,
                                     on_late_ack=on_late_ack)  # fmt: skip
        else:
            await asyncio.gather(*(self.producer.send(topic, key=record.key, value=value)
                                   for topic, value in copies))  # fmt: skip
        ack = self._ack_seconds.get(record.topic.name)
        if ack is None:
            ack = self._ack_seconds[record.topic.name] = metrics.INGEST_ACK_SECONDS.labels(
                record.topic.name
            )
        ack.observe(time.perf_counter() - started)

    def _refuse(self, label: str, rejected: Rejected) -> web.Response:
        metrics.INGEST_REJECTIONS.labels(label, rejected.reason).inc()
        outcome = "unavailable" if rejected.status == 503 else "rejected"
        metrics.INGEST_REQUESTS.labels(label, outcome).inc()
        log.debug("ingest %s: %d %s", label, rejected.status, rejected.reason)
        headers = {}
        if rejected.retry_after is not None:
            headers["Retry-After"] = str(rejected.retry_after)
        if rejected.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="wedsync-ingest"'
        return web.json_response(
            {"error": rejected.reason, "detail": rejected.detail},
            status=rejected.status,
            headers=headers,
        )


_STORED, _DUPLICATE = b'{"status": "stored"}', b'{"status": "duplicate"}'


def _answer(body: bytes, status: int) -> web.Response:
    """A JSON answer from its prebuilt bytes (what json_response writes, without dumps)."""
    return web.Response(body=body, status=status, content_type="application/json")


def _text(value: str) -> str:
    """A header value as valid UTF-8 text (aiohttp keeps undecodable bytes as surrogates)."""
    try:
        value.encode()
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """The body, or 413 as soon as it grows past `limit` (chunked bodies included); 400
    `truncated_body` when the sender went away or broke the framing before its end."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise Rejected(413, "body_too_large", f"limit is {limit} bytes")
            chunks.append(chunk)
    except (ConnectionResetError, HttpProcessingError):
        raise Rejected(400, "truncated_body", "the body ended before its end") from None
    return b"".join(chunks)


def _encode(codecs: TopicCodecs, topic: Topic, record: dict[str, Any]) -> bytes:
    """Avro bytes; 400 when a value cannot be written (e.g. a lone surrogate in a string)."""
    try:
        return codecs[topic].encode(record)
    except (ValueError, TypeError) as exc:
        detail = f"cannot store the payload: {type(exc).__name__}"
        raise Rejected(400, "unencodable", detail) from None


@contextlib.asynccontextmanager
async def running_gateway(
    config: GatewayConfig,
    bootstrap_servers: Kafka,
    codecs: TopicCodecs,
    *,
    host: str | None = None,
    port: int | None = None,
    producer_config: dict[str, Any] | None = None,
    contract: Contract | None = None,
) -> AsyncIterator[tuple[Gateway, int]]:
    """Run the gateway on `host:port` (default: the config's) until the block exits; yields
    the gateway and the bound port. The producer is flushed and closed on the way out."""
    producer = AckedProducer(
        bootstrap_servers, ack_timeout=config.ack_timeout_seconds, config=producer_config
    )
    producer.start()
    await producer.warm_up([t.name for t in (INGEST_WEBHOOKS, INGEST_CDC, INGEST_STATE)])
    gateway = Gateway(config, producer, codecs, contract=contract)
    runner = web.AppRunner(gateway.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or config.host, config.port if port is None else port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = int(sockets[0].getsockname()[1]) if sockets else int(port or config.port)
        log.info("ingest gateway listening on %s:%d", host or config.host, bound)
        yield gateway, bound
    finally:
        await runner.cleanup()
        await producer.close()
