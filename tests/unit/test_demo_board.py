"""The `make run` board names each integration by vendor and kind, never by its id."""

from __future__ import annotations

import uuid

from rich.console import Console
from streams.dev.demo import open_links
from streams.dev.demo_view import Watch, health_rows, integration_label

CALENDAR, CRM, ORPHAN = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
HEALTH = {
    CALENDAR: ("calendar", "failing", frozenset({"error_rate"})),
    CRM: ("crm", "healthy", frozenset()),
    "email": ("email", "healthy", frozenset()),
    ORPHAN: ("webhook", "degraded", frozenset()),
}
LABELS = {
    CALENDAR: integration_label("Lumière Photography", "caldav"),
    CRM: integration_label("Lumière Photography", "tave"),
}


def shown(watch: Watch) -> str:
    console = Console(record=True, width=100)
    console.print(watch.board())
    return console.export_text()


def board() -> Watch:
    watch = Watch("127.0.0.1:9", None, {}, lambda user, name: None)  # type: ignore[arg-type]
    watch.health, watch.labels = dict(HEALTH), dict(LABELS)
    return watch


def test_an_integration_is_named_by_its_vendor_and_kind() -> None:
    names = [row[0] for row in health_rows(HEALTH, LABELS)]
    assert "Lumière Photography · CalDAV calendar" in names
    assert "Lumière Photography · Tave CRM" in names


def test_a_personal_channel_is_named_by_its_destination() -> None:
    assert ("email", "email", "healthy", "") in health_rows(HEALTH, LABELS)


def test_an_integration_the_board_cannot_name_is_described_not_shown_by_id() -> None:
    assert ("a webhook integration", "webhook", "degraded", "") in health_rows(HEALTH, LABELS)


def test_the_board_shows_no_integration_id() -> None:
    watch = board()
    try:
        text = shown(watch)
    finally:
        watch.close()
    assert "Lumière Photography · Tave CRM" in text
    assert not any(i[:8] in text for i in (CALENDAR, CRM, ORPHAN))


def test_the_inbox_address_is_not_inside_the_boards_open_box() -> None:
    watch = board()
    watch.links = open_links("http://127.0.0.1:9400/metrics", "http://127.0.0.1:5232/photo/")
    try:
        text = shown(watch)
    finally:
        watch.close()
    assert "#token=" not in text and "/inbox" not in text
