"""The in-app gateway (`wedsync inapp`): a sink whose targets are open WebSocket connections.

Data flow: `feed.py` reads `wedsync.deliver.inapp` (keyed by user), the receipts and the
presence topics in a thread and hands batches to the event loop; `hub.py` keeps the open
connections and fans each notification out to its user's connections; `server.py` speaks the
protocol (PROTOCOL.md) over `websockets`. The decisions are pure: `auth.py` (tokens),
`history.py` (positions, resume, read state), `presence.py` (who is online), `wire.py`
(frames in and out).
"""
