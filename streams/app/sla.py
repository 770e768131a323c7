"""`wedsync sla`: run the SLA agent until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading

from pydantic import ValidationError

from streams.errors import ConfigurationError
from streams.settings import Settings


def run_sla(settings: Settings) -> int:
    from streams.kafka.access import check_access
    from streams.kafka.codec import TopicCodecs
    from streams.observe import serve_from_settings
    from streams.sla.process import SlaAgent
    from streams.sla.settings import SlaSettings

    kafka = settings.kafka_cluster(f"{settings.app_id}-sla")
    check_access(kafka, "sla", settings.app_id)
    try:
        sla_settings = SlaSettings()
        agent = SlaAgent(kafka, TopicCodecs.from_settings(settings),
                         sla_settings, group_prefixes=(settings.app_id, "wedsync"))  # fmt: skip
    except (ValidationError, ValueError) as exc:
        raise ConfigurationError(f"SLA settings: {exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    serve_from_settings(settings, "sla", lambda: agent.ready)
    agent.run(stop)
    return 0
