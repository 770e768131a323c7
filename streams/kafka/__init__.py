"""Kafka plumbing: the codec and schema registry, topic admin, the embedded broker, reading
a topic to its end, dead letters, and Faust's transport and codec."""
