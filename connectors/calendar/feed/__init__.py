"""The inbound calendar feed (`wedsync calendar-feed`): vendors' own calendars -> busy time.

    connected.py   which calendars are connected, from the routing state (pure)
    sync_state.py  what the feed keeps per calendar (cursor, known intervals, status)
    providers.py   a fetch round per provider, with the integration's credentials
    gate.py        every provider request waits for its account's limits (per request)
    engine.py      the loop: schedule, fetch, diff, write one round atomically
    kafka_io.py    the topics it reads (state, pushes, our deliveries) and writes
    leader.py      the lease: one active feed, the others hot standbys (a consumer group)

Every round's busy records and notices are acknowledged before the calendar's new sync state
is written: a crash repeats the round from the last stored cursor, and the differ's output
for a repeated round is the same records (same ids), never new alerts.
"""
