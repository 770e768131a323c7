"""`wedsync audit`: the command's edge (`streams.audit` reads and reports)."""

from __future__ import annotations

import argparse
import time

from streams.audit import audit, lines, time_ms
from streams.kafka.codec import TopicCodecs
from streams.routing.engine import RouteSettings
from streams.settings import Settings


def run_audit(args: argparse.Namespace, settings: Settings) -> int:
    kafka = settings.kafka_cluster(f"{settings.app_id}-audit")
    since = time_ms(args.since)
    until = time_ms(args.until) if args.until else int(time.time() * 1000)
    seen_retention_s = RouteSettings().dedupe_window_s * 2  # WEDSYNC_ROUTE_*, at this edge
    report = audit(kafka, TopicCodecs.from_settings(settings),
                   settings.app_id, since, until, timeout=args.timeout,
                   seen_retention_s=seen_retention_s)  # fmt: skip
    for line in lines(report, since, until):
        print(line)
    if report.lost or (args.strict and report.pending):
        return 1
    return 0
