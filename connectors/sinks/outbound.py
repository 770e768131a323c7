"""The only way a sink reaches the outside world.

Every HTTP call a connector makes goes through `http_client()` (httpx) or `aiohttp_session()`
(an `OutboundSession`, for the webhook sink and slack-sdk); both end in one aiohttp session
that enforces the `OutboundPolicy` on every call:

- https only, unless the host and port are allow-listed for plain http (`allow_http`,
  WEDSYNC_SINK_OUTBOUND_ALLOW_HTTP_HOSTS); a numeric host not written canonically
  (``127.1``, ``2130706433``, ``0x7f.1``) is refused whatever it means;
- every connection's address and port are checked when the socket is made (the connector's
  socket factory), for a resolved name and a literal address alike: private, loopback,
  link-local, site-local, multicast, reserved and unspecified addresses, and IPv6 forms
  carrying one (IPv4-mapped/compatible, NAT64, 6to4, Teredo), are refused unless an
  allow-list entry names the address (or its network) and the port (`allow_networks`,
  WEDSYNC_SINK_OUTBOUND_ALLOW_NETWORKS). A name must resolve to allowed addresses only;
- redirects are never followed, whatever the caller asks (a 3xx is returned as an answer;
  the connectors classify it fatal);
- one deadline for the whole answer (connect, send, headers, body): the caller's timeout or
  `read_timeout_s`, whichever is shorter; the connect step alone within `connect_timeout_s`;
- at most `max_answer_bytes` of any answer body are read, decoded size included (gzip and
  deflate are decoded here, bounded; other encodings are not read): past it the reading
  stops, the connection is dropped and the answer is classified on its status;
- one audit log line per call (`wedsync.audit`), refused calls included: destination,
  target id, method, host, status (or error class), latency to the end of the body. Never
  the path or query (webhook URLs carry secrets), never a payload.

A refused call raises `OutboundRefused` (a `FatalError`: the record goes to the dead-letter
topic with the reason; fix the endpoint URL or the allow-list, then replay).
"""

from __future__ import annotations

import logging
import socket
import time
import zlib
from typing import Any

import aiohttp
import httpx

from connectors.sinks.outbound_policy import (
    OutboundPolicy,
    audit,
    audit_scope,
    check_address,
    check_url,
    host_of,
    resolve_checked,
)
from connectors.sinks.outbound_rules import AllowEntry, OutboundRefused

# httpx logs every request's full URL at INFO and httpcore its connections at DEBUG: webhook
# URLs carry secrets in their path, so neither may log below WARNING. Our audit line is the
# record of each call.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


_MEMO = 4096  # URLs an OutboundSession remembers as checked


# ---- the session -----------------------------------------------------------------------
class CappedResponse(aiohttp.ClientResponse):
    """An aiohttp response whose body `OutboundSession` has read (at most the policy's
    `max_answer_bytes`, decoded): `read()`, `text()` and `json()` answer from it.
    `truncated` says the answer was longer (or in an encoding not decoded here)."""

    truncated: bool = False

    async def read(self) -> bytes:
        if self._body is None:
            raise RuntimeError("an outbound answer is read by OutboundSession only")
        return self._body

    async def read_capped(self, cap: int) -> None:
        """Read and decode at most `cap` bytes of body, then drop or release the connection."""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        decoder = _decoder(encoding)
        out, wire, done = bytearray(), 0, False
        try:
            while len(out) <= cap and wire <= cap:
                chunk = await self.content.read(16 * 1024)
                if not chunk:
                    done = True
                    break
                wire += len(chunk)
                if decoder is None:
                    if encoding not in ("", "identity"):
                        break  # not decodable here: nothing of it is read
                    out += chunk
                    continue
                data = chunk
                while data and len(out) <= cap and not decoder.eof:
                    out += decoder.decompress(data, cap + 1 - len(out))
                    data = decoder.unconsumed_tail
                if decoder.eof:
                    done = True
                    break
        except BaseException:
            self.close()
            raise
        self._body = bytes(out[:cap])
        self.truncated = not done or len(out) > cap
        if self.truncated:
            self.close()  # the rest is never read: this connection is not reused
        else:
            self.release()


