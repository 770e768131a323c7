"""The real CalDAV connector against a real Radicale server (and, for answers Radicale never
gives, a scripted aiohttp CalDAV endpoint), over loopback. Events are read back with the
`caldav` client library, not with the connector's own code."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import caldav
import httpx
import pytest
from aiohttp import web
from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.caldav.sink import CalDavConnector, build
from connectors.sinks.answer import Verdict
from connectors.sinks.base import DeliveryContext, SinkEnv
from connectors.sinks.credentials import Credential, Kind, MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy
from streams.app.sinks import read_settings
from streams.dev.fakes.caldav import RadicaleServer
from streams.dev.fakes.kit import FakeProvider, FakeServer

USER, PASSWORD = "vendor", "app-specific-pw-7788"
OTHER_USER, OTHER_PASSWORD = "other", "other-pw-1122"
INTEGRATION = "int-caldav-1"


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    with RadicaleServer(users={USER: PASSWORD, OTHER_USER: OTHER_PASSWORD}) as server:
        yield server


@pytest.fixture
def calendar_name(radicale: RadicaleServer, unique_id: str) -> str:
    name = f"weddings-{unique_id}"
    radicale.make_calendar(USER, name)
    return name


class CachingStore(MemoryCredentialStore):
    """Like the real store: a row read once is served from cache until invalidated."""

    def __init__(self, rows: dict[tuple[str, str], dict[str, Any]]) -> None:
        super().__init__(rows)
        self.cache: dict[tuple[str, str], Credential] = {}
        self.invalidated: list[tuple[str, str]] = []

    async def get(self, kind: Kind, key: str) -> Credential:
        if (kind, key) not in self.cache:
            self.cache[(kind, key)] = await super().get(kind, key)
        return self.cache[(kind, key)]

    def invalidate(self, kind: Kind, key: str) -> None:
        self.invalidated.append((kind, key))
        self.cache.pop((kind, key), None)


def row(
    radicale: RadicaleServer, password: str = PASSWORD, home_user: str = USER
) -> dict[str, Any]:
    return {
        "webhook_url": f"{radicale.url}/{home_user}/",
        "api_key": password,
        "settings": {"username": USER},
    }


def store_for(radicale: RadicaleServer, password: str = PASSWORD) -> CachingStore:
    return CachingStore({("integration", INTEGRATION): row(radicale, password)})


def record(calendar_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_id": "dlv-1",
        "event_id": "evt-1",
        "event_type": "wedding.date_changed",
        "aggregate_id": "wedding-1",
        "aggregate_version": 100,
        "source_ts_ms": 1770000000000,
        "routed_at_ms": 1770000000100,
        "recipient_id": "sup-1",
        "integration_id": INTEGRATION,
        "attempt": 0,
        "provider": "caldav",
        "calendar_id": calendar_id,
        "operation": "upsert",
        "external_event_id": "w0a1b2c3d4e5f6",
        "title": "Wedding: Ann & Bea",
        "description": "Ceremony 14:00",
        "location": "Old Hall",
        "starts_at_ms": 1781269200000,
        "ends_at_ms": 1781301600000,
        "time_zone": "Europe/London",
        "all_day": False,
    }
    return {**base, **overrides}


def ctx(store: MemoryCredentialStore, refresh: bool = False) -> DeliveryContext:
    return DeliveryContext(store, "dlv-1", attempt=0, refresh=refresh)


@pytest.fixture
async def connector(radicale: RadicaleServer, scripted: FakeServer) -> Any:
    c = CalDavConnector(OutboundPolicy.loopback_for_tests(radicale.port, scripted.port))
    yield c
    await c.aclose()


def read_back(radicale: RadicaleServer, name: str) -> list[Any]:
    """The VEVENTs in the collection, read with the caldav library."""
    with caldav.DAVClient(url=radicale.url, username=USER, password=PASSWORD) as client:
        cal = client.calendar(url=f"{radicale.url}/{USER}/{name}/")
        return [e.icalendar_component for e in cal.events()]


# ---- against Radicale -----------------------------------------------------------------------
async def test_create_puts_one_event(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    answer = await connector.deliver(record(calendar_name), ctx(store_for(radicale)))
    assert answer.verdict is Verdict.OK
    assert answer.status == 201
    assert answer.provider_id and answer.provider_id.startswith('"')
    [event] = read_back(radicale, calendar_name)
    assert str(event["uid"]) == "w0a1b2c3d4e5f6"
    assert str(event["summary"]) == "Wedding: Ann & Bea"
    assert str(event["location"]) == "Old Hall"
    assert event["dtstart"].params["TZID"] == "Europe/London"


async def test_update_changes_the_etag_and_the_content(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    store = store_for(radicale)
    first = await connector.deliver(record(calendar_name), ctx(store))
    second = await connector.deliver(
        record(calendar_name, aggregate_version=101, title="Wedding moved: Ann & Bea"), ctx(store)
    )
    assert second.verdict is Verdict.OK
    assert second.provider_id and second.provider_id != first.provider_id
    [event] = read_back(radicale, calendar_name)
    assert str(event["summary"]) == "Wedding moved: Ann & Bea"
    assert int(event["sequence"]) == 1


async def test_repeated_create_makes_no_duplicate_and_no_write(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    store = store_for(radicale)
    first = await connector.deliver(record(calendar_name), ctx(store))
    again = await connector.deliver(record(calendar_name), ctx(store))
    assert again.verdict is Verdict.OK
    assert again.provider_id == first.provider_id  # the stored resource was not rewritten
    assert len(read_back(radicale, calendar_name)) == 1


async def test_an_older_version_never_overwrites_a_newer_one(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    store = store_for(radicale)
    await connector.deliver(record(calendar_name, aggregate_version=200, title="new"), ctx(store))
    late = await connector.deliver(
        record(calendar_name, aggregate_version=150, title="old"), ctx(store)
    )
    assert late.verdict is Verdict.OK
    [event] = read_back(radicale, calendar_name)
    assert str(event["summary"]) == "new"


async def test_all_day_event_is_stored_with_dates(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    rec = record(calendar_name, all_day=True, starts_at_ms=1781218800000, ends_at_ms=1781305200000)
    assert (await connector.deliver(rec, ctx(store_for(radicale)))).verdict is Verdict.OK
    [event] = read_back(radicale, calendar_name)
    assert event["dtstart"].to_ical() == b"20260612"


async def test_delete_removes_the_event_and_a_second_delete_is_ok(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    store = store_for(radicale)
    await connector.deliver(record(calendar_name), ctx(store))
    gone = await connector.deliver(
        record(calendar_name, operation="delete", aggregate_version=101), ctx(store)
    )
    assert gone.verdict is Verdict.OK
    assert read_back(radicale, calendar_name) == []
    again = await connector.deliver(
        record(calendar_name, operation="delete", aggregate_version=101), ctx(store)
    )
    assert again.verdict is Verdict.OK


async def test_wrong_password_is_reauth(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    answer = await connector.deliver(record(calendar_name), ctx(store_for(radicale, "wrong")))
    assert answer.verdict is Verdict.REAUTH
    assert answer.error_class == "caldav.401"
    assert read_back(radicale, calendar_name) == []


async def test_reauth_then_success_after_refresh(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    store = store_for(radicale, "revoked-pw")
    assert (await connector.deliver(record(calendar_name), ctx(store))).verdict is Verdict.REAUTH
    store.set("integration", INTEGRATION, row(radicale))  # the vendor reconnects
    assert (await connector.deliver(record(calendar_name), ctx(store))).verdict is Verdict.REAUTH
    refreshed = await connector.deliver(record(calendar_name), ctx(store, refresh=True))
    assert refreshed.verdict is Verdict.OK
    assert store.invalidated == [("integration", INTEGRATION)]
    assert len(read_back(radicale, calendar_name)) == 1


async def test_reauth_failing_after_refresh_stays_reauth(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    store = store_for(radicale, "still-wrong")
    answer = await connector.deliver(record(calendar_name), ctx(store, refresh=True))
    assert answer.verdict is Verdict.REAUTH
    assert store.invalidated == [("integration", INTEGRATION)]


async def test_another_users_calendar_is_forbidden_and_fatal(
    radicale: RadicaleServer, connector: CalDavConnector, unique_id: str
) -> None:
    name = f"private-{unique_id}"
    radicale.make_calendar(OTHER_USER, name, OTHER_PASSWORD)
    store = CachingStore({("integration", INTEGRATION): row(radicale, home_user=OTHER_USER)})
    answer = await connector.deliver(record(name), ctx(store))
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "caldav.403"


async def test_same_uid_under_another_name_is_a_fatal_uid_conflict(
    radicale: RadicaleServer, calendar_name: str, connector: CalDavConnector
) -> None:
    ours = (await connector.deliver(record(calendar_name), ctx(store_for(radicale)))).ok
    assert ours
    ics = httpx.get(
        f"{radicale.url}/{USER}/{calendar_name}/w0a1b2c3d4e5f6.ics", auth=(USER, PASSWORD)
    ).content
    httpx.delete(f"{radicale.url}/{USER}/{calendar_name}/w0a1b2c3d4e5f6.ics", auth=(USER, PASSWORD))
    put = httpx.put(
        f"{radicale.url}/{USER}/{calendar_name}/someone-else.ics",
        content=ics,
        headers={"Content-Type": "text/calendar"},
        auth=(USER, PASSWORD),
    )
    assert put.status_code == 201
    answer = await connector.deliver(record(calendar_name), ctx(store_for(radicale)))
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "caldav.no_uid_conflict"


async def test_calendar_on_another_host_is_refused_before_any_call(
    radicale: RadicaleServer, connector: CalDavConnector
) -> None:
    answer = await connector.deliver(
        record("https://evil.example/vendor/cal/"), ctx(store_for(radicale))
    )
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "caldav.collection_refused"


async def test_loopback_is_refused_by_the_default_policy(
    radicale: RadicaleServer, calendar_name: str
) -> None:
    c = CalDavConnector(OutboundPolicy())
    answer = await c.deliver(record(calendar_name), ctx(store_for(radicale)))
    await c.aclose()
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "caldav.refused"


async def test_connection_refused_is_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    connector = CalDavConnector(OutboundPolicy.loopback_for_tests(closed))
    store = MemoryCredentialStore(
        {
            ("integration", INTEGRATION): {
                "webhook_url": f"http://127.0.0.1:{closed}/home/",
                "api_key": PASSWORD,
                "settings": {"username": USER},
            }
        }
    )
    answer = await connector.deliver(record("primary"), ctx(store))
    await connector.aclose()
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "caldav.connect"


async def test_nothing_secret_in_logs_or_answers(
    radicale: RadicaleServer,
    calendar_name: str,
    connector: CalDavConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        await connector.deliver(record(calendar_name), ctx(store_for(radicale))),
        await connector.deliver(record(calendar_name), ctx(store_for(radicale, "bad-pw-xyz"))),
    ]
    audit = [r.getMessage() for r in caplog.records if r.name == "wedsync.audit"]
    assert any("target=calendar:int-caldav-1 method=PUT" in line for line in audit)
    for line in audit:
        assert calendar_name not in line  # never the path
    for text in [r.getMessage() for r in caplog.records] + [repr(a) for a in answers]:
        assert PASSWORD not in text
        assert "bad-pw-xyz" not in text


# ---- answers Radicale never gives: a scripted CalDAV endpoint --------------------------------
class ScriptedCalDav(FakeProvider):
    """Every create answers 412, every GET an event with an ETag, every If-Match PUT 412
    (the event keeps changing); the kit's switches inject 429/5xx first."""

    name = "scripted-caldav"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        injected = self.injected()
        if injected == "throttle":
            return web.Response(
                status=429, headers={"Retry-After": str(self.switches.retry_after_s)}
            )
        if injected == "fail":
            return web.Response(status=self.switches.fail_status)
        self.counters[request.method] += 1
        if request.method == "GET":
            body = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            return web.Response(body=body, headers={"ETag": f'"v{self.counters["GET"]}"'})
        if request.method == "PUT" and "If-Match" in request.headers:
            self.counters["if_match_puts"] += 1
        return web.Response(status=412)


