"""The inbox page (`/inbox`) in headless Chromium against a real gateway and broker.

Chromium and its driver come from Debian (`make system-deps`); when they cannot start, these
tests fail, they are not skipped. The page is read through its `data-testid` attributes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.integration.inapp.support import (
    Client,
    GatewayThread,
    Notifier,
    free_port,
    gateway,
    token,
)

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
RELOADED = "some notifications may be missing; reloaded"

# What the page shows, in one round trip (no stale elements while it re-renders).
READ_PAGE = """
const one = (id) => document.querySelector(`[data-testid="${id}"]`);
const all = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)];
const shown = (node) => (node.hidden ? "" : node.textContent);
const text = (li, id) => li.querySelector(`[data-testid="${id}"]`).textContent;
return {
  status: one("status").textContent,
  note: shown(one("note")),
  error: shown(one("error")),
  login_form: !one("login-form").hidden,
  presence: all("presence-user").map((li) => li.dataset.user),
  people: all("presence-user").map((li) => li.textContent),
  user: one("user").textContent,
  notifications: all("notification").map((li) => ({
    id: li.dataset.id, seen: li.dataset.seen === "true", read: li.dataset.read === "true",
    title: text(li, "title"), body: text(li, "body"),
  })),
};
"""


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """Headless Chromium; the test fails (with what to do) when it cannot start."""
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # WebDriverException, or OSError when the driver is missing
        pytest.fail(
            f"headless Chromium did not start ({CHROMIUM}, {CHROMEDRIVER}): {exc}\n"
            "install it with `make system-deps` (Debian's chromium and chromium-driver)",
            pytrace=False,
        )
    try:
        yield driver
    finally:
        driver.quit()


class Inbox:
    """The inbox page in a browser."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    def open(self, g: GatewayThread, tok: str, **fragment: str) -> None:
        base = g.url.replace("ws://", "http://").removesuffix("/ws")
        self.driver.get(f"{base}/inbox#{urlencode({'token': tok, **fragment})}")

    def read(self) -> dict[str, Any]:
        page: dict[str, Any] = self.driver.execute_script(READ_PAGE)
        return page

    def ids(self) -> list[str]:
        return [n["id"] for n in self.read()["notifications"]]

    def until(self, pred: Callable[[dict[str, Any]], Any], what: str, timeout: float = 10.0) -> Any:
        """Poll the page until `pred(page)` is truthy; its value. Fails with what the page shows."""
        deadline = time.monotonic() + timeout
        while True:
            page = self.read()
            value = pred(page)
            if value:
                return value
            if time.monotonic() > deadline:
                logs = [e["message"] for e in self.driver.get_log("browser")][-10:]
                raise AssertionError(f"{what}: not within {timeout} s; page {page}; console {logs}")
            time.sleep(0.05)

    def live(self, timeout: float = 10.0) -> None:
        self.until(lambda p: p["status"] == "live", "status 'live'", timeout)

    def notification(self, id_: str, timeout: float = 10.0) -> dict[str, Any]:
        found: dict[str, Any] = self.until(
            lambda p: next((n for n in p["notifications"] if n["id"] == id_), None),
            f"notification {id_} on the page",
            timeout,
        )
        return found

    def mark_read(self, id_: str) -> None:
        item = f'[data-testid="notification"][data-id="{id_}"] [data-testid="mark-read"]'
        self.driver.find_element(By.CSS_SELECTOR, item).click()


def user_id(name: str) -> str:
    return f"u-page-{name}-{uuid.uuid4().hex[:6]}"


@contextmanager
def token_endpoint(user: str, ttl: float = 300) -> Iterator[tuple[str, list[float]]]:
    """A token service on another port (CORS open): GET returns a fresh token for `user`."""
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(time.time())
            body = token(user, ttl=ttl).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_notification_appears_on_the_page_live(bootstrap: str) -> None:
    user = user_id("live")
    with gateway(bootstrap) as g, chromium() as driver:
        page = Inbox(driver)
        page.open(g, token(user))
        page.live()
        sent = Notifier(bootstrap).send(user, 1)
        shown = page.notification(sent["delivery_id"])
        assert (shown["title"], shown["body"]) == (sent["title"], sent["body"])
        assert shown["read"] is False


def test_a_notification_shown_on_the_page_is_seen_on_another_device(bootstrap: str) -> None:
    user = user_id("seen")
    with gateway(bootstrap) as g, chromium() as driver:
        phone = Client(g.url, token(user))
        phone.hello()
        page = Inbox(driver)
        page.open(g, token(user))
        page.live()
        sent = Notifier(bootstrap).send(user, 1)
        page.notification(sent["delivery_id"])
        state = phone.until(lambda f: f["type"] == "state" and f["id"] == sent["delivery_id"])
        assert (state["seen"], state["read"]) == (True, False)


def test_marking_read_on_the_page_reaches_another_device(bootstrap: str) -> None:
    user = user_id("read")
    with gateway(bootstrap) as g, chromium() as driver:
        phone = Client(g.url, token(user))
        phone.hello()
        page = Inbox(driver)
        page.open(g, token(user))
        page.live()
        sent = Notifier(bootstrap).send(user, 1)
        page.notification(sent["delivery_id"])
        page.mark_read(sent["delivery_id"])
        phone.until(lambda f: f["type"] == "state" and f["id"] == sent["delivery_id"] and f["read"])
        page.until(lambda p: p["notifications"][0]["read"], "the page shows it read")


