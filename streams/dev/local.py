"""Every provider the sinks talk to, running locally on loopback: the SMTP capture server,
Radicale, and the fake Slack, Twilio, Google, Graph, CRM and webhook-receiver servers.

`make run`, the end-to-end delivery tests and the delivery benchmark start one
`LocalProviders`, seed the platform database with `endpoints()` (the integrations' URLs and
secrets pointing at these servers) and build each sink's connector with `connector(kind)`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from connectors.sinks.base import Connector
from connectors.sinks.outbound import OutboundPolicy

from streams.dev.fakes.kit import FakeServer
from streams.dev.scenario import SECRETS, Endpoints
from streams.topics import Destination

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"wedsync-local-endpoint-secret-32b").decode()
CALDAV_USER, CALDAV_PASSWORD = "photo", "app-specific-password"
SLACK_TOKEN = "xoxb-local-platform-token"


def allow_list_env(*ports: int) -> dict[str, str]:
    """The sink settings that let a `wedsync sink` process reach local receivers on `ports`
    only (plain http and loopback on exactly those ports; no other local service)."""
    listed = sorted(set(ports))
    return {
        "WEDSYNC_SINK_OUTBOUND_ALLOW_HTTP_HOSTS": ",".join(f"127.0.0.1:{p}" for p in listed),
        "WEDSYNC_SINK_OUTBOUND_ALLOW_NETWORKS": ",".join(f"127.0.0.1:{p}" for p in listed),
    }


@dataclass
class LocalProviders:
    """`policy` (when not given) allows exactly the ports of the servers started here."""

    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    servers: dict[str, Any] = field(default_factory=dict)
    calendar_url: str = ""

    def start(self) -> LocalProviders:
        from streams.dev.fakes.caldav import RadicaleServer
        from streams.dev.fakes.crm import CrmFake
        from streams.dev.fakes.email import SmtpCapture
        from streams.dev.fakes.slack import SlackFake
        from streams.dev.fakes.sms import TwilioFake
        from streams.dev.fakes.webhook import WebhookReceiver

        self.servers["smtp"] = SmtpCapture().start()
        self.servers["radicale"] = RadicaleServer(users={CALDAV_USER: CALDAV_PASSWORD}).start()
        self.calendar_url = self.servers["radicale"].make_calendar(CALDAV_USER, "weddings")
        self.servers["slack"] = FakeServer(SlackFake(tokens=(SLACK_TOKEN,))).start()
        self.servers["twilio"] = FakeServer(TwilioFake()).start()
        self.servers["crm"] = FakeServer(CrmFake(api_keys=SECRETS[1:])).start()
        self.servers["webhook"] = FakeServer(WebhookReceiver(secret=WEBHOOK_SECRET)).start()
        if self.policy == OutboundPolicy():
            self.policy = OutboundPolicy.loopback_for_tests(*self.ports())
        return self

    def ports(self) -> list[int]:
        """The ports of the receivers started here: what the outbound allow-list names."""
        return sorted(int(server.port) for server in self.servers.values())

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def __enter__(self) -> LocalProviders:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fake(self, name: str) -> Any:
        """The provider object of an HTTP fake (its counters and stored requests)."""
        return self.servers[name].provider

    def endpoints(self) -> Endpoints:
        crm, hook = self.servers["crm"].url, self.servers["webhook"].url
        return Endpoints(
            photo_crm=f"{crm}/photography/webhook",
            venue_booking=f"{crm}/venue/bookings",
            marketing=f"{crm}/generic/marketing",
            webhook=f"{hook}/hooks/photo",
            webhook_secret=WEBHOOK_SECRET,
            calendar_type="caldav",
            calendar_url=self.calendar_url,
            calendar_settings={"username": CALDAV_USER},
            calendar_secret=CALDAV_PASSWORD,
        )

    def connector(self, kind: Destination) -> Connector:
        """The real connector of `kind`, configured for these servers."""
        if kind is Destination.EMAIL:
            from connectors.sinks.email.config import EmailConfig
            from connectors.sinks.email.sink import EmailConnector

            smtp = self.servers["smtp"]
            return EmailConnector(
                self.policy, EmailConfig(smtp_host=smtp.hostname, smtp_port=smtp.port)
            )
        if kind is Destination.SLACK:
            from connectors.sinks.slack.config import SlackConfig
            from connectors.sinks.slack.sink import SlackSink
            from pydantic import SecretStr

            config = SlackConfig(
                api_base_url=self.servers["slack"].url, bot_token=SecretStr(SLACK_TOKEN)
            )
            return SlackSink(config, self.policy)
        if kind is Destination.SMS:
            from connectors.sinks.sms.config import SmsConfig
            from connectors.sinks.sms.sink import SmsSink

            twilio = self.fake("twilio")
            return SmsSink(
                SmsConfig(
                    account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                    from_number="+15005550006", api_base_url=self.servers["twilio"].url,
                ),
                self.policy,
            )  # fmt: skip
        if kind is Destination.CRM:
            from connectors.sinks.crm.config import CrmConfig
            from connectors.sinks.crm.sink import CrmSink

            return CrmSink(CrmConfig(), self.policy)
        if kind is Destination.WEBHOOK:
            from connectors.sinks.webhook.config import WebhookConfig
            from connectors.sinks.webhook.sink import WebhookSink

            return WebhookSink(WebhookConfig(), self.policy)
        if kind is Destination.CALENDAR:
            from connectors.calendar.caldav.sink import CalDavConnector
            from connectors.calendar.sink import CalendarConnector

            return CalendarConnector({"caldav": CalDavConnector(self.policy)})
        raise ValueError(f"no local connector for {kind.value}")