@pytest.fixture
def scripted() -> Iterator[FakeServer]:
    with FakeServer(ScriptedCalDav()) as server:
        yield server


def scripted_store(server: FakeServer) -> MemoryCredentialStore:
    return MemoryCredentialStore(
        {
            ("integration", INTEGRATION): {
                "webhook_url": f"{server.url}/home/",
                "api_key": PASSWORD,
                "settings": {"username": USER},
            }
        }
    )


async def test_412_twice_after_refetch_is_retry(
    scripted: FakeServer, connector: CalDavConnector
) -> None:
    answer = await connector.deliver(record("primary"), ctx(scripted_store(scripted)))
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == "caldav.412"
    counters = scripted.provider.counters
    assert (counters["GET"], counters["if_match_puts"], counters["PUT"]) == (2, 2, 3)


async def test_429_is_backpressure_with_retry_after(
    scripted: FakeServer, connector: CalDavConnector
) -> None:
    scripted.provider.switches.throttle_next = 1
    scripted.provider.switches.retry_after_s = 7.0
    answer = await connector.deliver(record("primary"), ctx(scripted_store(scripted)))
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 503, 507])
async def test_server_errors_are_retry(
    scripted: FakeServer, connector: CalDavConnector, status: int
) -> None:
    scripted.provider.switches.fail_next = 1
    scripted.provider.switches.fail_status = status
    answer = await connector.deliver(record("primary"), ctx(scripted_store(scripted)))
    assert answer.verdict is Verdict.RETRY
    assert answer.error_class == f"caldav.{status}"


