"""Hostile input against the real ingest gateway: 1,200 seeded requests that are malformed,
forged, stale, replayed, oversized, mistyped, not UTF-8, deeply nested or truncated, across
every route. None may get a 5xx (503 + Retry-After aside), every refusal is a 4xx with a
reason, no request may have reached the catch-all `internal_error`, and a valid signed
request is still stored afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client import generate_latest
from streams.kafka.codec import TopicCodecs
from streams.topics import INGEST_WEBHOOKS

from tests.integration.gateway_support import JWT_KEY, SOURCES, signed, stored

pytestmark = pytest.mark.integration
pytest_plugins = ("tests.integration.gateway_fixtures",)

SEED, CASES, CONCURRENCY = 20260619, 1200, 16
WEBHOOKS = [name for name, src in SOURCES.items() if src.get("payload", "raw") == "raw"]
CHANGES = [name for name, src in SOURCES.items() if src.get("payload", "raw") != "raw"]
PATHS = [*(f"/webhooks/{n}" for n in WEBHOOKS), *(f"/changes/{n}" for n in CHANGES),
         "/webhooks/nobody", "/changes/billing", "/webhooks/", "/nowhere", "/webhooks/a/b",
         "/healthz", "/metrics", "/%ff", "/webhooks/..%2f..%2fetc"]  # fmt: skip
DEBEZIUM = {"op": "c", "before": None, "after": {"id": 1, "d": 20623},
            "source": {"db": "p", "schema": "public", "table": "core_fields", "lsn": 1, "txId": 1,
                       "ts_ms": 1_790_000_000_000}}  # fmt: skip


@dataclass
class Case:
    """One request; `kind` says what is hostile about it (shown when it fails)."""

    kind: str
    path: str
    method: str = "POST"
    headers: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is over a socket, half-closed after it


# ---- bodies --------------------------------------------------------------------------------
def valid_body(path: str, rng: random.Random) -> bytes:
    """A body the route would accept, so mutations of it get past verification."""
    n = rng.getrandbits(48)
    if path.endswith("/outlook"):
        doc: Any = {"value": [{"subscriptionId": f"s-{n}", "clientState": "cs-secret",
                               "changeType": "updated", "resource": "me/events/1"}]}  # fmt: skip
    elif path.endswith(("/supabase", "/supahook")):
        doc = {"type": "INSERT", "table": "core_fields", "schema": "public", "record": {"id": n}}
    elif path.endswith("/debezium"):
        doc = {**DEBEZIUM, "after": {"id": n, "d": 1}}
    else:
        doc = {"event": "booking.updated", "data": {"booking_id": n}}
    return json.dumps(doc).encode()


def nested(rng: random.Random) -> bytes:
    depth = rng.choice([65, 100, 1_000, 5_000, 100_000])
    inner = b"[" * depth + b"]" * depth
    return b'{"value":' + inner + b',"type":"INSERT","record":{"id":' + inner + b"}}"


def mutate(body: bytes, rng: random.Random) -> bytes:
    how = rng.randrange(6)
    if how == 0:  # truncated JSON
        return body[: rng.randrange(max(1, len(body)))]
    if how == 1:  # a random byte flipped
        i = rng.randrange(len(body))
        return body[:i] + bytes([rng.randrange(256)]) + body[i + 1 :]
    if how == 2:
        return rng.randbytes(rng.randrange(1, 200))
    if how == 3:  # valid JSON of the wrong shape
        lifecycle = {"value": [{"lifecycleEvent": ["missed"], "clientState": "cs-secret"}]}
        shapes = [[], 1, "x", None, {"value": 3}, {"type": ["INSERT"]}, {"op": {}, "source": []}]
        return json.dumps(rng.choice([*shapes, lifecycle])).encode()
    if how == 4:  # odd values in the right shape
        return json.dumps({**DEBEZIUM, "source": {**DEBEZIUM["source"], "lsn": 2**70,  # type: ignore[dict-item]
                           "ts_ms": rng.choice([2**64, -1, "x", 1.5])},
                           "after": {"id": [1, {"a": None}], "d": "\ud800"}}).encode()  # fmt: skip
    return b"NaN" if rng.random() < 0.5 else b'{"a": Infinity, "b": -Infinity}'


# ---- credentials ---------------------------------------------------------------------------
def token(rng: random.Random, **claims: Any) -> str:
    base = {"iss": "venue", "aud": "wedsync", "exp": int(time.time()) + 60,
            "jti": f"j-{rng.getrandbits(64)}"}  # fmt: skip
    return jwt.encode(base | claims, JWT_KEY, algorithm="HS256")


def goog(rng: random.Random, **odd: str) -> dict[str, str]:
    return {"x-goog-channel-id": "chan-1", "x-goog-channel-token": "chan-token",
            "x-goog-resource-id": "r", "x-goog-resource-state": "exists",
            "x-goog-message-number": str(rng.getrandbits(40))} | odd  # fmt: skip


def credentials(path: str, body: bytes, rng: random.Random) -> dict[str, Any]:
    """Headers that authenticate `body` on `path` (none where the route needs none)."""
    name = path.rsplit("/", 1)[-1]
    method = SOURCES.get(name, {}).get("method")
    if method == "standard_webhooks":
        text = body.decode("utf-8", "replace").encode()  # not UTF-8: signed wrong, so 401
        return signed(text, f"m-{rng.getrandbits(64)}")
    if method == "bearer":
        return {"authorization": f"Bearer {SOURCES[name]['tokens'][0]}"}
    if method == "jwt":
        return {"authorization": f"Bearer {token(rng)}"}
    if method == "google_channel":
        return goog(rng)
    return {}


def forged(path: str, body: bytes, rng: random.Random) -> dict[str, Any]:
    good = credentials(path, body, rng)
    return rng.choice([
        {**good, "webhook-signature": "v1," + base64.b64encode(rng.randbytes(32)).decode()},
        {**good, "webhook-signature": rng.choice(["", "v1,", "v1,!!!", "v2,abc", "v1 v1"])},
        {**good, "webhook-timestamp": rng.choice(["", "x", "9" * 5000, "-1", "1e9"])},
        {"authorization": rng.choice(["Bearer guess", "Bearer", "Basic !!", "bearer", "x" * 4000,
                                      f"Bearer {token(rng)[:-3]}abc"])},
        {"authorization": b"Bearer \xff\xfe\x80"[: rng.randrange(8, 11)]},
        {"authorization": "Bearer " + jwt.encode({"iss": "venue", "aud": "wedsync",
                                                  "exp": 1e308}, "wrong-key-32-bytes-long-enough!!",
                                                 algorithm="HS256")},
        {"authorization": "Bearer " + base64.b64encode(b'{"alg":"none"}').decode() + ".e30."},
        goog(rng, **{"x-goog-channel-token": "guess"}),
        goog(rng, **{"x-goog-channel-id": "chan-9"}),
    ])  # fmt: skip


def stale(path: str, body: bytes, rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        msg_id, ts = f"m-{rng.getrandbits(64)}", time.time() - rng.choice([301, 3600, 10**8])
        return signed(body, msg_id, ts=ts)
    claims = rng.choice([{"exp": int(time.time()) - 3600}, {"nbf": time.time() + 3600},
                         {"exp": float("nan")}, {"iat": 1e308}, {"iat": float("nan")},
                         {"exp": "tomorrow"}, {"jti": {"a": 1}}])  # fmt: skip
    return {"authorization": f"Bearer {token(rng, **claims)}"}


# ---- the generator -------------------------------------------------------------------------
def raw_request(rng: random.Random) -> bytes:
    path = rng.choice(PATHS).encode()
    auth = b"Authorization: Bearer crm-token\r\n"
    return rng.choice([
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 500\r\n\r\n{",
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\"",
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Len",
        b"BREW " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST " + path + b" HTTP/9.9\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(40),
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    ])  # fmt: skip


KINDS: dict[str, Callable[[random.Random], Case]] = {}


def kind(func: Callable[[random.Random], Case]) -> Callable[[random.Random], Case]:
    KINDS[func.__name__] = func
    return func


@kind
def malformed(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    body = mutate(valid_body(path, rng), rng)
    return Case("malformed", path, headers=credentials(path, body, rng), body=body)


@kind
def forged_credentials(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    body = valid_body(path, rng)
    return Case("forged", path, headers=forged(path, body, rng), body=body)


@kind
def stale_credentials(rng: random.Random) -> Case:
    path = rng.choice(["/webhooks/billing", "/webhooks/venue"])
    body = valid_body(path, rng)
    return Case("stale", path, headers=stale(path, body, rng), body=body)


@kind
def oversized(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    body = b'{"x":"' + b"x" * rng.choice([256 * 1024, 300_000, 1_100_000]) + b'"}'
    return Case("oversized", path, headers=credentials(path, body, rng), body=body)


@kind
def wrong_content_type(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    body = rng.choice([b"<xml/>", b"a=1&b=2", valid_body(path, rng)])
    ctype = rng.choice(
        [
            "application/xml",
            "text/plain; charset=latin-1",
            "multipart/form-data",
            "application/json; charset=utf-16",
            "ä/ö",
            "application/json;;;",
        ]
    )
    headers = credentials(path, body, rng) | {"content-type": ctype}
    return Case("content-type", path, headers=headers, body=body)


@kind
def not_utf8(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    body = rng.choice(
        [b'{"a":"\xff\xfe"}', b"\xef\xbb\xbf{}", b'{"a":"\xc3"}', "{}".encode("utf-16")]
    )
    headers = credentials(path, body, rng)
    if rng.random() < 0.3:
        headers["x-delivery"] = b"\xff\xfe-" + str(rng.getrandbits(32)).encode()
    return Case("not-utf8", path, headers=headers, body=body)


@kind
def deeply_nested(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    body = nested(rng)
    return Case("nested", path, headers=credentials(path, body, rng), body=body)


@kind
def odd_method_or_path(rng: random.Random) -> Case:
    path = rng.choice(PATHS)
    method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST"])
    params = rng.choice([{}, {"validationToken": "x" * rng.choice([0, 10, 2000])},
                         {"validationToken": "\x00\u2028"}, {"a": "%ff"}])  # fmt: skip
    return Case("method/path", path, method=method, params=params, body=b"{}" * rng.randrange(2))


@kind
def odd_provider_headers(rng: random.Random) -> Case:
    odd = rng.choice([{"x-goog-resource-state": "exploded"}, {"x-goog-message-number": "²³"},
                      {"x-goog-message-number": "-1"}, {"x-goog-resource-id": ""}])  # fmt: skip
    return Case("provider-headers", "/webhooks/gcal", headers=goog(rng, **odd))


@kind
def truncated_or_broken_http(rng: random.Random) -> Case:
    return Case("truncated/raw", "", raw=raw_request(rng))


def cases() -> list[Case]:
    """CASES requests from SEED, plus replays: every third one sent again (same delivery id,
    same signature, same body)."""
    rng = random.Random(SEED)
    names = sorted(KINDS)
    made = [KINDS[rng.choice(names)](rng) for _ in range(CASES)]
    replays = [Case("replayed", c.path, c.method, c.headers, c.body, c.params)
               for c in made[::3] if c.raw is None]  # fmt: skip
    replays += [Case("replayed", "/webhooks/crm", headers={"authorization": "Bearer crm-token",
                     "x-delivery": f"r-{i % 7}"}, body=b"{}") for i in range(30)]  # fmt: skip
    return made + replays


# ---- sending ------------------------------------------------------------------------------
@dataclass
class Answer:
    case: Case
    status: int
    headers: dict[str, str]
    body: bytes


async def send_raw(base_url: str, case: Case) -> Answer:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        assert case.raw is not None
        writer.write(case.raw)
        await writer.drain()
        if case.raw.endswith(b"\r\n\r\n"):  # a whole request: its answer, then close
            data = await asyncio.wait_for(reader.read(65536), 10)
        else:  # truncated: say so, then read whatever comes
            writer.write_eof()
            data = await asyncio.wait_for(reader.read(65536), 10)
    except (ConnectionError, TimeoutError):
        data = b""
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return Answer(case, status, {}, body)


async def send(client: httpx.AsyncClient, base_url: str, case: Case) -> Answer:
    if case.raw is not None:
        return await send_raw(base_url, case)
    headers = {k: v.encode() if isinstance(v, str) else v for k, v in case.headers.items()}
    response = await client.request(case.method, base_url + case.path, headers=headers,
                                    content=case.body, params=case.params)  # fmt: skip
    return Answer(case, response.status_code, dict(response.headers), response.content)


def problem(answer: Answer) -> str | None:
    """Why this answer breaks the rules, or None. A raw request that aiohttp cannot frame
    (cut short, not HTTP) may get no answer at all: the connection is closed (status 0)."""
    status, body = answer.status, answer.body
    if status >= 500 and not (status == 503 and "retry-after" in answer.headers):
        return f"{status}"
    if status >= 400 and answer.case.method != "HEAD":
        if answer.case.raw is not None:
            return None if body.strip() else f"{status} without a reason"
        try:
            reason = json.loads(body).get("error")
        except (ValueError, AttributeError):
            reason = None
        if not reason:
            return f"{status} without a JSON reason: {body[:80]!r}"
    return None


async def test_hostile_requests_get_no_5xx_and_every_refusal_has_a_reason(
    base_url: str, client: httpx.AsyncClient, kafka_bootstrap: str, codecs: TopicCodecs,
    unique_id: str,
) -> None:  # fmt: skip
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(case: Case) -> Answer:
        async with gate:
            return await send(client, base_url, case)

    todo = cases()
    answers = await asyncio.gather(*(one(c) for c in todo))
    problems = [(a.case.kind, a.case.method, a.case.path, p) for a in answers
                if (p := problem(a)) is not None]  # fmt: skip
    assert len(todo) >= 1000
    assert problems == [], f"{len(problems)} bad answers, e.g. {sorted(set(problems))[:20]}"
    metrics = generate_latest().decode()  # the gateway counts in this process
    assert 'reason="internal_error"' not in metrics
    body = b'{"type":"after.the.storm"}'
    msg_id = f"calm-{unique_id}"
    answer = await client.post(f"{base_url}/webhooks/billing", content=body,
                               headers=signed(body, msg_id))  # fmt: skip
    assert (answer.status_code, answer.json()["status"]) == (200, "stored")
    assert await stored(kafka_bootstrap, INGEST_WEBHOOKS, unique_id, msg_id)
    # no wall-clock bound here: a hang is pytest-timeout's to catch, speed is a benchmark's
