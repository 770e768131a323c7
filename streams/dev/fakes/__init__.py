"""Local fake providers: small servers that follow each provider's documented requests,
answers, errors and rate limits, so the real connectors can be tested over loopback.
`kit.py` is what the HTTP fakes share (switches, counters, the control endpoints);
`calendar_kit.py` what the Google and Graph calendar fakes share on top of it (token endpoint,
bearer check, injected refusals, If-Match preconditions, etags)."""

# `wedsync fake <name>` -> "module:FakeProvider subclass" (an HTTP fake) or "module:serve"
FAKES: dict[str, str] = {
    "slack": "streams.dev.fakes.slack:SlackFake",
    "twilio": "streams.dev.fakes.sms:TwilioFake",
    "google": "streams.dev.fakes.google:GoogleCalendarFake",
    "graph": "streams.dev.fakes.graph:GraphFake",
    "crm": "streams.dev.fakes.crm:CrmFake",
    "webhook-receiver": "streams.dev.fakes.webhook:WebhookReceiver",
    "smtp": "streams.dev.fakes.email:serve",
    "caldav": "streams.dev.fakes.caldav:serve",
    "schema-registry": "streams.dev.fakes.schema_registry:SchemaRegistryFake",
    "oidc": "streams.dev.fakes.oidc:OidcIssuerFake",
}
