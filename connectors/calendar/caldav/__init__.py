"""The CalDAV calendar provider (Apple iCloud, Fastmail, Nextcloud, Radicale ...): upserts
and deletes one VEVENT per wedding booking in a vendor's calendar collection.

It follows RFC 4791 (CalDAV) and RFC 5545 (iCalendar) over plain WebDAV verbs, with httpx
through the outbound policy and icalendar to build the event:

    config.py     WEDSYNC_CALDAV_* settings (per-integration concurrency, fallback home URL)
    wire.py       pure: the collection and event URLs, the VEVENT, the request headers, the
                  meaning of a CalDAV answer
    sink.py       `CalDavConnector`: PUT If-None-Match: * to create, If-Match: <etag> to
                  update (after a 412), DELETE; Basic auth with the integration's password
    fake.py       `RadicaleServer`: a real Radicale CalDAV server on loopback (tests,
                  `wedsync fake caldav`)

The calendar dispatcher (connectors/calendar) routes ``provider == "caldav"`` records
here; `CalDavConnector` also satisfies the Connector protocol on its own.
"""
