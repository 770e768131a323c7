"""Connectors: sources bring data into Kafka, sinks deliver it out."""
