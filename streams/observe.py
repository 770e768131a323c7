"""Every process's `/metrics` and `/healthz`, and consumer-group lag.

`serve(port, ready)` starts a small HTTP server on a daemon thread (`WEDSYNC_METRICS_PORT`,
default 9400; `WEDSYNC_METRICS_HOST`, default loopback, `0.0.0.0` in containers): `/metrics`
is the Prometheus exposition of this process, `/healthz` answers 200 while `ready()` is true
and 503 otherwise. A port already in use is logged and skipped: metrics never stop a process.

`GroupLag` reads, for each consumer group of the deployment, its committed offsets and the
partitions' ends, and sets `wedsync_consumer_lag_records{consumer, topic, partition}`; the SLA
agent runs it for every group, so the Faust worker's agents are covered too. Label values come
from closed sets: the deployment's groups and topics, and partition numbers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.exposition import MetricsHandler

from streams import metrics
from streams.kafka.connection import Kafka, client_config
from streams.settings import Settings

log = logging.getLogger(__name__)


def serve(port: int, ready: Callable[[], bool] = lambda: True,
          host: str = "127.0.0.1") -> ThreadingHTTPServer | None:  # fmt: skip
    """Serve /metrics and /healthz on a daemon thread; None when the port is taken."""

    class Handler(MetricsHandler):
        """prometheus-client's own /metrics (content negotiation, OpenMetrics, gzip), plus
        /healthz."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                super().do_GET()
                return
            if path == "/healthz":
                ok = ready()
                body = b"ok\n" if ok else b"not ready\n"
                status = 200 if ok else 503
            else:
                body, status = b"not found: /metrics or /healthz\n", 404
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        log.warning("metrics not served: %s:%d: %s (set WEDSYNC_METRICS_PORT)", host, port, exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server


def serve_from_settings(
    s: Settings, role: str, ready: Callable[[], bool] = lambda: True
) -> ThreadingHTTPServer | None:
    """This process's /metrics (the metrics of `role` only, `streams.metrics.ROLES`) and
    /healthz on WEDSYNC_METRICS_HOST:WEDSYNC_METRICS_PORT."""
    metrics.export(role)
    if s.metrics_port is None:
        return None
    return serve(s.metrics_port, ready, s.metrics_host)


class GroupLag:
    """Committed offset vs. log end for the deployment's consumer groups."""

    def __init__(self, bootstrap: Kafka, prefixes: tuple[str, ...]) -> None:
        self.admin = AdminClient(client_config(bootstrap))
        self.prefixes = prefixes

    def update(self, timeout: float = 5.0) -> int:
        """Set the gauges for every group of ours; how many partitions were measured."""
        groups = [g.group_id for g in self.admin.list_consumer_groups().result(timeout).valid
                  if g.group_id.startswith(self.prefixes)]  # fmt: skip
        if not groups:
            return 0
        futures = self.admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(g) for g in groups]
        )
        committed: list[tuple[str, TopicPartition]] = []
        for group, future in futures.items():
            try:
                parts = future.result(timeout).topic_partitions or []
            except Exception as exc:  # a group that is rebalancing answers later
                log.debug("lag of %s not read: %s", group, exc)
                continue
            committed += [(group, tp) for tp in parts if tp.offset >= 0]
        if not committed:
            return 0
        from confluent_kafka.admin import OffsetSpec

        wanted = {TopicPartition(t.topic, t.partition): OffsetSpec.latest() for _, t in committed}
        ends = {}
        for tp, future in self.admin.list_offsets(wanted).items():
            try:
                ends[(tp.topic, tp.partition)] = future.result(timeout).offset
            except Exception as exc:
                log.debug("end of %s:%d not read: %s", tp.topic, tp.partition, exc)
        for group, tp in committed:
            end = ends.get((tp.topic, tp.partition))
            if end is not None:
                metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(
                    max(0, end - tp.offset)
                )
        return len(committed)
