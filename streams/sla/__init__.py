"""The SLA metrics agent (`wedsync sla`): delivery results in, health out."""