def _decoder(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    return None


class OutboundSession:
    """The policy's aiohttp session: `request()` (and `get`/`post`/...) return a response
    already read and checked, usable as ``async with session.request(...) as response`` or
    awaited. A stand-in for `aiohttp.ClientSession` for the calls slack-sdk and the
    webhook sink make; there is no other way to reach the inner session."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # URL text -> its host, for URLs `check_url` passed under this (frozen) policy: the
        # check is a pure function of the two, and a sink calls the same few URLs all day
        self._passed: dict[str, str] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def closed(self) -> bool:
        """Always False: slack-sdk replaces a closed session with an aiohttp session of its
        own, which no check guards. A call on a closed OutboundSession raises instead."""
        return False

    def _inner(self) -> aiohttp.ClientSession:
        if self._closed:
            raise aiohttp.ClientConnectionError("the outbound session is closed")  # retried
        if self._session is None:
            self._session = _inner_session(self.policy)
        return self._session

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> OutboundSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def request(self, method: str, url: Any, **kwargs: Any) -> _Call:
        return _Call(self, method, url, kwargs)

    def get(self, url: Any, **kwargs: Any) -> _Call:
        return self.request("GET", url, **kwargs)

    def post(self, url: Any, **kwargs: Any) -> _Call:
        return self.request("POST", url, **kwargs)

    def put(self, url: Any, **kwargs: Any) -> _Call:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: Any, **kwargs: Any) -> _Call:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: Any, **kwargs: Any) -> _Call:
        return self.request("DELETE", url, **kwargs)

    async def send(self, method: str, url: Any, **kwargs: Any) -> CappedResponse:
        """One policy-checked call; the response's body is read (capped) when it returns.
        Raises OutboundRefused, TimeoutError (the deadline) or aiohttp.ClientError."""
        started = time.monotonic()
        host = self._passed.get(url) if isinstance(url, str) else None
        checked = host is not None
        if host is None:
            host = host_of(url)
        deadline = self.policy.deadline(_requested_s(kwargs.pop("timeout", None)))
        kwargs.pop("allow_redirects", None)
        kwargs.pop("max_redirects", None)
        proxy = kwargs.pop("proxy", None)
        kwargs["headers"] = _with_encodings(kwargs.pop("headers", None))
        try:
            if proxy is not None:
                raise OutboundRefused("a proxy was asked for: outbound calls go direct, checked")
            if not checked:
                check_url(url, self.policy)
                self._remember(url, host)
            response = await self._inner().request(
                method, url, allow_redirects=False, timeout=self._timeout(deadline), **kwargs
            )
            assert isinstance(response, CappedResponse)
            await response.read_capped(self.policy.max_answer_bytes)
        except OutboundRefused:
            audit(method, host, "refused", started)
            raise
        except aiohttp.ConnectionTimeoutError:
            audit(method, host, "connect_timeout", started)
            raise
        except TimeoutError as exc:
            audit(method, host, "timeout", started)
            raise TimeoutError(f"no complete answer within {deadline:g} s") from exc
        except BaseException as exc:
            audit(method, host, type(exc).__name__, started)
            raise
        audit(method, host, response.status, started)
        return response

    def _timeout(self, deadline: float) -> aiohttp.ClientTimeout:
        """aiohttp's own timer for the whole answer (connect, send, headers, body: its body
        reads run under it too), never rounded up (aiohttp rounds long ones to a second)."""
        timeout = self._timeouts.get(deadline)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=deadline, sock_connect=self.policy.connect_timeout_s,
                ceil_threshold=float("inf"),
            )  # fmt: skip
            if len(self._timeouts) >= _MEMO:
                self._timeouts.clear()
            self._timeouts[deadline] = timeout
        return timeout

    def _remember(self, url: object, host: str) -> None:
        """Keep `url` as checked (a bounded memo: emptied when it holds `_MEMO` URLs)."""
        if not isinstance(url, str):
            return
        if len(self._passed) >= _MEMO:
            self._passed.clear()
        self._passed[url] = host


class _Call:
    """What `OutboundSession.request` returns: awaitable, or an async context manager."""

    def __init__(
        self, session: OutboundSession, method: str, url: Any, kwargs: dict[str, Any]
    ) -> None:
        self._args = (session, method, url, kwargs)

    def __await__(self) -> Any:
        session, method, url, kwargs = self._args
        return session.send(method, url, **kwargs).__await__()

    async def __aenter__(self) -> CappedResponse:
        session, method, url, kwargs = self._args
        return await session.send(method, url, **kwargs)

    async def __aexit__(self, *exc: object) -> None:
        return None


def _with_encodings(headers: Any) -> list[tuple[str, str]]:
    """The caller's headers, asking only for the encodings `read_capped` decodes."""
    items = headers.items() if hasattr(headers, "items") else (headers or ())
    kept = [(str(k), str(v)) for k, v in items if str(k).lower() != "accept-encoding"]
    return [*kept, ("Accept-Encoding", "gzip, deflate")]


