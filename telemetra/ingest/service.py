"""Accept telemetry of a device: validate, stamp, write, and only then answer."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from telemetra.domain.models import Device, TelemetryMessage
from telemetra.domain.telemetry import TelemetryLimits, parse_native_message, points_from_values
from telemetra.domain.timeparse import utcnow
from telemetra.ingest.stamps import ReceiveClock
from telemetra.settings import Settings
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["TelemetryService", "limits_from_settings"]


def limits_from_settings(settings: Settings) -> TelemetryLimits:
    return TelemetryLimits(max_keys=settings.max_keys_per_message, max_key_length=settings.max_key_length,
                           max_future=timedelta(seconds=settings.max_future_skew_s),
                           oldest=datetime(settings.oldest_timestamp_year, 1, 1, tzinfo=timezone.utc))


class TelemetryService:
    def __init__(self, store: Store, limits: TelemetryLimits) -> None:
        self._store = store
        self._limits = limits
        self._clock = ReceiveClock()

    async def accept_native(self, device: Device, doc: Any) -> TelemetryMessage:
        """Validate a seed-002 message of ``device`` and commit it; return it with its id."""
        now = utcnow()
        parsed = parse_native_message(doc, now=now, limits=self._limits)
        ts = parsed.ts or self._clock.stamp(device.pk, now)
        message = TelemetryMessage(device_pk=device.pk, ts=ts, data=parsed.data, metadata=parsed.metadata,
                                   type=parsed.type, points=points_from_values(parsed.data, ts))
        started = time.perf_counter()
        await self._store.write_telemetry([message], now)
        logger.debug("telemetry committed device=%s id=%s points=%d in %.1f ms", device.id, message.id,
                     len(message.points), (time.perf_counter() - started) * 1000)
        return message
