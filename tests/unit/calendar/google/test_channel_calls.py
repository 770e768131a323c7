"""GoogleChannelCalls' answers Google's fake does not give (httpx MockTransport)."""

from __future__ import annotations

import httpx
import pytest
from connectors.calendar.feed_errors import CalendarGone, FetchFailed
from connectors.calendar.google.channels import GoogleChannelCalls
from streams.logic.calendar.rounds import CalendarRef

CALENDAR = CalendarRef("google", "int-1", "supplier-1", "gone@example.com")
NOT_FOUND = {"error": {"code": 404, "errors": [{"domain": "global", "reason": "notFound"}]}}


def calls(answer: httpx.Response, seen: list[httpx.Request] | None = None) -> GoogleChannelCalls:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return answer

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GoogleChannelCalls(client, "ya29.secret-token", api_base_url="https://g.test")


async def test_watch_on_a_deleted_calendar_means_it_is_gone() -> None:
    with pytest.raises(CalendarGone):
        await calls(httpx.Response(404, json=NOT_FOUND)).watch(CALENDAR, "c", "t", "https://a", 60)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, text="<html>"), httpx.Response(200, json={"kind": "api#channel"})],
)
async def test_an_unreadable_watch_answer_is_a_transient_failure(answer: httpx.Response) -> None:
    with pytest.raises(FetchFailed, match="unreadable watch answer"):
        await calls(answer).watch(CALENDAR, "c", "t", "https://a", 60)


async def test_watch_sends_the_bearer_token_and_the_body() -> None:
    seen: list[httpx.Request] = []
    body = {"id": "c", "resourceId": "r", "expiration": "1000"}
    await calls(httpx.Response(200, json=body), seen).watch(CALENDAR, "c", "t", "https://a", 60)
    [request] = seen
    assert request.headers["authorization"] == "Bearer ya29.secret-token"
    assert request.url.raw_path == b"/calendar/v3/calendars/gone%40example.com/events/watch"


async def test_an_error_never_quotes_the_access_token() -> None:
    with pytest.raises(CalendarGone) as info:
        await calls(httpx.Response(404, json=NOT_FOUND)).watch(CALENDAR, "c", "t", "https://a", 60)
    assert "secret-token" not in str(info.value)