def _requested_s(timeout: object) -> float | None:
    """The whole-answer seconds a caller asked for: an aiohttp ClientTimeout's total (or,
    failing that, its sock_read), or a number."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout.total or timeout.sock_read
    if isinstance(timeout, int | float):
        return float(timeout)
    return None


def _inner_session(policy: OutboundPolicy) -> aiohttp.ClientSession:
    """The aiohttp session under `OutboundSession`: every socket it opens is checked."""

    def checked_socket(addr_info: Any) -> socket.socket:
        family, type_, proto, _, address = addr_info
        check_address(str(address[0]), policy, int(address[1]))
        return socket.socket(family=family, type=type_, proto=proto)

    connector = aiohttp.TCPConnector(
        resolver=_CheckedResolver(policy),
        socket_factory=checked_socket,
        limit=policy.max_connections,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=policy.connect_timeout_s),
        response_class=CappedResponse,
        auto_decompress=False,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # one session serves every tenant: no cookies
    )


class _CheckedResolver(aiohttp.abc.AbstractResolver):
    """Resolves a name and refuses it unless every address it has is allowed."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        addresses = await resolve_checked(host, port, self._policy)
        return [
            aiohttp.abc.ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None


def aiohttp_session(policy: OutboundPolicy) -> OutboundSession:
    """The policy's session, for clients built on aiohttp (slack-sdk) and the webhook sink."""
    return OutboundSession(policy)


# ---- httpx -----------------------------------------------------------------------------
class _Transport(httpx.AsyncBaseTransport):
    """httpx over `OutboundSession`: the answer is read (capped) inside the deadline and
    handed to httpx decoded, whole."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._session = OutboundSession(policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        try:
            response = await self._session.send(
                request.method,
                str(request.url),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=await request.aread(),
                timeout=timeouts.get("read"),
            )
        except OutboundRefused:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(type(exc).__name__, request=request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(type(exc).__name__, request=request) from exc
        headers = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status,
            headers=headers,
            content=await response.read(),
            request=request,
            extensions={"wedsync_truncated": response.truncated},
        )

    async def aclose(self) -> None:
        await self._session.close()


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: one client serves every tenant of a sink, so a cookie one
    integration's endpoint set must never go with another's call (and reading every answer's
    Set-Cookie through http.cookiejar cost about 5 % of a CRM sink's CPU)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _Client(httpx.AsyncClient):
    """httpx's client, except that a URL httpx itself cannot take (``0177.0.0.1``, a scheme
    it has no transport for) is refused like any other: OutboundRefused, audited; and that
    it keeps no cookies (`_NoCookies`)."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy
        self._cookies = _NoCookies()  # httpx's setter wraps whatever it is given in Cookies

    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        started = time.monotonic()
        try:
            request = super().build_request(method, url, **kwargs)
            check_url(request.url, self._policy)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, OutboundRefused) as exc:
            host = host_of(url)
            audit(method, host, "refused", started)
            if isinstance(exc, OutboundRefused):
                raise
            check_url(url, self._policy)  # its reason, when it has one
            raise OutboundRefused(f"the endpoint URL is not valid: {exc}") from None
        return request


def http_client(policy: OutboundPolicy, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that can only make policy-checked calls (never follows redirects).

    Connectors write httpx; the bytes travel through aiohttp (`OutboundSession`, which holds
    the checks). httpcore's own pool served 50 concurrent calls to a 10 ms endpoint at about
    110 a second on these machines, aiohttp at about 3,000 (bench/sinks.py)."""
    return _Client(
        policy,
        transport=_Transport(policy),
        timeout=httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s),
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )


__all__ = [
    "AllowEntry",
    "CappedResponse",
    "OutboundPolicy",
    "OutboundRefused",
    "OutboundSession",
    "audit",
    "audit_scope",
    "check_address",
    "check_url",
    "http_client",
    "resolve_checked",
]
