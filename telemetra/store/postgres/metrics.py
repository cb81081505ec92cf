"""Prometheus metrics of the PostgreSQL store."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["PG_BATCHES"]

# "alone": one statement, its own transaction (one round trip); "transaction": BEGIN, statements, COMMIT
# (msg_ids, power keys, large batches, points that replace stored ones).
PG_BATCHES = Counter(
    "telemetra_pg_batches_total", "Telemetry batches committed on PostgreSQL, by how they were written", ["written"]
)
