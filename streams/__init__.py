"""wedsync-streams: CDC and webhooks in, per-destination deliveries out, over Kafka."""

__version__ = "0.1.0"
