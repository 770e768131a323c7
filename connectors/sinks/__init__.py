"""Sink connectors: consume `wedsync.deliver.<kind>`, deliver to the outside world, record
every attempt on the delivery ledger (`wedsync.delivery.results`).

    runtime.py       the one consume -> deliver -> record -> commit/retry/dead-letter loop
    answer.py        what a provider's answer means (ok / retry / backpressure / fatal /
                     disable target / re-auth), as plain data
    base.py          the shape every connector has (a `Connector`), limits, the context
    outbound.py      the only way out: https, address checks at connect time, no redirects,
                     timeouts, one audit line per call
    credentials.py   secrets read from the platform database when delivering, cached briefly
    <name>/          config.py, wire.py (pure), sink.py (I/O); the local fake of each
                     provider is apart, in streams/dev/fakes/
"""
