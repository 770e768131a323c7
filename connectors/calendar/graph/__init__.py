"""Microsoft Graph calendar sink: creates, updates and deletes a vendor's Outlook event for a
`CalendarDelivery` whose provider is ``graph``.

Follows Graph v1.0 (POST /me/events or /me/calendars/{id}/events, PATCH and DELETE
/me/events/{id}; errors as ``{"error": {"code", "message"}}``). Graph chooses event ids, so our
event is found again through a single-value extended property holding `external_event_id`
(``$filter=singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')``), and
a create carries a ``transactionId`` derived from the delivery id so a retried POST does not
make a second event. Access tokens come from the integration's stored OAuth refresh token
(`connectors.sinks.oauth`, Microsoft identity platform v2 endpoint).

    config.py  GraphConfig (WEDSYNC_GRAPH_*, on connectors/calendar/rest_config.py)
    wire.py    pure: request building, answer classification
    sink.py    GraphCalendarConnector, build(env): the port of connectors/calendar/upsert.py
               on connectors/calendar/rest.py

The inbound half (a vendor's Outlook calendar feeding double-booking detection):

    fetch_wire.py    pure: calendarView delta requests, pages, item -> Observed, error classes
    fetch.py         fetch_round: one delta round (every nextLink, to the deltaLink)
    channel_wire.py  pure: change-notification subscription requests and answers
    channels.py      create / renew (PATCH) / reauthorize / delete a subscription
    streams/dev/fakes/graph.py  GraphFake: token endpoint, events, delta, subscriptions
"""