def test_the_page_resumes_after_a_gateway_restart_without_losing_or_repeating(
    bootstrap: str,
) -> None:
    user, port = user_id("restart"), free_port()
    notifier = Notifier(bootstrap)
    with chromium() as driver:
        page = Inbox(driver)
        with gateway(bootstrap, port=port) as g:
            page.open(g, token(user))
            page.live()
            first = notifier.send(user, 1)
            page.notification(first["delivery_id"])
        # drained: the page was told 4200 (reconnect now) and finds no gateway for a while
        page.until(lambda p: p["status"] != "live", "the page notices the gateway left")
        second = notifier.send(user, 2)
        with gateway(bootstrap, port=port):
            page.notification(second["delivery_id"], timeout=20)
            after = page.read()
    assert [n["id"] for n in after["notifications"]] == [
        second["delivery_id"],
        first["delivery_id"],
    ], "both, newest first, each once"
    assert after["status"] == "live"
    assert after["note"] == "", "it resumed from its position: nothing to reload"


def test_a_page_whose_position_is_gone_reloads_and_says_so(bootstrap: str) -> None:
    user, port = user_id("reload"), free_port()
    notifier = Notifier(bootstrap)
    with chromium() as driver:
        page = Inbox(driver)
        with gateway(bootstrap, port=port, history_per_user=1) as g:
            page.open(g, token(user))
            page.live()
            first = notifier.send(user, 1)
            page.notification(first["delivery_id"])
        page.until(lambda p: p["status"] != "live", "the page notices the gateway left")
        notifier.send(user, 2)
        third = notifier.send(user, 3)  # the gateway keeps one per user: the second is gone
        with gateway(bootstrap, port=port, history_per_user=1):
            page.until(lambda p: p["note"] == RELOADED, "the reload note", timeout=20)
            page.until(
                lambda p: [n["id"] for n in p["notifications"]] == [third["delivery_id"]],
                "the list is what the gateway retains, and only that",
            )


def test_a_bad_token_stops_the_page_and_says_why(bootstrap: str) -> None:
    header, claims, _ = token(user_id("bad")).split(".")
    forged = f"{header}.{claims}.{'A' * 43}"
    with gateway(bootstrap) as g, chromium() as driver:
        page = Inbox(driver)
        page.open(g, forged)
        page.until(
            lambda p: p["status"] == "closed: token signature is invalid", "the close reason"
        )
        time.sleep(1.5)  # longer than any reconnect delay after the first
        assert page.read()["status"] == "closed: token signature is invalid"
        assert page.read()["login_form"], "it asks for a new token"
        assert g.call(lambda: g.server.gateway.hub.count) == 0


def test_the_page_shows_who_of_the_organisation_is_online(bootstrap: str) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    me, colleague = user_id("me"), user_id("colleague")
    with gateway(bootstrap) as g, chromium() as driver:
        page = Inbox(driver)
        page.open(g, token(me, org=org))
        page.live()
        page.until(lambda p: me in p["presence"], "the user themself online")
        other = Client(g.url, token(colleague, org=org))
        other.hello()
        page.until(lambda p: colleague in p["presence"], "the colleague joins")
        other.close()
        page.until(lambda p: colleague not in p["presence"], "the colleague leaves")
        assert page.read()["presence"] == [me]


def test_the_page_names_the_people_online_never_their_user_ids(bootstrap: str) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    me, colleague, nameless = user_id("me"), user_id("colleague"), user_id("nameless")
    with gateway(bootstrap) as g, chromium() as driver:
        page = Inbox(driver)
        page.open(g, token(me, org=org, name="Zoë Kowalska"))
        page.live()
        other = Client(g.url, token(colleague, org=org, name="Łukasz Nowak"))
        other.hello()
        third = Client(g.url, token(nameless, org=org))
        third.hello()
        page.until(lambda p: len(p["people"]) == 3, "three people online")
        shown = page.read()
        assert sorted(shown["people"]) == sorted(
            ["Zoë Kowalska (you)", "Łukasz Nowak", "A colleague (no name given)"]
        )
        assert shown["user"] == "Zoë Kowalska"
        assert not any(u in " ".join(shown["people"]) + shown["user"]
                       for u in (me, colleague, nameless))  # fmt: skip
        other.close()
        third.close()


def test_the_page_refreshes_its_token_in_band_before_it_expires(bootstrap: str) -> None:
    user = user_id("refresh")
    with token_endpoint(user) as (url, hits), gateway(bootstrap) as g, chromium() as driver:
        page = Inbox(driver)
        page.open(g, token(user, ttl=33), token_url=url)  # due 30 s before expiry: at ~3 s
        page.live()
        started = time.time()

        def expiry() -> float:
            return float(g.call(lambda: max(c.exp for c in g.server.gateway.hub.all())))

        deadline = time.monotonic() + 10
        while expiry() < started + 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert expiry() > started + 200, f"the connection still expires at {expiry() - started} s"
        assert len(hits) == 1
        assert page.read()["status"] == "live"


def test_an_expired_session_stops_the_page_and_says_so(bootstrap: str) -> None:
    user = user_id("expired")
    with gateway(bootstrap) as g, chromium() as driver:
        page = Inbox(driver)
        page.open(g, token(user, ttl=1))  # closed with 4003 at exp + refresh_grace_s (0.5 s)
        page.until(lambda p: p["status"] == "closed: session expired", "the session expires")
        time.sleep(1.5)
        assert page.read()["status"] == "closed: session expired", "it does not reconnect"
        assert page.read()["login_form"], "it asks for a new token"


def test_a_full_gateway_makes_the_page_back_off_and_come_back(bootstrap: str) -> None:
    user = user_id("full")
    with gateway(bootstrap, max_connections=1) as g, chromium() as driver:
        other = Client(g.url, token(user_id("other")))
        other.hello()
        page = Inbox(driver)
        page.open(g, token(user))  # refused with 4100: back off 1-2 s, then 2-4 s, ...
        page.until(lambda p: p["status"].startswith("reconnecting in "), "backing off")
        other.close()
        page.live(timeout=15)
