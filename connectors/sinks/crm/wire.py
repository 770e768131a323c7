"""Pure pieces of the CRM sink: one `CrmClient` per crm_kind (request building and answer
classification), auth headers, and the error-code tables. No I/O.

Classification, in order (`JsonPostClient.classify`):

1. 2xx -> ok, `provider_id` from the answer body's ``id`` (or ``data.id``);
2. a 4xx/5xx whose body names an error code in the client's `error_codes` table -> that
   verdict, error_class ``<kind>.<code>``; a REAUTH code counts only on a 401 (a 403 saying
   "invalid key" is a permission problem: fatal, by step 4);
3. 409 whose body says duplicate / already exists -> ok (a retry of a create that landed);
4. anything else -> `answer.classify_http_status` with prefix ``crm``: 429 and 503 with
   Retry-After backpressure, 408/425/5xx retry, 401 re-auth, 410 disable, 3xx fatal
   (redirects are never followed), other 4xx fatal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from connectors.sinks.answer import (
    Answer,
    Verdict,
    backpressure,
    classify_http_status,
    disable,
    fatal,
    ok,
    parse_retry_after,
    reauth,
    retry,
)

SCHEMES = frozenset({"bearer", "api_key_header", "basic", "none"})

# Codes every JSON CRM here may answer with (the generic webhook shape).
COMMON_CODES: Mapping[str, Verdict] = {
    "duplicate": Verdict.OK,
    "already_exists": Verdict.OK,
    "invalid_api_key": Verdict.REAUTH,
    "unauthorized": Verdict.REAUTH,
    "rate_limited": Verdict.BACKPRESSURE,
    "validation_error": Verdict.FATAL,
}
VENUE_CODES: Mapping[str, Verdict] = {
    **COMMON_CODES,
    "duplicate_booking": Verdict.OK,
    "booking_not_found": Verdict.FATAL,
    "venue_inactive": Verdict.DISABLE,
}
TAVE_CODES: Mapping[str, Verdict] = {
    "duplicate_lead": Verdict.OK,
    "duplicate_job": Verdict.OK,
    "invalid_api_key": Verdict.REAUTH,
    "rate_limited": Verdict.BACKPRESSURE,
    "validation_failed": Verdict.FATAL,
    "job_not_found": Verdict.FATAL,
    "studio_disabled": Verdict.DISABLE,
}
HONEYBOOK_CODES: Mapping[str, Verdict] = {
    "project_exists": Verdict.OK,
    "invalid_token": Verdict.REAUTH,
    "token_expired": Verdict.REAUTH,
    "rate_limit_exceeded": Verdict.BACKPRESSURE,
    "invalid_request": Verdict.FATAL,
    "account_suspended": Verdict.DISABLE,
}
_DUPLICATE_WORDS = ("duplicate", "already exists", "already_exists")


@dataclass(frozen=True)
class CrmAuth:
    """How to authenticate one call; `api_key` is the secret (never shown in repr)."""

    scheme: str
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None


@dataclass(frozen=True)
class CrmRequest:
    """One call: `method` `url` with `headers` and the JSON `body`."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: dict[str, Any]

    def content(self) -> bytes:
        """The body as sent: compact JSON, UTF-8."""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


class CrmClient(Protocol):
    """What the sink needs of one CRM protocol."""

    kind: str

    def scheme(self, record: Mapping[str, Any]) -> str:
        """The auth scheme this call uses (the provider's own, or the record's)."""
        ...

    def build(
        self,
        record: Mapping[str, Any],
        auth: CrmAuth,
        idempotency_key: str,
        base_url: str | None = None,
    ) -> CrmRequest:
        """The request for `record`; `base_url` overrides the record's base, if any."""
        ...

    def classify(self, status: int, body: Any, retry_after: str | None = None) -> Answer:
        """What the provider's answer means (see the module docstring)."""
        ...


