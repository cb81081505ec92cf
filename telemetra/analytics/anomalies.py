"""A device key's anomalies over a range: the alerts its rules raised, and the values outside the key's range
in TELEMETRA_ANOMALY_THRESHOLDS (the edge pre-processing of seed 000, for any route to use)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.thresholds import Threshold
from telemetra.store import Store

if TYPE_CHECKING:
    from telemetra.domain.alerts import Alert

__all__ = ["Anomaly", "find_anomalies", "MAX_ANOMALIES"]

MAX_ANOMALIES = 100
# Raw values are scanned for anomalies newest first, this many at a time: memory stays bounded on any range.
ANOMALY_SCAN_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomaly: ``alert`` when a rule raised it, ``threshold`` when the value is outside that range."""

    timestamp: datetime
    key: str | None
    value: Any
    alert: Alert | None = None
    threshold: Threshold | None = None


async def find_anomalies(
    store: Store,
    device: Device,
    key: str,
    start: datetime,
    end: datetime,
    stats: Aggregate | None,
    threshold: Threshold | None,
) -> list[Anomaly]:
    """The device's alerts in [start, end), newest first, then the values of ``key`` outside ``threshold``,
    newest first; at most MAX_ANOMALIES. ``stats`` (of the key over the range) spares the scan of the raw
    values when neither its minimum nor its maximum is outside."""
    raised, _ = await store.alerts.list_alerts(device.tenant_id, device_pk=device.pk, since=start, limit=MAX_ANOMALIES)
    found = [Anomaly(a.last_ts, a.key or None, a.last_value, alert=a) for a in raised if a.first_ts < end]
    if threshold is None or stats is None or not (threshold.breached(stats.min) or threshold.breached(stats.max)):
        return found
    before = end
    while len(found) < MAX_ANOMALIES:
        page = (await store.query_points(device.pk, [key], start, before, ANOMALY_SCAN_PAGE, True)).get(key, [])
        for ts, value in page:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and threshold.breached(value):
                found.append(Anomaly(ts, key, value, threshold=threshold))
                if len(found) >= MAX_ANOMALIES:
                    break
        if len(page) < ANOMALY_SCAN_PAGE:
            break
        before = page[-1][0]
    return found
