"""Every Prometheus metric of the stream processor, declared once, with bounded labels.

Label values come from closed sets: `stage` is an agent name, `reason` an exception class
name from `streams.errors`, `destination` a `streams.topics.Destination` value.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

RECORDS_IN = Counter(
    "wedsync_records_consumed_total",
    "Records an agent read from its input topic.",
    ["stage"],
    registry=None,
)
RECORDS_OUT = Counter(
    "wedsync_records_produced_total",
    "Records an agent wrote to output topics.",
    ["stage"],
    registry=None,
)
READ_AGAIN = Counter(
    "wedsync_worker_read_again_total",
    "Times the worker sought a partition back to read records it had not processed "
    "(streams.kafka.faust_transport), by reason: dropped (a jump within one continuous read), "
    "held (the commit held behind one record); nonzero is survived, not normal",
    ["reason"],
    registry=None,
)
KAFKA_DATA_CHECKS = Counter(
    "wedsync_kafka_data_checks_total",
    "Checks that the cluster still has the topics this process read (same topic ids; "
    "streams.kafka.topic_watch), by result: ok, unanswered, lost",
    ["result"],
    registry=None,
)
DEAD_LETTERS = Counter(
    "wedsync_dead_letters_total",
    "Records sent to a dead-letter topic, by stage and error class.",
    ["stage", "reason"],
    registry=None,
)
END_TO_END_SECONDS = Histogram(
    "wedsync_end_to_end_latency_seconds",
    "Source commit time to output record, per stage.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)

# ---- ingest gateway (connectors/sources/webhooks) ---------------------------------------
# `source` is a configured source name, or "_unknown" for paths naming no source; `reason` is
# a `Rejected.reason` from connectors/sources/webhooks/verify.py and the gateway (closed sets).
INGEST_REQUESTS = Counter(
    "wedsync_ingest_requests_total",
    "Requests the ingest gateway answered, by source and outcome "
    "(stored, duplicate, handshake, rejected, unavailable).",
    ["source", "outcome"],
    registry=None,
)
INGEST_REJECTIONS = Counter(
    "wedsync_ingest_rejections_total",
    "Requests the ingest gateway refused (4xx and 503), by source and reason.",
    ["source", "reason"],
    registry=None,
)
INGEST_ACK_SECONDS = Histogram(
    "wedsync_ingest_ack_seconds",
    "Time from producing a record to Kafka's acknowledgement, per ingest topic.",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=None,
)
# ---- end of ingest gateway ---------------------------------------------------------------

# ---- PostgreSQL CDC source (connectors/sources/postgres_cdc) -------------------------------
# `op` is a change event op (c, u, d, r): a closed set. One slot per process, so no labels.
CDC_EVENTS_PRODUCED = Counter(
    "wedsync_cdc_events_produced_total",
    "Change events the CDC source produced and Kafka acknowledged, by op.",
    ["op"],
    registry=None,
)
CDC_LAG_SECONDS = Gauge(
    "wedsync_cdc_lag_seconds",
    "Commit time of the change being produced to now (0 when the slot is caught up).",
    registry=None,
)
CDC_CONFIRMED_LSN = Gauge(
    "wedsync_cdc_confirmed_lsn",
    "WAL position last confirmed to PostgreSQL (everything before it is in Kafka).",
    registry=None,
)
CDC_SERVER_WAL_END = Gauge(
    "wedsync_cdc_server_wal_end_lsn",
    "Server WAL end last reported on the replication stream.",
    registry=None,
)
CDC_LAG_BYTES = Gauge(
    "wedsync_cdc_lag_bytes",
    "Server WAL end minus the confirmed position: WAL the slot still pins, in bytes.",
    registry=None,
)
CDC_HEARTBEATS = Counter(
    "wedsync_cdc_heartbeats_total",
    "Periodic feedback messages the CDC source sent.",
    registry=None,
)
STATE_WAIT_TIMEOUTS = Counter(
    "wedsync_route_state_wait_timeouts_total",
    "Events routed after the routing state failed to reach their commit LSN in time.",
    registry=None,
)
CDC_WATERMARKS = Counter(
    "wedsync_cdc_watermarks_total",
    "Heartbeat records (op 'h') written to wedsync.ingest.state after commits.",
    registry=None,
)
CDC_TRUNCATES_SKIPPED = Counter(
    "wedsync_cdc_truncates_skipped_total",
    "Tables other than state tables truncated (no row events exist for them; logged).",
    registry=None,
)
CDC_TRUNCATED_STATE_ROWS = Counter(
    "wedsync_cdc_truncated_state_rows_total",
    "Rows of truncated state tables deleted from the routing state (op 'd' per row key).",
    registry=None,
)
CDC_COLUMNS_CUT = Counter(
    "wedsync_cdc_columns_cut",
    "Column values cut to cut_value_bytes because their change did not fit one record "
    "(the log names table, key and column; the records carry wedsync.cdc.cut_columns).",
    registry=None,
)
# ---- end of PostgreSQL CDC source ----------------------------------------------------------

# ---- sinks (connectors/sinks) -----------------------------------------------------------
# `destination` is a Destination value; `outcome` a delivery-result outcome; `verdict` an
# answer.Verdict; `error_class` a connector's closed set of short codes (slack.ratelimited,
# http.503, smtp.4xx, ...). Targets, integrations and recipients are never labels.
SINK_RESULTS = Counter(
    "wedsync_sink_results_total",
    "Delivery attempts recorded on the ledger, by destination and outcome.",
    ["destination", "outcome"],
    registry=None,
)
SINK_ATTEMPT_SECONDS = Histogram(
    "wedsync_sink_attempt_duration_seconds",
    "Time of one delivery attempt (the provider's calls), by destination and verdict.",
    ["destination", "verdict"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0),
    registry=None,
)
SINK_COMMIT_TO_PROVIDER_SECONDS = Histogram(
    "wedsync_sink_commit_to_provider_seconds",
    "Source commit time to the provider's answer, for delivered records, by destination.",
    ["destination"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=None,
)
SINK_RETRIES = Counter(
    "wedsync_sink_retries_scheduled_total",
    "Records sent to the retry topic, by destination and error class.",
    ["destination", "error_class"],
    registry=None,
)
SINK_RATE_LIMIT_WAIT_SECONDS = Counter(
    "wedsync_sink_rate_limit_wait_seconds_total",
    "Time deliveries waited for a rate-limit token, by destination.",
    ["destination"],
    registry=None,
)
SINK_BREAKERS_OPEN = Gauge(
    "wedsync_sink_breakers_open",
    "Endpoints whose circuit breaker is open.",
    ["destination"],
    registry=None,
)
SINK_PAUSED_INTEGRATIONS = Gauge(
    "wedsync_sink_paused_integrations",
    "Integrations paused because their credential was refused.",
    ["destination"],
    registry=None,
)
SINK_DISABLED_TARGETS = Gauge(
    "wedsync_sink_disabled_targets",
    "Targets disabled after the provider said they are gone (410, archived, STOP).",
    ["destination"],
    registry=None,
)
SINK_IN_FLIGHT = Gauge(
    "wedsync_sink_in_flight", "Deliveries being attempted now.", ["destination"], registry=None
)
SINK_HELD = Gauge(
    "wedsync_sink_held_records",
    "Retry records held in memory until due, or parked for a paused integration.",
    ["destination"],
    registry=None,
)
# ---- end of sinks ---------------------------------------------------------------------------

# ---- in-app gateway (connectors/sinks/inapp) -------------------------------------------------
# `code` is a close code from connectors/sinks/inapp/wire.py or a WebSocket standard one
# (1000, 1001, 1006, 1011: `other` for anything else); `kind` and `result` are closed sets.
INAPP_CONNECTIONS = Gauge(
    "wedsync_inapp_connections", "Open authenticated connections.", registry=None
)
INAPP_SENT = Counter(
    "wedsync_inapp_messages_sent_total",
    "Frames written to clients, by kind (notification, state, presence, control).",
    ["kind"],
    registry=None,
)
INAPP_RESUMES = Counter(
    "wedsync_inapp_resumes_total",
    "Connects by resume result: recovered, not_recovered (gap too old), fresh (no position).",
    ["result"],
    registry=None,
)
INAPP_DISCONNECTS = Counter(
    "wedsync_inapp_disconnects_total",
    "Closed connections by close code.",
    ["code"],
    registry=None,
)
INAPP_QUEUE_DROPS = Counter(
    "wedsync_inapp_queue_drops_total",
    "Connections dropped because their unsent bytes went over the queue limit (closed 4108).",
    registry=None,
)
INAPP_FANOUT_SECONDS = Histogram(
    "wedsync_inapp_fanout_latency_seconds",
    "Routing time of a notification to its frame being written to a client's socket.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
INAPP_RECEIPTS = Counter(
    "wedsync_inapp_receipts_total",
    "Seen/read marks written to Kafka, by state.",
    ["state"],
    registry=None,
)
INAPP_AUTH_FAILURES = Counter(
    "wedsync_inapp_auth_failures_total",
    "Tokens refused, by close code (4001 bad, 4003 expired).",
    ["code"],
    registry=None,
)
INAPP_PRESENCE_USERS = Gauge(
    "wedsync_inapp_presence_users",
    "Users online on any gateway, as this gateway sees it.",
    registry=None,
)
INAPP_HISTORY_RECORDS = Gauge(
    "wedsync_inapp_history_records", "Notifications held for resume.", registry=None
)
INAPP_UNREADABLE = Counter(
    "wedsync_inapp_unreadable_records_total",
    "Records the gateway could not decode (left in the topic; see the log for the position).",
    ["topic"],
    registry=None,
)

# ---- SLA agent and consumer lag (streams/sla, streams/observe.py) -----------------------------
# `destination` is a Destination value, `window` 1m|5m|1h, `state` healthy|degraded|failing,
# `alert` latency|error_rate|availability|silence, `quantile` 0.5|0.95|0.99; `consumer` a
# consumer group of the deployment, `partition` a partition number: all closed sets. Per
# integration numbers go to Kafka (wedsync.sla.health), never to labels.
SLA_INTEGRATIONS = Gauge(
    "wedsync_sla_integrations",
    "Integrations in each health state.",
    ["destination", "state"],
    registry=None,
)
SLA_ERROR_RATIO = Gauge(
    "wedsync_sla_error_ratio",
    "Failed attempts / attempts, per window.",
    ["destination", "window"],
    registry=None,
)
SLA_AVAILABILITY_RATIO = Gauge(
    "wedsync_sla_availability_ratio",
    "Lowest availability (share of the window's time up) among the kind's integrations.",
    ["destination", "window"],
    registry=None,
)
SLA_LATENCY_SECONDS = Gauge(
    "wedsync_sla_latency_seconds",
    "Commit-to-provider latency quantiles per window.",
    ["destination", "window", "quantile"],
    registry=None,
)
SLA_RELIABILITY_SCORE = Gauge(
    "wedsync_sla_reliability_score",
    "Lowest reliability score (0-100) among the kind's integrations, per window.",
    ["destination", "window"],
    registry=None,
)
SLA_ALERTS_FIRING = Gauge(
    "wedsync_sla_alerts_firing",
    "Integrations with the alert firing (any window).",
    ["destination", "alert"],
    registry=None,
)
SLA_STATE_CHANGES = Counter(
    "wedsync_sla_state_changes_total",
    "Health-state changes, by new state.",
    ["destination", "to"],
    registry=None,
)
SLA_CALENDARS = Gauge(
    "wedsync_sla_calendars",
    "Connected calendars by provider and sync status (healthy, polling_only, stale, "
    "reauth_required, disabled), as the SLA agent computes them from the feed's sync states: "
    "a calendar whose feed stopped fetching turns stale here by time alone",
    ["provider", "status"],
    registry=None,
)
SLA_EVALUATIONS = Counter("wedsync_sla_evaluations_total", "Health evaluations run.", registry=None)
SLA_LAST_EVALUATION = Gauge(
    "wedsync_sla_last_evaluation_timestamp_seconds",
    "When health was last evaluated.",
    registry=None,
)
CONSUMER_LAG = Gauge(
    "wedsync_consumer_lag_records",
    "Records between a consumer group's committed offset and the partition's end.",
    ["consumer", "topic", "partition"],
    registry=None,
)

# ---- the inbound calendar feed (`wedsync calendar-feed`) -------------------------------------
CALENDAR_FETCHES = Counter(
    "wedsync_calendar_fetches",
    "Fetch rounds of connected calendars, by provider, kind (incremental, full) and outcome "
    "(ok, full_resync, reauth, gone, throttled, failed)",
    ["provider", "kind", "outcome"],
    registry=None,
)
CALENDAR_NOTIFICATIONS = Counter(
    "wedsync_calendar_notifications",
    "Provider pushes the feed read, by provider and what they were (change, sync, lifecycle, "
    "unknown: no calendar of ours)",
    ["provider", "kind"],
    registry=None,
)
CALENDAR_INTERVALS = Counter(
    "wedsync_calendar_intervals_written",
    "Busy-interval records written, by state (active, deleted)",
    ["state"],
    registry=None,
)
CALENDAR_ECHOES = Counter(
    "wedsync_calendar_echo_suppressed",
    "Our own events seen in vendors' calendars and not taken as busy time",
    registry=None,
)
CALENDAR_DRIFT = Counter(
    "wedsync_calendar_drift",
    "Our events a vendor moved or deleted in their own calendar",
    registry=None,
)
CALENDAR_STATUS = Gauge(
    "wedsync_calendar_calendars",
    "Connected calendars by provider and sync status (healthy, polling_only, stale, "
    "reauth_required, disabled)",
    ["provider", "status"],
    registry=None,
)
CALENDAR_CHANGE_TO_FETCH_SECONDS = Histogram(
    "wedsync_calendar_push_to_written_seconds",
    "From a provider push arriving at the gateway to the fetched round written to Kafka",
    buckets=(0.5, 1, 2, 3, 5, 8, 12, 15, 20, 30, 60, 120),
    registry=None,
)
CALENDAR_API_REQUESTS = Counter(
    "wedsync_calendar_api_requests",
    "Requests the feed made to providers (fetch rounds and channel calls), by provider",
    ["provider"],
    registry=None,
)
CALENDAR_FEED_ACTIVE = Gauge(
    "wedsync_calendar_feed_active",
    "1 while this process holds the calendar feed's lease and runs the rounds, 0 on standby",
    registry=None,
)


# ---- which process exports what ------------------------------------------------------------
# Every metric above is declared unregistered: a process exports only its own (`export`), so
# a sink's /metrics holds no `wedsync_cdc_lag_seconds 0` that reads as a healthy CDC source.
_PIPELINE = (DEAD_LETTERS,)
ROLES: dict[str, tuple[MetricWrapperBase, ...]] = {
    "cdc": (*_PIPELINE, CDC_EVENTS_PRODUCED, CDC_LAG_SECONDS, CDC_CONFIRMED_LSN,
            CDC_SERVER_WAL_END, CDC_LAG_BYTES, CDC_HEARTBEATS, CDC_WATERMARKS,
            CDC_TRUNCATES_SKIPPED, CDC_TRUNCATED_STATE_ROWS, CDC_COLUMNS_CUT),
    "worker": (*_PIPELINE, RECORDS_IN, RECORDS_OUT, READ_AGAIN, KAFKA_DATA_CHECKS),
    "route": (*_PIPELINE, RECORDS_IN, RECORDS_OUT, END_TO_END_SECONDS, STATE_WAIT_TIMEOUTS),
    "ingest": (*_PIPELINE, INGEST_REQUESTS, INGEST_REJECTIONS, INGEST_ACK_SECONDS),
    "sink": (*_PIPELINE, SINK_RESULTS, SINK_ATTEMPT_SECONDS, SINK_COMMIT_TO_PROVIDER_SECONDS,
             SINK_RETRIES, SINK_RATE_LIMIT_WAIT_SECONDS, SINK_BREAKERS_OPEN,
             SINK_PAUSED_INTEGRATIONS, SINK_DISABLED_TARGETS, SINK_IN_FLIGHT, SINK_HELD),
    "inapp": (INAPP_CONNECTIONS, INAPP_SENT, INAPP_RESUMES, INAPP_DISCONNECTS,
              INAPP_QUEUE_DROPS, INAPP_FANOUT_SECONDS, INAPP_RECEIPTS, INAPP_AUTH_FAILURES,
              INAPP_PRESENCE_USERS, INAPP_HISTORY_RECORDS, INAPP_UNREADABLE),
    "sla": (SLA_INTEGRATIONS, SLA_ERROR_RATIO, SLA_AVAILABILITY_RATIO, SLA_LATENCY_SECONDS,
            SLA_RELIABILITY_SCORE, SLA_ALERTS_FIRING, SLA_STATE_CHANGES, SLA_EVALUATIONS,
            SLA_LAST_EVALUATION, CONSUMER_LAG, SLA_CALENDARS),
    "calendar": (*_PIPELINE, CALENDAR_FETCHES, CALENDAR_NOTIFICATIONS, CALENDAR_INTERVALS,
                 CALENDAR_ECHOES, CALENDAR_DRIFT, CALENDAR_STATUS,
                 CALENDAR_CHANGE_TO_FETCH_SECONDS, CALENDAR_API_REQUESTS, CALENDAR_FEED_ACTIVE),
}  # fmt: skip


def export(*roles: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Register the metrics of `roles` (keys of ROLES) with `registry`, once each: what this
    process's /metrics serves. Called by each command at its start."""
    for role in roles:
        for metric in ROLES[role]:
            if metric not in _exported.setdefault(id(registry), set()):
                registry.register(metric)
                _exported[id(registry)].add(metric)


_exported: dict[int, set[MetricWrapperBase]] = {}