# ---- shape, build, the fake ------------------------------------------------------------------
def test_target_limit_and_credential_key() -> None:
    c = CalDavConnector(OutboundPolicy(), CalDavConfig(concurrency=3))
    rec = record("primary")
    assert c.target(rec) == "calendar:int-caldav-1"
    key, limits = c.limit(rec)
    assert key == "caldav:int-caldav-1"
    assert limits.concurrency == 3
    assert c.credential_key(rec) == "integration:int-caldav-1"
    assert CalDavConnector(OutboundPolicy()).limit(rec)[1].concurrency == 5


def test_build_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_CALDAV_CONCURRENCY", "2")
    monkeypatch.setenv("WEDSYNC_CALDAV_DEFAULT_HOME_URL", "https://caldav.example/home/")
    c = build(SinkEnv(OutboundPolicy(), MemoryCredentialStore(), settings=read_settings))
    assert c.config.concurrency == 2
    assert c.config.default_home_url == "https://caldav.example/home/"


def test_radicale_fake_stops_and_frees_its_port() -> None:
    server = RadicaleServer().start()
    try:
        url = server.make_calendar("anyone", "cal")
        assert server.make_calendar("anyone", "cal") == url  # exists: still fine
        assert httpx.get(url, timeout=5.0).status_code == 200  # auth none: any user
    finally:
        server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=1.0)
