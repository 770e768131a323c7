"""Source connectors: PostgreSQL CDC, inbound webhooks, calendar change feeds."""
