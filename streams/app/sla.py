"""`wedsync sla`: run the SLA agent until SIGTERM/SIGINT."""

from __future__ import annotations

from pydantic import ValidationError

from streams.app import shell
from streams.errors import ConfigurationError
from streams.settings import Settings


def run_sla(settings: Settings) -> int:
    from streams.kafka.codec import TopicCodecs
    from streams.sla.process import SlaAgent
    from streams.sla.settings import SlaSettings

    kafka = settings.kafka_cluster(f"{settings.app_id}-sla")
    try:
        sla_settings = SlaSettings()
        agent = SlaAgent(kafka, TopicCodecs.from_settings(settings),
                         sla_settings, group_prefixes=(settings.app_id, "wedsync"))  # fmt: skip
    except (ValidationError, ValueError) as exc:
        raise ConfigurationError(f"SLA settings: {exc}") from None
    shell.start(settings, kafka, access="sla", metrics="sla", ready=lambda: agent.ready)
    return shell.run_blocking(agent.run)
