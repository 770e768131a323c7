"""The rest of the wedding week, after the four workflows (`streams.dev.scenario`): what goes
wrong in a real week and how the pipeline copes, played by `make run` against its local
providers. Each chapter changes the database (or a provider) and waits until the pipeline
has shown the outcome; `play_week` returns False naming the first chapter that did not.

  Monday     the photographer's CRM posts two overlapping bookings for one Saturday to the
             ingest gateway: a double booking, reported to the photographer and the couples.
  Tuesday    the photographer's customer webhook endpoint starts failing (503) while form
             responses arrive: retries pile up and the SLA agent turns it red.
  Wednesday  the endpoint is back: the retries deliver and it turns green again.
  Thursday   the photographer's CalDAV app password expires, and the first couple moves the
             wedding to the 26th: the calendar update is refused twice, the integration is
             paused (its record waits) and shows failing.
  Friday     the photographer reconnects the calendar (a new password in the platform's
             database): the sink's probe finds it, the waiting update reaches Radicale.
             In the evening the photographer accepts a private shoot in their own calendar
             app, on Saturday 19 June at noon, over Alex & Sam's booking: the calendar feed
             reads it from Radicale and the double booking reaches the photographer and the
             couple (who learn nothing of the shoot).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from streams.dev.demo_view import Watch

NEW_PASSWORD = "renewed-app-specific-password"


def _state(agent: Any, destination: str) -> set[str]:
    return {h.state for h in agent.last_health.values() if h.destination == destination}


def _results(watch: Watch, destination: str, outcome: str) -> int:
    return watch.outcomes[(destination, outcome)]


def _post(url: str, token: str, body: dict[str, Any], attempts: int = 10) -> int:
    """POST as a CRM does: a 503 (the gateway could not store it yet) is sent again after
    its Retry-After, up to `attempts` times."""
    import json
    import time
    import urllib.error
    import urllib.request

    for attempt in range(attempts):
        request = urllib.request.Request(url, json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == attempts - 1:
                raise
            time.sleep(min(float(exc.headers.get("Retry-After") or 1), 5.0))
    raise AssertionError("unreachable")


def _private_event(collection: str, user: str, password: str) -> None:
    """The vendor's own calendar app writes an event (CalDAV PUT): busy, not ours."""
    import base64
    import urllib.request

    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor app//EN\r\nBEGIN:VEVENT\r\n"
        "UID:private-shoot\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Private shoot\r\n"
        "DTSTART;TZID=Europe/London:20270619T120000\r\n"
        "DTEND;TZID=Europe/London:20270619T140000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        collection.rstrip("/") + "/private-shoot.ics",
        body.encode(),
        method="PUT",
        headers={"Content-Type": "text/calendar", "Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (201, 204), answer.status


def play_week(cur: Any, k: dict[str, str], local: Any, watch: Watch, agent: Any,
              alive: Callable[[], bool], crm: tuple[str, str]) -> bool:  # fmt: skip
    def until(done: Callable[[], bool], timeout: float, what: str) -> bool:
        def check() -> bool:
            watch.show_health(agent.last_health)
            return done()

        return watch.until(check, timeout, what, alive)

    photo = k["photo"]
    watch.chapter("Monday: the photographer's CRM (Tave) sends two bookings for Saturday 19 "
                  "June: Alex & Sam's, and Zoë & Łukasz's that overlaps it")  # fmt: skip
    crm_url, crm_token = crm
    for n, (wedding, couple, start, names) in enumerate(
        ((k["wedding"], k["couple"], "2027-06-19T13:00", None), (str(uuid.uuid4()),
         str(uuid.uuid4()), "2027-06-19T16:00", "Zoë & Łukasz")), start=1):  # fmt: skip
        body = {"event": "booking.created", "sequence": n, "data": {
            "booking_id": f"tave-{n}-{k['wedding'][:8]}", "vendor_id": photo,
            "client_name": names,  # a CRM knows its couples by name; the platform's comes
            "wedding_id": wedding, "client_id": couple, "starts_at": start,  # from routing
            "ends_at": start[:11] + "23:00", "time_zone": "Europe/London"}}  # fmt: skip
        answer = _post(crm_url, crm_token, body)
        watch.say(f"  inbound    POST {crm_url} -> {answer}")
    if not until(lambda: ("booking.conflict_detected", "email", photo) in watch.got, 60,
                 "the double booking reported to the photographer"):  # fmt: skip
        return False

    watch.chapter("Tuesday: the photographer's webhook endpoint answers 503 while six form "
                  "responses arrive")  # fmt: skip
    receiver = local.fake("webhook")
    receiver.switches.fail_next = 1_000_000
    for n in range(6):
        cur.execute(
            "INSERT INTO form_responses (supplier_id, couple_id, client_name, form_name, "
            "question_count) VALUES (%s, %s, 'Alex & Sam', %s, 5)",
            (photo, k["couple"], f"Menu choices {n + 1}"),
        )
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            watch.pump()
            watch.show_health(agent.last_health)
    if not until(lambda: "failing" in _state(agent, "webhook"), 90,
                 "the SLA agent marks the endpoint failing"):  # fmt: skip
        return False

    watch.chapter("Wednesday: the endpoint is back; the retries deliver")
    receiver.switches.fail_next = 0
    if not until(lambda: _state(agent, "webhook") == {"healthy"}
                 and watch.routed_ids <= set(watch.delivered), 180,
                 "every webhook delivered and the endpoint healthy again"):  # fmt: skip
        return False

    watch.chapter("Thursday: the photographer's calendar password expires; the first couple "
                  "moves the wedding to 26 June")  # fmt: skip
    local.servers["radicale"].set_password("photo", NEW_PASSWORD)
    cur.execute("UPDATE wedding_details SET wedding_date = '2027-06-26' WHERE id = %s",
                (k["wedding"],))  # fmt: skip
    if not until(lambda: _results(watch, "calendar", "paused") > 0, 90,
                 "the calendar integration paused after two refusals"):  # fmt: skip
        return False

    watch.chapter("Friday: the photographer reconnects the calendar in the platform")
    cur.execute("UPDATE supplier_integrations SET api_key = %s WHERE supplier_id = %s AND "
                "integration_type = 'caldav'", (NEW_PASSWORD, photo))  # fmt: skip
    delivered_before = _results(watch, "calendar", "delivered")
    if not until(lambda: _results(watch, "calendar", "delivered") > delivered_before
                 and watch.routed_ids <= set(watch.delivered), 120,
                 "the waiting calendar update delivered"):  # fmt: skip
        return False
    if not until(lambda: _state(agent, "calendar") == {"healthy"}, 90,
                 "the calendar integration healthy again"):  # fmt: skip
        return False
    watch.chapter("Friday evening: the photographer puts a private shoot in their own "
                  "calendar app, Saturday 19 June 12:00-14:00, over Alex & Sam's "
                  "booking")  # fmt: skip
    before = watch.by_type["booking.conflict_detected"]
    _private_event(local.calendar_url, "photo", NEW_PASSWORD)
    if not until(lambda: watch.by_type["booking.conflict_detected"] > before
                 and ("booking.conflict_detected", "inapp", k["couple"]) in watch.got, 60,
                 "the private shoot reported as a double booking"):  # fmt: skip
        return False
    watch.chapter("Saturday: the wedding. Every delivery of the week arrived; nothing was lost")
    return True
