"""What the Google and the Graph sink do alike, each against its fake over loopback: late
versions, conflicts, refused and revoked tokens, throttles, secrets kept out of logs, the
calendar's zone read once. What differs between them is in google/ and graph/."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from connectors.sinks.answer import Answer, Verdict
from connectors.sinks.credentials import MemoryCredentialStore
from streams.dev.fakes.calendar_kit import CalendarFake

from tests.component.calendar.sinks import GOOGLE, GRAPH, WALL_CLOCK, Provider, ctx, stored


@pytest.fixture(params=[GOOGLE, GRAPH], ids=lambda p: p.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


async def test_repeated_delivery_writes_one_event_once(sink, provider, fake, store) -> None:
    for _ in range(3):
        assert (await sink.deliver(provider.record(), ctx(store))).ok
    assert fake.counters["events_created"] == 1
    assert fake.counters["events_patched"] == 0
    assert len(stored(fake)) == 1


async def test_second_upsert_patches_the_same_event(sink, provider, fake, store) -> None:
    first = await sink.deliver(provider.record(), ctx(store))
    update = provider.record(title="Moved", aggregate_version=2)
    second = await sink.deliver(update, ctx(store, key="d-2"))
    assert second.verdict is Verdict.OK
    assert second.provider_id == first.provider_id
    assert fake.counters["events_created"] == 1
    assert fake.counters["events_patched"] == 1
    [event] = stored(fake)
    assert event[provider.title] == "Moved"


async def test_older_version_arriving_late_does_not_overwrite(sink, provider, fake, store) -> None:
    record = provider.record
    await sink.deliver(record(title="v5", aggregate_version=5), ctx(store))
    late = await sink.deliver(record(title="v4", aggregate_version=4), ctx(store, key="d-2"))
    assert late.verdict is Verdict.OK
    assert stored(fake)[0][provider.title] == "v5"
    assert fake.counters["events_patched"] == 0


async def update_through_conflicts(
    sink: Any, provider: Provider, fake: CalendarFake, store: MemoryCredentialStore,
    conflicts: int, title: str,
) -> Answer:  # fmt: skip
    """Deliver the event, then an update of it whose next `conflicts` patches answer 412."""
    await sink.deliver(provider.record(), ctx(store))
    fake.conflict_next = conflicts
    update = provider.record(title=title, aggregate_version=2)
    return await sink.deliver(update, ctx(store, key="d-2"))


async def test_conflict_on_patch_refetches_and_reapplies_once(sink, provider, fake, store) -> None:
    answer = await update_through_conflicts(sink, provider, fake, store, 1, "After conflict")
    assert answer.verdict is Verdict.OK
    assert stored(fake)[0][provider.title] == "After conflict"


async def test_repeated_conflict_is_retry(sink, provider, fake, store) -> None:
    answer = await update_through_conflicts(sink, provider, fake, store, 2, "X")
    assert answer.verdict is Verdict.RETRY
    assert answer.status == 412
    assert answer.error_class == f"{provider.name}.{provider.codes['conflict']}"


async def test_expired_token_is_reauth_then_refresh_succeeds(sink, provider, fake, store) -> None:
    record = provider.record
    assert (await sink.deliver(record(), ctx(store))).ok
    fake.switches.expire_tokens = True
    refused = await sink.deliver(record(title="B", aggregate_version=2), ctx(store, key="d-2"))
    assert refused.verdict is Verdict.REAUTH
    assert refused.error_class == f"{provider.name}.{provider.codes['auth']}"
    update = record(title="B", aggregate_version=2)
    again = await sink.deliver(update, ctx(store, key="d-2", refresh=True))
    assert again.verdict is Verdict.OK
    assert fake.counters["tokens_issued"] == 2
    assert stored(fake)[0][provider.title] == "B"


async def test_revoked_refresh_token_is_reauth(sink, provider, fake, store) -> None:
    fake.switches.revoke_refresh = True
    answer = await sink.deliver(provider.record(), ctx(store, refresh=True))
    assert answer.verdict is Verdict.REAUTH
    assert answer.error_class == f"{provider.name}.oauth.invalid_grant"
    assert fake.counters["events_created"] == 0


async def test_wrong_client_secret_is_fatal(provider, fake, store) -> None:
    connector = provider.connector(fake, secret="nope")
    try:
        answer = await connector.deliver(provider.record(), ctx(store))
    finally:
        await connector.aclose()
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == f"{provider.name}.oauth.invalid_client"


@pytest.mark.parametrize("retry_after_s", [7, 9])
async def test_throttle_is_backpressure_with_retry_after(
    sink, provider, fake, store, retry_after_s: int
) -> None:
    fake.switches.retry_after_s = retry_after_s
    fake.switches.throttle_next = 1
    answer = await sink.deliver(provider.record(), ctx(store))
    assert answer.verdict is Verdict.BACKPRESSURE
    assert answer.error_class == f"{provider.name}.{provider.codes['throttle']}"
    assert answer.retry_after == float(retry_after_s)


async def test_nothing_secret_in_logs_or_answers(sink, provider, fake, store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [await sink.deliver(provider.record(), ctx(store))]
    fake.switches.expire_tokens = True
    answers.append(await sink.deliver(provider.record(), ctx(store)))
    fake.switches.revoke_refresh = True
    answers.append(await sink.deliver(provider.record(), ctx(store, refresh=True)))
    tokens = list(fake.tokens.issued)
    assert len(tokens) == 1
    answers_text = " ".join(f"{a.message} {a.error_class}" for a in answers)
    for leak in [provider.refresh, fake.tokens.client_secret, "Bearer", "ya29.", *tokens]:
        assert leak not in caplog.text + answers_text
    # ours (not httpx's own INFO line, which logs the full URL: reported as a contract gap)
    ours = answers_text + " ".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    for detail in provider.details:
        assert detail not in ours
    assert "external call" in caplog.text  # the audit line is there, without secrets


async def test_the_calendars_zone_is_asked_once(sink, provider, fake, store) -> None:
    for n in range(3):
        wall = provider.record(**{**WALL_CLOCK, "aggregate_version": n + 1})
        await sink.deliver(wall, ctx(store, key=f"d-{n}"))
    assert fake.counters[provider.zone_read] == 1
