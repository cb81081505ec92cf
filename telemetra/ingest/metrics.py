"""Pipeline metrics on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "MESSAGES",
    "POINTS",
    "REJECTED",
    "BATCH_SIZE",
    "COMMIT_SECONDS",
    "QUEUE_DEPTH",
    "OVERLOADED",
    "TENANT_OVER_SHARE",
    "SEAL_SECONDS",
    "SEALED_ROWS",
]

MESSAGES = Counter(
    "telemetra_ingest_messages_total", "Messages committed, by source and outcome", ["source", "outcome"]
)  # outcome: stored, duplicate
POINTS = Counter("telemetra_ingest_points_total", "Points committed, by source", ["source"])
# reason: the error code (invalid_json, validation_error, unknown_device, unstorable_message: the database
# refused it, ...). Each refused message is counted once, where it is refused.
REJECTED = Counter(
    "telemetra_ingest_rejected_total", "Messages refused for good, by source and reason", ["source", "reason"]
)
OVERLOADED = Counter("telemetra_ingest_overloaded_total", "Submissions refused because the queue was full", ["source"])
TENANT_OVER_SHARE = Counter(
    "telemetra_ingest_tenant_over_share_total",
    "Submissions refused because their tenant held its share of the queue",
    ["source"],
)
BATCH_SIZE = Histogram(
    "telemetra_ingest_batch_messages",
    "Messages per committed batch",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
COMMIT_SECONDS = Histogram(
    "telemetra_ingest_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_DEPTH = Gauge("telemetra_ingest_queue_messages", "Messages waiting for the writer")
SEAL_SECONDS = Histogram(
    "telemetra_rollup_seal_seconds",
    "Time to seal one slice of the hourly statistics",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SEALED_ROWS = Counter("telemetra_rollup_sealed_rows_total", "Hourly statistics rows written by the sealer")
