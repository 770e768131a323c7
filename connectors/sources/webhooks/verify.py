"""Pure request verification: does this request come from the source it claims to?

`verify(source, request, now)` takes a frozen `Request` (lower-cased headers, query, raw body)
and the current time, and returns a `Verified` result (which method accepted it, the delivery
id to deduplicate on, the provider's timestamp, and an optional handshake answer), or raises
`Rejected` carrying the HTTP status to answer and a short reason from a closed set (it is a
metric label). No I/O, no clock, no logging: the gateway does those.

Every comparison of a secret-derived value is constant-time (`hmac.compare_digest`). A
malformed header is a 401, never a 500. Exception messages never contain secrets or tokens.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jwt
from pydantic import SecretStr
from streams.errors import WedsyncError
from streams.logic.calendar.channels import verify_bound_token, verify_token

from connectors.sources.webhooks.config import (
    BasicSource,
    BearerSource,
    GoogleChannelSource,
    GraphSource,
    HmacSource,
    JwtSource,
    NoVerificationSource,
    SourceConfig,
    StandardWebhooksSource,
    decode_whsec,
)

MAX_JSON_DEPTH = 64  # nesting levels a body may have: far above any provider's, far below
# the interpreter's recursion limit, so no later json.dumps/loads of it can overflow
GOOGLE_STATES = frozenset({"sync", "exists", "not_exists"})
GRAPH_LIFECYCLE = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
_MAX_VALIDATION_TOKEN = 1024


class Rejected(WedsyncError):
    """The request is refused. `status` is the HTTP answer, `reason` a metric label from a
    closed set (e.g. `bad_signature`), `detail` a human explanation free of secrets."""

    def __init__(
        self, status: int, reason: str, detail: str = "", *, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {detail}" if detail else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.detail = detail or reason.replace("_", " ")
        self.retry_after = retry_after


def _unauthorized(reason: str, detail: str = "") -> Rejected:
    return Rejected(401, reason, detail)


def parse_json(body: bytes, *, exact_numbers: bool = False) -> Any:
    """The body as JSON; `Rejected(400)` when it is not UTF-8 (or UTF-16/32) JSON, or nests
    deeper than MAX_JSON_DEPTH (reason `too_deeply_nested`). With `exact_numbers`, numbers
    with a fraction or exponent are `Decimal` (their exact digits and scale, never a float),
    and NaN/Infinity, which JSON does not have, are refused."""
    try:
        if exact_numbers:
            document = json.loads(body, parse_float=Decimal, parse_constant=_not_json)
        else:
            document = json.loads(body)
    except UnicodeDecodeError:
        raise Rejected(400, "malformed_json", "body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise Rejected(400, "malformed_json", where) from None
    except ValueError:  # an integer past the interpreter's digit limit (4300)
        raise Rejected(400, "malformed_json", "a number has too many digits") from None
    except RecursionError:
        raise _too_deep() from None
    # a document can only be too deep if it has more brackets than levels allowed
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _deeper_than(document):
        raise _too_deep()
    return document


def _not_json(name: str) -> Any:
    raise Rejected(400, "malformed_json", f"{name} is not a JSON value")


def _too_deep() -> Rejected:
    return Rejected(400, "too_deeply_nested", f"JSON nests deeper than {MAX_JSON_DEPTH} levels")


def _deeper_than(document: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `document` has more than `limit` levels of arrays/objects (iterative)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


@dataclass(frozen=True)
class Request:
    """What verification needs to see of an HTTP request. Header names are lower-case."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verified:
    """The request is authentic.

    `delivery_id` is what duplicates share: the provider's own id (a delivery-id header,
    webhook-id, JWT jti, Google channel + message number), or None when the provider sends
    none: such a request is never deduplicated (two equal bodies can be two real changes,
    A -> B -> A -> B, so a body hash is not an identity); `source_ts_ms` the provider's
    timestamp when it sends one; `handshake` is a text to echo with 200 instead of storing
    anything (Graph's validationToken). With a source's `channel_keys`, `integration_id` is
    the integration a Google channel token was issued for, and a Graph batch is checked item
    by item: `rejected_items` counts the items dropped and `body` is what to store instead of
    the raw body (`{"value": [good items]}`, JSON re-encoded; None when none was dropped),
    so nothing downstream has to verify again.
    """

    method: str
    delivery_id: str | None
    source_ts_ms: int | None = None
    handshake: str | None = None
    # channel-key (MAC) mode: whose channel it is (Google), how many Graph items were
    # dropped, and the body to store instead (the good items only; None: the raw body)
    integration_id: str | None = None
    rejected_items: int = 0
    body: bytes | None = None


