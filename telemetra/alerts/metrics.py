"""Alerting figures on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["ALERTS", "EVALUATION_SECONDS", "BACKLOG_BATCHES", "NOTIFICATIONS", "SHARDS_HELD", "INBOX_POINTS"]

ALERTS = Counter("telemetra_alerts_total", "Alerts raised and cleared, by severity", ["severity", "event"])
EVALUATION_SECONDS = Histogram(
    "telemetra_rules_evaluation_seconds",
    "Time to evaluate the rules of one batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
BACKLOG_BATCHES = Gauge(
    "telemetra_rules_backlog_batches",
    "Committed batches handed to rule evaluation and not evaluated yet (the one being evaluated included)",
)
NOTIFICATIONS = Counter(
    "telemetra_notifications_total", "Notification delivery attempts, by channel kind and outcome", ["kind", "outcome"]
)
SHARDS_HELD = Gauge("telemetra_rule_shards_held", "Rule shards this process evaluates (of 64 in all)")
INBOX_POINTS = Counter(
    "telemetra_rule_inbox_points_total",
    "Points handed to another process's rules (queued) or taken from the queue (taken)",
    ["direction"],
)
