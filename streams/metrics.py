"""Every Prometheus metric of the stream processor, declared once, with bounded labels.

Label values come from closed sets: `stage` is an agent name, `reason` an exception class
name from `streams.errors`, `destination` a `streams.topics.Destination` value.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter(
    "wedsync_records_consumed_total", "Records an agent read from its input topic.", ["stage"]
)
RECORDS_OUT = Counter(
    "wedsync_records_produced_total", "Records an agent wrote to output topics.", ["stage"]
)
DEAD_LETTERS = Counter(
    "wedsync_dead_letters_total",
    "Records sent to a dead-letter topic, by stage and error class.",
    ["stage", "reason"],
)
END_TO_END_SECONDS = Histogram(
    "wedsync_end_to_end_latency_seconds",
    "Source commit time to output record, per stage.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# ---- ingest gateway (connectors/sources/webhooks) ---------------------------------------
# `source` is a configured source name, or "_unknown" for paths naming no source; `reason` is
# a `Rejected.reason` from connectors/sources/webhooks/verify.py and the gateway (closed sets).
INGEST_REQUESTS = Counter(
    "wedsync_ingest_requests_total",
    "Requests the ingest gateway answered, by source and outcome "
    "(stored, duplicate, handshake, rejected, unavailable).",
    ["source", "outcome"],
)
INGEST_REJECTIONS = Counter(
    "wedsync_ingest_rejections_total",
    "Requests the ingest gateway refused (4xx and 503), by source and reason.",
    ["source", "reason"],
)
INGEST_ACK_SECONDS = Histogram(
    "wedsync_ingest_ack_seconds",
    "Time from producing a record to Kafka's acknowledgement, per ingest topic.",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# ---- end of ingest gateway ---------------------------------------------------------------

# ---- PostgreSQL CDC source (connectors/sources/postgres_cdc) -------------------------------
# `op` is a change event op (c, u, d, r): a closed set. One slot per process, so no labels.
CDC_EVENTS_PRODUCED = Counter(
    "wedsync_cdc_events_produced_total",
    "Change events the CDC source produced and Kafka acknowledged, by op.",
    ["op"],
)
CDC_CONFIRMED_LSN = Gauge(
    "wedsync_cdc_confirmed_lsn",
    "WAL position last confirmed to PostgreSQL (everything before it is in Kafka).",
)
CDC_SERVER_WAL_END = Gauge(
    "wedsync_cdc_server_wal_end_lsn", "Server WAL end last reported on the replication stream."
)
CDC_LAG_BYTES = Gauge(
    "wedsync_cdc_lag_bytes",
    "Server WAL end minus the confirmed position: WAL the slot still pins, in bytes.",
)
CDC_HEARTBEATS = Counter(
    "wedsync_cdc_heartbeats_total", "Periodic feedback messages the CDC source sent."
)
STATE_WAIT_TIMEOUTS = Counter(
    "wedsync_route_state_wait_timeouts_total",
    "Events routed after the routing state failed to reach their commit LSN in time.",
)
CDC_WATERMARKS = Counter(
    "wedsync_cdc_watermarks_total",
    "Heartbeat records (op 'h') written to wedsync.ingest.state after commits.",
)
CDC_TRUNCATES_SKIPPED = Counter(
    "wedsync_cdc_truncates_skipped_total",
    "TRUNCATE statements seen on captured tables (no row events exist for them).",
)
# ---- end of PostgreSQL CDC source ----------------------------------------------------------
