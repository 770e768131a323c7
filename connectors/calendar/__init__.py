"""Calendar deliveries: one destination, three providers (Google Calendar v3, Microsoft
Graph, CalDAV/iCloud), chosen by the record's `provider`. Each provider is its own connector
folder (`connectors/calendar/google`, `graph`, `caldav`); this one only dispatches."""