def _delivery_id(source: SourceConfig, request: Request) -> str | None:
    """The provider's delivery id from the configured header; None when it sends none."""
    if source.delivery_id_header and (value := request.headers.get(source.delivery_id_header)):
        return value
    return None


def _check_timestamp(raw: str | None, now: float, tolerance: int) -> int:
    """Unix seconds from a header; 401 when missing, not a number, or outside the tolerance."""
    if not raw:
        raise _unauthorized("missing_timestamp")
    try:
        ts = int(raw.strip())
    except ValueError:
        raise _unauthorized("malformed_timestamp") from None
    if abs(now - ts) > tolerance:
        raise _unauthorized("stale_timestamp", f"timestamp is more than {tolerance}s from now")
    return ts


def _any_equal(expected: list[bytes], offered: list[bytes]) -> bool:
    """Constant-time membership: compares every pair, never stops early."""
    found = False
    for want in expected:
        for got in offered:
            found |= hmac.compare_digest(want, got)
    return found


@functools.lru_cache(maxsize=256)
def _whsec_key(secret: SecretStr) -> bytes:
    """A Standard Webhooks secret's key bytes, decoded once (not per request)."""
    return decode_whsec(secret)


def _standard(source: StandardWebhooksSource, request: Request, now: float) -> Verified:
    msg_id = request.headers.get("webhook-id")
    signature = request.headers.get("webhook-signature")
    if not msg_id or not signature:
        raise _unauthorized("missing_signature", "webhook-id and webhook-signature are required")
    ts = _check_timestamp(request.headers.get("webhook-timestamp"), now, source.tolerance_seconds)
    signed = f"{msg_id}.{ts}.".encode() + request.body
    expected = [hmac.digest(_whsec_key(secret), signed, "sha256") for secret in source.secrets]
    offered: list[bytes] = []
    for item in signature.split():
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise _unauthorized("malformed_signature", "no v1 signature in webhook-signature")
    if not _any_equal(expected, offered):
        raise _unauthorized("bad_signature")
    return Verified("standard_webhooks", msg_id, source_ts_ms=ts * 1000)


def _hmac(source: HmacSource, request: Request, now: float) -> Verified:
    header = request.headers.get(source.signature_header)
    if not header:
        raise _unauthorized("missing_signature", f"{source.signature_header} is required")
    signed, ts_ms = request.body, None
    if source.timestamp_header:
        raw_ts = request.headers.get(source.timestamp_header)
        ts = _check_timestamp(raw_ts, now, source.tolerance_seconds)
        signed, ts_ms = f"{ts}.".encode() + request.body, ts * 1000
    offered: list[bytes] = []
    for item in header.split(","):
        item = item.strip()
        if source.prefix:
            if not item.startswith(source.prefix):
                continue
            item = item[len(source.prefix) :]
        try:
            digest = bytes.fromhex(item) if source.encoding == "hex" else base64.b64decode(item)
        except (binascii.Error, ValueError):
            continue
        offered.append(digest)
    if not offered:
        raise _unauthorized("malformed_signature", f"{source.signature_header} is not readable")
    expected = [
        hmac.digest(s.get_secret_value().encode(), signed, "sha256") for s in source.secrets
    ]
    if not _any_equal(expected, offered):
        raise _unauthorized("bad_signature")
    return Verified("hmac_sha256", _delivery_id(source, request), source_ts_ms=ts_ms)


