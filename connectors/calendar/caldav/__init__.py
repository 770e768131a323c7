"""The CalDAV calendar provider (Apple iCloud, Fastmail, Nextcloud, Radicale ...): upserts
and deletes one VEVENT per wedding booking in a vendor's calendar collection.

It follows RFC 4791 (CalDAV) and RFC 5545 (iCalendar) over plain WebDAV verbs, with httpx
through the outbound policy and icalendar to build the event:

    config.py     WEDSYNC_CALDAV_* settings (per-integration concurrency, fallback home URL)
    wire.py       pure: the collection and event URLs, the VEVENT, the request headers, the
                  meaning of a CalDAV answer
    sink.py       `CalDavConnector`: the port of connectors/calendar/upsert.py: PUT
                  If-None-Match: * to create, If-Match: <etag> to update (after a 412),
                  DELETE; Basic auth with the integration's password
    streams/dev/fakes/caldav.py  `RadicaleServer`: a real Radicale CalDAV server on
                  loopback (tests, `wedsync fake caldav`)

The inbound feed (the vendor's own events as busy time) reads a collection in rounds:

    fetch_wire.py pure: sync-collection and multiget bodies, the 207 (Radicale's and
                  iCloud's XML), token refused / REPORT unsupported, iCalendar -> Observed
    etag_wire.py  pure: the CTag/ETag fallback: PROPFIND body and listing, etag diff, cursor
    fetch.py      `fetch_round(..., mode="auto"|"sync"|"etag")`: one round, sync-collection
                  with a fallback to CTag/ETag where the server lacks it
    fetch_etag.py `etag_round`: getctag (one request when unchanged), etags, multiget
    fetch_io.py   the requests, multiget and error mapping both paths share

The calendar dispatcher (connectors/calendar) routes ``provider == "caldav"`` records
here; `CalDavConnector` also satisfies the Connector protocol on its own.
"""
