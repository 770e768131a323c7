"""Inbound webhook gateway: verified HTTP requests in, records on the ingest topics out.

config.py    which sources exist and how each is authenticated (parsed once, frozen)
verify.py    pure request verification: a `Verified` result or a `Rejected` error
convert.py   pure: Supabase / Debezium JSON change payloads -> our ChangeEvent
dedupe.py    pure: delivery ids seen within a window; a token-bucket rate limiter
gateway.py   the aiohttp server: answers 2xx only after Kafka acknowledged the record
"""
