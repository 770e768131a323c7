"""Google Calendar v3 sink: creates, updates and deletes a vendor's calendar event for a
`CalendarDelivery` whose provider is ``google``.

Follows the Calendar API v3 REST shape (events.insert / events.patch / events.get /
events.delete under ``/calendar/v3/calendars/{calendarId}/events``; errors as
``{"error": {"code", "message", "errors": [{"reason", "domain", "message"}]}}``). The event id
is chosen by us (base32hex, derived from `external_event_id`), so a repeated insert answers 409
``duplicate`` instead of creating a second event. Access tokens come from the integration's
stored OAuth refresh token (`connectors.sinks.oauth`).

    config.py  GoogleConfig (WEDSYNC_GOOGLE_*, on connectors/calendar/rest_config.py)
    wire.py    pure: event ids, request building, answer classification
    sink.py    GoogleCalendarConnector, build(env): the port of connectors/calendar/upsert.py
               on connectors/calendar/rest.py
    streams/dev/fakes/google.py  GoogleCalendarFake: token endpoint + events, for tests and
               `wedsync fake google`
"""
