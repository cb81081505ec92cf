"""Live feed metrics on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["DROPPED_EVENTS", "DROPPED_SUBSCRIBERS", "SUBSCRIBERS"]

DROPPED_EVENTS = Counter(
    "telemetra_live_dropped_events_total",
    "Live events not published, by reason (feed_full: ingestion outran the feed; bus_error: not "
    "sent to other processes)",
    ["reason"],
)
DROPPED_SUBSCRIBERS = Counter(
    "telemetra_live_dropped_subscribers_total", "Stream clients disconnected for falling too far behind"
)
SUBSCRIBERS = Gauge("telemetra_live_subscribers", "Live subscriptions open in this process")
