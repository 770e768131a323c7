"""The inbound calendar feed (`wedsync calendar-feed`): vendors' own calendars -> busy time.

    connected.py   which calendars are connected, from the routing state (pure)
    sync_state.py  what the feed keeps per calendar (cursor, known intervals, status)
    providers.py   a fetch round per provider, with the integration's credentials
    engine.py      the loop: schedule, fetch, diff, write one round atomically
    kafka_io.py    the topics it reads (state, pushes, our deliveries) and writes

Every round's busy records, notices and the calendar's new sync state are written in one
Kafka transaction: a crash repeats the round from the last committed cursor, and the
differ's output for a repeated round is the same records (same ids), never new alerts.
"""
