"""Calendar deliveries: one destination, three providers (Google Calendar v3, Microsoft
Graph, CalDAV/iCloud), chosen by the record's `provider`. Each provider is its own folder
(`google`, `graph`, `caldav`: config, wire, sink, and the inbound feed's fetch and channels);
what the three sinks share lives here:

    sink.py         CalendarConnector: dispatches a record to its provider's connector
    upsert.py       the one write algorithm (create if absent, re-apply with If-Match unless
                    the event holds this version or newer, 412 -> re-read, vanished ->
                    create once more; delete unless newer) over a provider `Port`
    local.py        pure: a wedding's wall-clock times and the zone they are read in
    rest.py         RestCalendarSink: the JSON/OAuth skeleton of the Google and Graph sinks
    rest_wire.py    pure: their `Request`, `BadRecord` and refusal messages
    rest_config.py  OAuthApiConfig: the settings both subclass
    feed/           the inbound feed (vendors' own events as busy time)
"""
