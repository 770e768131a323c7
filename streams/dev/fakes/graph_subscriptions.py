"""The Graph fake's change-notification subscriptions (Outlook events).

Routes (wired by `GraphFake.routes`):

    POST   /v1.0/subscriptions                   create (validation handshake first)
    GET    /v1.0/subscriptions/{id}              read
    PATCH  /v1.0/subscriptions/{id}              renew (expirationDateTime; notificationUrl)
    DELETE /v1.0/subscriptions/{id}              204, unknown 404
    POST   /v1.0/subscriptions/{id}/reauthorize  200, unknown 404

Create: ``resource`` ``/me/events`` (every calendar) or ``/me/calendars/{id}/events``;
``changeType`` a comma list of created/updated/deleted; ``expirationDateTime`` in the future
and at most `MAX_MINUTES` (10,080) ahead, else 400 (same limit on PATCH);
``lifecycleNotificationUrl`` required beyond an hour; ``clientState`` at most 128 chars. The
documented handshake: the fake POSTs ``?validationToken=<random>`` (text/plain) to
``notificationUrl`` and to ``lifecycleNotificationUrl`` and needs a 200 text/plain echo within
`validation_timeout_s` (10 s) from both, else 400 ``ValidationError``.

Notifications: every change of a subscribed mailbox's calendar (`changed`, called by the
delta feed) POSTs ``{"value": [{subscriptionId, clientState, changeType, resource,
resourceData: {id, ...}, subscriptionExpirationDateTime, tenantId}]}`` to ``notificationUrl``
in a fire-and-forget task; `drop_next_notifications` drops the next N (Graph gave up);
`send_lifecycle` POSTs a lifecycle event. An expired subscription is deleted and never
notifies. Counters: subscriptions_created, validations_failed, notifications_sent,
notifications_dropped, notification_failures, lifecycle_sent.

For the tests: `max_lifetime_s` caps the expiry granted by a create or a PATCH (the answer
carries the shorter one); `history` keeps every subscription made (deleted and expired ones
too) and `lifetimes` answers when each was made and deleted or expired.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from streams.dev.fakes.graph import GraphFake

MAX_MINUTES = 10_080
LIFECYCLE_REQUIRED_AFTER = timedelta(hours=1)
RESOURCE = re.compile(r"^/?me/(?:calendars/([^/]+)/)?events$")
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # Microsoft's consumer-accounts tenant
APP_ID = "5f2b8c1e-3a4d-4c6b-9e7f-0a1b2c3d4e5f"  # the app registration the fake plays


def _when(text: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SubscriptionHub:
    """Subscriptions and notifications of one `GraphFake` (see the module docstring)."""

    def __init__(self, fake: GraphFake) -> None:
        self.fake = fake
        self.subscriptions: dict[str, dict[str, Any]] = {}  # id -> with _owner, _calendar
        self.drop_next_notifications = 0
        self.validation_timeout_s = 10.0
        self.delivered: list[tuple[str, int]] = []  # (url kind, receiver status)
        self.max_lifetime_s: float | None = None
        self.history: list[dict[str, Any]] = []  # every subscription made, as kept
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        guard = self.fake.authorised
        app.router.add_post("/v1.0/subscriptions", guard(self._create))
        app.router.add_get("/v1.0/subscriptions/{id}", guard(self._get))
        app.router.add_patch("/v1.0/subscriptions/{id}", guard(self._patch))
        app.router.add_delete("/v1.0/subscriptions/{id}", guard(self._delete))
        app.router.add_post("/v1.0/subscriptions/{id}/reauthorize", guard(self._reauthorize))
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # ---- checks ----------------------------------------------------------------------------
    def _expiry(self, text: Any) -> datetime | str:
        """The expiry asked for, or why it is refused."""
        when, now = _when(text), datetime.now(UTC)
        if when is None:
            return "expirationDateTime is not a date."
        if when <= now:
            return "Subscription expiration can only be in the future."
        if when > now + timedelta(minutes=MAX_MINUTES):
            return (f"Subscription expiration can only be {MAX_MINUTES} minutes in the future "
                    "for this resource.")  # fmt: skip
        return when

    def live(self, owner: str, subscription_id: str) -> dict[str, Any] | None:
        """The owner's subscription, unless unknown or expired (expired ones are deleted)."""
        sub = self.subscriptions.get(subscription_id)
        if sub is None or sub["_owner"] != owner:
            return None
        if sub["_expires"] <= datetime.now(UTC):
            del self.subscriptions[subscription_id]
            return None
        return sub

    async def _validated(self, url: str) -> bool:
        token = secrets.token_urlsafe(24)
        try:
            async with self.session().post(
                url, params={"validationToken": token}, headers={"Content-Type": "text/plain"},
                timeout=aiohttp.ClientTimeout(total=self.validation_timeout_s),
            ) as answer:  # fmt: skip
                text = await answer.text()
                kind = answer.headers.get("Content-Type", "")
                return answer.status == 200 and kind.startswith("text/plain") and text == token
        except (aiohttp.ClientError, TimeoutError):
            return False

    @staticmethod
    def public(sub: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in sub.items() if not k.startswith("_")}

    # ---- routes ----------------------------------------------------------------------------
    async def _create(self, request: web.Request, owner: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.fake.error(400, "InvalidRequest", "Cannot read the request body.")
        match = RESOURCE.match(str(body.get("resource", "")))
        changes = {c.strip() for c in str(body.get("changeType", "")).split(",") if c.strip()}
        expiry = self._expiry(body.get("expirationDateTime"))
        lifecycle, state = body.get("lifecycleNotificationUrl"), body.get("clientState")
        problem = (
            "Unsupported resource." if match is None
            else "Invalid changeType." if not changes or not changes <= CHANGE_TYPES
            else "notificationUrl is required." if not body.get("notificationUrl")
            else expiry if isinstance(expiry, str)
            else "lifecycleNotificationUrl is required for subscriptions longer than an hour."
            if not lifecycle and expiry - datetime.now(UTC) > LIFECYCLE_REQUIRED_AFTER
            else "clientState is limited to 128 characters."
            if state is not None and len(str(state)) > 128
            else None
        )  # fmt: skip
        if problem is not None or isinstance(expiry, str) or match is None:
            return self.fake.error(400, "InvalidRequest", str(problem))
        expiry = self._granted(expiry)
        for url in filter(None, (body["notificationUrl"], lifecycle)):
            if not await self._validated(str(url)):
                self.fake.counters["validations_failed"] += 1
                return self.fake.error(400, "ValidationError",
                    "Subscription validation request failed. Notification endpoint must "
                    "respond with 200 OK to validation request.")  # fmt: skip
        sub_id = str(uuid.uuid4())
        sub = {
            "@odata.context": f"{request.url.origin()}/v1.0/$metadata#subscriptions/$entity",
            "id": sub_id, "resource": body["resource"], "applicationId": APP_ID,
            "changeType": ",".join(sorted(changes)), "clientState": state,
            "notificationUrl": body["notificationUrl"], "lifecycleNotificationUrl": lifecycle,
            "expirationDateTime": _stamp(expiry), "creatorId": owner,
            "includeResourceData": False, "latestSupportedTlsVersion": "v1_2",
            "_owner": owner, "_calendar": match.group(1), "_expires": expiry,
        }  # fmt: skip
        self.subscriptions[sub_id] = sub
        self._record_made(sub)
        self.fake.counters["subscriptions_created"] += 1
        return web.json_response(self.public(sub), status=201)

    async def _get(self, request: web.Request, owner: str) -> web.Response:
        sub = self.live(owner, request.match_info["id"])
        if sub is None:
            return self._unknown()
        return web.json_response(self.public(sub))

    async def _patch(self, request: web.Request, owner: str) -> web.Response:
        sub = self.live(owner, request.match_info["id"])
        if sub is None:
            return self._unknown()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not set(body) <= {"expirationDateTime",
                                                           "notificationUrl"}:  # fmt: skip
            return self.fake.error(
                400, "InvalidRequest", "Only expirationDateTime and notificationUrl can be updated."
            )
        expiry = self._expiry(body.get("expirationDateTime"))
        if isinstance(expiry, str):
            return self.fake.error(400, "InvalidRequest", expiry)
        expiry = self._granted(expiry)
        sub.update(_expires=expiry, expirationDateTime=_stamp(expiry))
        if body.get("notificationUrl"):
            sub["notificationUrl"] = body["notificationUrl"]
        self.fake.counters["subscriptions_renewed"] += 1
        return web.json_response(self.public(sub))

    async def _delete(self, request: web.Request, owner: str) -> web.Response:
        if self.live(owner, request.match_info["id"]) is None:
            return self._unknown()
        self.subscriptions.pop(request.match_info["id"])["_deleted"] = datetime.now(UTC)
        self.fake.counters["subscriptions_deleted"] += 1
        return web.Response(status=204)

    async def _reauthorize(self, request: web.Request, owner: str) -> web.Response:
        if self.live(owner, request.match_info["id"]) is None:
            return self._unknown()
        self.fake.counters["subscriptions_reauthorized"] += 1
        return web.Response(status=200)

    # ---- lifetimes (bookkeeping for the tests) -----------------------------------------------
    def _granted(self, expiry: datetime) -> datetime:
        if self.max_lifetime_s is None:
            return expiry
        return min(expiry, datetime.now(UTC) + timedelta(seconds=self.max_lifetime_s))

    def _record_made(self, sub: dict[str, Any]) -> None:
        sub["_created"] = datetime.now(UTC)
        self.history.append(sub)

    def lifetimes(self, owner: str) -> list[tuple[str, int, int | None]]:
        """(subscription id, made at, deleted or expired at: None while live; unix ms) of
        every subscription the owner ever had, in the order they were made."""
        now, out = datetime.now(UTC), []
        for sub in list(self.history):
            if sub["_owner"] == owner:
                ended = min(sub["_expires"], sub.get("_deleted") or sub["_expires"])
                out.append(
                    (str(sub["id"]), _ms(sub["_created"]), _ms(ended) if ended <= now else None)
                )
        return out

    def _unknown(self) -> web.Response:
        return self.fake.error(404, "ResourceNotFound", "The object was not found.")

    # ---- notifications (on the fake's loop) ------------------------------------------------
    def changed(self, owner: str, calendar: str, event_id: str, change: str) -> None:
        """An event of `owner`'s `calendar` changed: notify every live subscription on it."""
        for sub in list(self.subscriptions.values()):
            if sub["_owner"] != owner or sub["_calendar"] not in (None, calendar):
                continue
            if self.live(owner, sub["id"]) is None or change not in sub["changeType"]:
                continue
            if self.drop_next_notifications > 0:
                self.drop_next_notifications -= 1
                self.fake.counters["notifications_dropped"] += 1
                continue
            resource = f"Users/{owner}/Events/{event_id}"
            item = {
                "subscriptionId": sub["id"], "clientState": sub["clientState"],
                "changeType": change, "resource": resource, "tenantId": TENANT,
                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                "resourceData": {"@odata.type": "#Microsoft.Graph.Event",
                                 "@odata.id": resource, "id": event_id},
            }  # fmt: skip
            self._post("notification", str(sub["notificationUrl"]), {"value": [item]})

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        """POST a lifecycle event of a subscription to its lifecycleNotificationUrl
        (`subscriptionRemoved` also deletes it)."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"unknown lifecycle event {event!r}")
        self.fake.on_loop(self._lifecycle, subscription_id, event)

    def _lifecycle(self, subscription_id: str, event: str) -> None:
        sub = self.subscriptions[subscription_id]
        if event == "subscriptionRemoved":
            del self.subscriptions[subscription_id]
        item = {"subscriptionId": sub["id"], "clientState": sub["clientState"],
                "lifecycleEvent": event, "tenantId": TENANT, "resource": sub["resource"],
                "subscriptionExpirationDateTime": sub["expirationDateTime"]}  # fmt: skip
        self.fake.counters["lifecycle_sent"] += 1
        self._post("lifecycle", str(sub["lifecycleNotificationUrl"]), {"value": [item]})

    def _post(self, kind: str, url: str, body: dict[str, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the fake is not serving: nobody could receive it
            self.fake.counters[f"{kind}_failures"] += 1
            return
        task = loop.create_task(self._deliver(kind, url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, kind: str, url: str, body: dict[str, Any]) -> None:
        try:
            async with self.session().post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=3)
            ) as answer:
                self.delivered.append((kind, answer.status))
                self.fake.counters[f"{kind}s_sent"] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.fake.counters[f"{kind}_failures"] += 1
