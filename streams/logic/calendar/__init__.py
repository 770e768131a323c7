"""Pure logic of the inbound calendar feed: what a vendor's own calendar says, as busy time.

rounds.py    the vocabulary: a connected calendar, one fetch round's observations
busy.py      busy/tentative/free from each provider's fields; the busy-interval record
differ.py    a round against what was known -> upserts and tombstones only
echo.py      our own events (echo) and vendors' edits to them (drift)
channels.py  channel tokens (stateless MAC) and when to renew a channel
schedule.py  single flight per calendar, debounce, reconcile and poll intervals
health.py    a calendar's sync state from its last answers
"""
