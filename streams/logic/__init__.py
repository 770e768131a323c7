"""Pure decisions: no Kafka, no HTTP, no database imports (tests/unit/test_purity.py checks)."""