def auth_headers(auth: CrmAuth, key_header: str) -> dict[str, str]:
    """The auth headers of `auth.scheme`; api_key_header uses `key_header`. ValueError
    (naming no value) when the scheme needs a secret or username that is missing."""
    if auth.scheme == "none":
        return {}
    if not auth.api_key:
        raise ValueError(f"auth scheme {auth.scheme} needs an api_key")
    if auth.scheme == "bearer":
        return {"Authorization": f"Bearer {auth.api_key}"}
    if auth.scheme == "api_key_header":
        return {key_header: auth.api_key}
    if auth.scheme == "basic":
        if not auth.username:
            raise ValueError("basic auth needs settings.username")
        token = base64.b64encode(f"{auth.username}:{auth.api_key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    raise ValueError(f"unknown auth scheme {auth.scheme!r}")


def error_code(body: Any) -> str | None:
    """The provider's error code in an answer body: ``code``, ``error_code``, ``error`` (a
    string, or an object with ``code``/``type``), lower-cased; None when there is none."""
    if not isinstance(body, Mapping):
        return None
    for key in ("code", "error_code", "error"):
        value = body.get(key)
        if isinstance(value, Mapping):
            value = value.get("code") or value.get("type")
        if isinstance(value, str) and value:
            return value.strip().lower()
    return None


def provider_id(body: Any) -> str | None:
    """The created/updated item's id: body ``id`` or ``data.id`` (text or number)."""
    if not isinstance(body, Mapping):
        return None
    value = body.get("id")
    if value is None and isinstance(body.get("data"), Mapping):
        value = body["data"].get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def says_duplicate(body: Any) -> bool:
    """Whether an answer body says the item already exists."""
    text = json.dumps(body).lower() if not isinstance(body, str) else body.lower()
    return any(word in text for word in _DUPLICATE_WORDS)


def _join(base: str, path: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(path) else base + path


class JsonPostClient:
    """A JSON POST of the record's payload to its endpoint_url with the record's auth
    scheme (light_blue, custom). Subclasses change the URL, body, auth and code table."""

    kind = "crm"
    fixed_scheme: ClassVar[str | None] = None
    key_header: ClassVar[str] = "X-API-Key"
    error_codes: ClassVar[Mapping[str, Verdict]] = COMMON_CODES

    def __init__(self, kind: str | None = None) -> None:
        if kind is not None:
            self.kind = kind

    def scheme(self, record: Mapping[str, Any]) -> str:
        """The provider's fixed scheme, else the record's `auth_scheme`."""
        return self.fixed_scheme or str(record.get("auth_scheme") or "none")

    def url(self, record: Mapping[str, Any], base_url: str | None) -> str:
        """Where to POST: the record's endpoint_url (or the override)."""
        return base_url or str(record["endpoint_url"])

    def body(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body: the record's payload as routing built it."""
        return dict(record.get("payload") or {})

    def build(
        self,
        record: Mapping[str, Any],
        auth: CrmAuth,
        idempotency_key: str,
        base_url: str | None = None,
    ) -> CrmRequest:
        """POST `url()` with `body()`, auth headers, Content-Type and Idempotency-Key."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": idempotency_key,
            **auth_headers(auth, self.key_header),
        }
        return CrmRequest("POST", self.url(record, base_url), headers, self.body(record))

    def classify(self, status: int, body: Any, retry_after: str | None = None) -> Answer:
        """See the module docstring."""
        wait = parse_retry_after(retry_after)
        if 200 <= status < 300:
            return ok(status, provider_id(body))
        code = error_code(body)
        verdict = self.error_codes.get(code) if code is not None and status >= 400 else None
        if verdict is not None and not (verdict is Verdict.REAUTH and status != 401):
            return _answer(verdict, f"{self.kind}.{code}", status, wait, provider_id(body))
        if status == 409 and says_duplicate(body):
            return ok(status, provider_id(body))
        return classify_http_status(status, wait, prefix="crm")


def _answer(
    verdict: Verdict, error_class: str, status: int, wait: float | None, pid: str | None
) -> Answer:
    if verdict is Verdict.OK:
        return ok(status, pid)
    if verdict is Verdict.BACKPRESSURE:
        return backpressure(error_class, wait, "the CRM asked to slow down", status=status)
    if verdict is Verdict.REAUTH:
        return reauth(error_class, "the CRM refused the API key", status=status)
    if verdict is Verdict.DISABLE:
        return disable(error_class, "the CRM account is no longer usable", status=status)
    if verdict is Verdict.RETRY:
        return retry(error_class, status=status)
    return fatal(error_class, "the CRM refused the request", status=status)


class PhotographyCrmClient(JsonPostClient):
    """The generic photography-CRM webhook: Bearer (unless the integration set another
    scheme), the nine-field payload as JSON."""

    kind = "photography_crm"


class VenueBookingClient(JsonPostClient):
    """The venue booking system: ``X-Venue-API-Key`` for api_key_header (routing's default
    for venues), the nine-field booking payload."""

    kind = "venue_booking"
    key_header = "X-Venue-API-Key"
    error_codes = VENUE_CODES


class TaveClient(JsonPostClient):
    """A Tave-style API (general public shape; the full API is private): ``X-Api-Key``,
    POST {base}/api/v2/leads for a new inquiry (form_response), else {base}/api/v2/jobs
    (the job matched by external_id = wedding id)."""

    kind = "tave"
    fixed_scheme = "api_key_header"
    key_header = "X-Api-Key"
    error_codes = TAVE_CODES

    def url(self, record: Mapping[str, Any], base_url: str | None) -> str:
        payload = record.get("payload") or {}
        path = "/api/v2/leads" if payload.get("event_type") == "form_response" else "/api/v2/jobs"
        base = base_url or str(record["endpoint_url"])
        for known in ("/api/v2/leads", "/api/v2/jobs"):
            if base.rstrip("/").endswith(known):
                base = base.rstrip("/")[: -len(known)]
        return _join(base, path)

    def body(self, record: Mapping[str, Any]) -> dict[str, Any]:
        p = record.get("payload") or {}
        return {
            "external_id": p.get("wedding_id"),
            "job_type": "Wedding",
            "event_date": p.get("wedding_date"),
            "ceremony_time": p.get("ceremony_time"),
            "client": {"name": p.get("client_name")},
            "venue": {"name": p.get("venue_name")},
            "guest_count": p.get("guest_count"),
            "notes": p.get("photographer_notes"),
            "source": "wedsync",
            "source_event": p.get("event_type"),
            "updated_at": p.get("updated_at"),
        }


class HoneyBookClient(JsonPostClient):
    """A HoneyBook-style API (general public shape; the full API is private): Bearer,
    POST {base}/v1/projects, the project matched by external_reference = wedding id."""

    kind = "honeybook"
    fixed_scheme = "bearer"
    error_codes = HONEYBOOK_CODES

    def url(self, record: Mapping[str, Any], base_url: str | None) -> str:
        return _join(base_url or str(record["endpoint_url"]), "/v1/projects")

    def body(self, record: Mapping[str, Any]) -> dict[str, Any]:
        p = record.get("payload") or {}
        client = p.get("client_name")
        return {
            "external_reference": p.get("wedding_id"),
            "project_type": "wedding",
            "name": f"{client} wedding" if client else "Wedding",
            "event_date": p.get("wedding_date"),
            "client": {"full_name": client},
            "location": {"name": p.get("venue_name")},
            "guest_count": p.get("guest_count"),
            "notes": p.get("photographer_notes"),
            "metadata": {
                "source": "wedsync",
                "source_event": p.get("event_type"),
                "ceremony_time": p.get("ceremony_time"),
                "updated_at": p.get("updated_at"),
            },
        }


CLIENTS: Mapping[str, CrmClient] = {
    "photography_crm": PhotographyCrmClient(),
    "venue_booking": VenueBookingClient(),
    "tave": TaveClient(),
    "honeybook": HoneyBookClient(),
    "light_blue": JsonPostClient("light_blue"),
    "custom": JsonPostClient("custom"),
}
