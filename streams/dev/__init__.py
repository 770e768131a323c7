"""Development, demo and test support, apart from the product: nothing in `streams` or
`connectors` imports it; only the application (`streams.app`) does, for the commands that are
for development (`wedsync demo`, `wedsync broker`, `wedsync fake`, `WEDSYNC_BROKER`).

    broker.py        development brokers: Tansu (embedded), Apache Kafka (kraft.py,
                     kraft_secured.py, certs.py: SASL_SSL with ACLs), testcontainers
    db.py            throwaway PostgreSQL servers with the platform schema
    cdc_like.py      a CDC stand-in for the benchmarks and tests
    samples.py       sample changes; scenario.py, week.py: the demo's wedding and its week
    demo.py          `make run`: demo_parts.py (its processes), demo_view.py (what it shows)
    local.py         every local provider at once (the demo's and the benchmarks')
    fakes/           local fake providers (`wedsync fake <name>`), following the providers'
                     documented requests, answers, errors and rate limits
"""