def _bearer_token(request: Request, header: str = "authorization") -> str:
    value = request.headers.get(header, "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing_token", "Authorization: Bearer <token> is required")
    return token.strip()


def _jwt(source: JwtSource, request: Request, now: float) -> Verified:
    token = _bearer_token(request, source.header)
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        raise _unauthorized("bad_token", "not a JWT") from None
    if alg not in source.algorithms:
        raise _unauthorized("bad_token", f"algorithm {alg!r} is not accepted")
    key: Any = (
        source.secret.get_secret_value() if alg == "HS256" and source.secret else source.public_key
    )
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            issuer=source.issuer,
            audience=source.audience,
            # exp/nbf are checked below against the injected clock, so this stays pure
            options={
                "require": ["exp", "iss", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise _unauthorized("bad_token", type(exc).__name__) from None
    exp, leeway = _claim_time(claims, "exp"), source.leeway_seconds
    if exp is None or now > exp + leeway:
        raise _unauthorized("expired_token")
    nbf, iat = _claim_time(claims, "nbf"), _claim_time(claims, "iat")
    if nbf is not None and now + leeway < nbf:
        raise _unauthorized("bad_token", "token is not valid yet")
    jti = claims.get("jti")
    delivery = str(jti) if jti else _delivery_id(source, request)
    return Verified("jwt", delivery, source_ts_ms=None if iat is None else int(iat * 1000))


_MAX_CLAIM_SECONDS = 1e11  # year 5138: anything beyond is not a time


def _claim_time(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim (unix seconds); None when absent or not a finite time (NaN
    would pass every comparison, 1e308 overflows), so a bad `exp` is an expired token."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if -_MAX_CLAIM_SECONDS < value < _MAX_CLAIM_SECONDS else None


def _bearer(source: BearerSource, request: Request, now: float) -> Verified:
    token = _bearer_token(request).encode()
    if not _any_equal([t.get_secret_value().encode() for t in source.tokens], [token]):
        raise _unauthorized("bad_token")
    return Verified("bearer", _delivery_id(source, request))


def _basic(source: BasicSource, request: Request, now: float) -> Verified:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise _unauthorized("missing_token", "Authorization: Basic is required")
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        raise _unauthorized("malformed_token") from None
    user_ok = hmac.compare_digest(user, source.username.encode())
    pass_ok = hmac.compare_digest(password, source.password.get_secret_value().encode())
    if not (sep and user_ok and pass_ok):
        raise _unauthorized("bad_token", "wrong user name or password")
    return Verified("basic", _delivery_id(source, request))


def _google(source: GoogleChannelSource, request: Request, now: float) -> Verified:
    h = request.headers
    channel, token = h.get("x-goog-channel-id", ""), h.get("x-goog-channel-token", "")
    state, number = h.get("x-goog-resource-state", ""), h.get("x-goog-message-number", "")
    if not channel or not h.get("x-goog-resource-id"):
        raise _unauthorized("missing_channel", "X-Goog-Channel-ID and X-Goog-Resource-ID needed")
    registered = source.channels.get(channel)
    # compare against a dummy when the channel is unknown, so timing does not tell which
    expected = registered.get_secret_value() if registered else "\x00unregistered"
    token_ok = hmac.compare_digest(token.encode(), expected.encode())
    integration = None
    if registered is None and source.channel_keys:  # MAC mode: any channel with a valid MAC
        integration = verify_token(_channel_keys(source.channel_keys), token, channel)
        if integration is None:
            raise _unauthorized("bad_token", "X-Goog-Channel-Token is not valid for the channel")
    elif registered is None:
        raise _unauthorized("unknown_channel")
    elif not token_ok:
        raise _unauthorized("bad_token", "X-Goog-Channel-Token does not match the channel")
    if state not in GOOGLE_STATES:
        raise Rejected(
            400,
            "bad_resource_state",
            "X-Goog-Resource-State must be " + "sync, exists or not_exists",
        )
    if not (number.isascii() and number.isdigit()):
        raise Rejected(400, "bad_message_number", "X-Goog-Message-Number must be an integer")
    return Verified("google_channel", f"{channel}:{number}", integration_id=integration)


def _graph(source: GraphSource, request: Request, now: float) -> Verified:
    token = request.query.get("validationToken")
    if token is not None:  # subscription handshake: echo it as text/plain within 10 s
        if not token or len(token) > _MAX_VALIDATION_TOKEN:
            raise Rejected(400, "bad_validation_token")
        return Verified("graph_client_state", "", handshake=token)
    document = parse_json(request.body)
    items = document.get("value") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise Rejected(400, "malformed_notification", "expected {'value': [notification, ...]}")
    if source.channel_keys:
        return _graph_items(source, items)
    expected = [s.get_secret_value().encode() for s in source.client_states]
    for item in items:
        if not _any_equal(expected, [str(item.get("clientState", "")).encode()]):
            raise _unauthorized("bad_client_state")
        if not _known_lifecycle(item):
            lifecycle = item.get("lifecycleEvent")
            raise Rejected(400, "unknown_lifecycle_event", f"lifecycleEvent {lifecycle!r}")
    return Verified("graph_client_state", None)  # Graph notifications carry no id


def _known_lifecycle(item: Mapping[str, Any]) -> bool:
    lifecycle = item.get("lifecycleEvent")
    return lifecycle is None or (isinstance(lifecycle, str) and lifecycle in GRAPH_LIFECYCLE)


def _graph_items(source: GraphSource, items: list[dict[str, Any]]) -> Verified:
    """MAC mode, item by item: an item is kept when its clientState verifies for its
    subscriptionId or for the integration it names (the feed's subscriptions: Graph fixes
    clientState before the id exists), under a channel key, or equals a configured client
    state, and its lifecycle event, if any, is known; the others are dropped and counted.
    No good item: 401."""
    keys = _channel_keys(source.channel_keys)
    shared = [s.get_secret_value().encode() for s in source.client_states]
    good: list[dict[str, Any]] = []
    for item in items:
        state = item.get("clientState")
        by_mac = (
            verify_token(keys, state, item.get("subscriptionId")) is not None
            or verify_bound_token(keys, state) is not None
        )
        by_shared = bool(shared) and _any_equal(shared, [str(state or "").encode()])
        if (by_mac or by_shared) and _known_lifecycle(item):
            good.append(item)
    if not good:
        raise _unauthorized("bad_client_state")
    dropped = len(items) - len(good)
    body = json.dumps({"value": good}, separators=(",", ":")).encode() if dropped else None
    return Verified("graph_client_state", None, rejected_items=dropped, body=body)


@functools.lru_cache(maxsize=64)
def _channel_keys(keys: tuple[SecretStr, ...]) -> tuple[bytes, ...]:
    return tuple(key.get_secret_value().encode() for key in keys)


def _none(source: NoVerificationSource, request: Request, now: float) -> Verified:
    return Verified("none", _delivery_id(source, request))


_VERIFIERS: dict[type[Any], Callable[[Any, Request, float], Verified]] = {
    StandardWebhooksSource: _standard,
    HmacSource: _hmac,
    JwtSource: _jwt,
    BearerSource: _bearer,
    BasicSource: _basic,
    GoogleChannelSource: _google,
    GraphSource: _graph,
    NoVerificationSource: _none,
}


def verify(source: SourceConfig, request: Request, now: float) -> Verified:
    """Authenticate `request` for `source` at unix time `now`; `Rejected` if it is not."""
    return _VERIFIERS[type(source)](source, request, now)
