"""Accept telemetry: normalise any known format, build points, hand to the pipeline, answer after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from telemetra.domain.formats import normalize
from telemetra.domain.models import Device, TelemetryMessage
from telemetra.domain.telemetry import TelemetryLimits, build_points
from telemetra.domain.timeparse import utcnow
from telemetra.errors import DeviceInactive, DeviceNotFound, TelemetraError, ValidationFailed
from telemetra.ingest import metrics
from telemetra.ingest.pipeline import Pipeline
from telemetra.ingest.stamps import ReceiveClock
from telemetra.settings import Settings
from telemetra.store import Store

if TYPE_CHECKING:
    from telemetra.registry.credential_cache import CredentialCache

logger = logging.getLogger(__name__)
__all__ = ["TelemetryService", "BatchItemResult", "limits_from_settings"]

INACTIVE = "inactive"  # a device status (seed 002) whose telemetry is refused
# Messages of a batch request validated between two yields to the event loop (a few milliseconds' work).
PREPARE_SLICE = 250


def limits_from_settings(settings: Settings) -> TelemetryLimits:
    return TelemetryLimits(
        max_keys=settings.max_keys_per_message,
        max_key_length=settings.max_key_length,
        max_future=timedelta(seconds=settings.max_future_skew_s),
        oldest=datetime(settings.oldest_timestamp_year, 1, 1, tzinfo=timezone.utc),
    )


@dataclass(slots=True)
class BatchItemResult:
    index: int
    device_id: str | None
    message: TelemetryMessage | None = None
    error: TelemetraError | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {
                "index": self.index,
                "status": "rejected",
                "device_id": self.device_id,
                "code": self.error.code,
                "message": self.error.message,
            }
        assert self.message is not None  # an item is either refused (error) or accepted (message)
        return {
            "index": self.index,
            "status": "accepted",
            "device_id": self.device_id,
            "telemetry_id": self.message.id,
            "duplicate": self.message.duplicate,
        }


class TelemetryService:
    def __init__(
        self, store: Store, pipeline: Pipeline, limits: TelemetryLimits, credentials: CredentialCache | None = None
    ) -> None:
        self._store = store
        self._credentials = credentials
        self.pipeline = pipeline
        self._limits = limits
        self._clock = ReceiveClock()
        self._connection_listeners: list[Callable[[Device, str, str | None], Awaitable[None]]] = []

    def on_connection(self, listener: Callable[[Device, str, str | None], Awaitable[None]]) -> None:
        """Call ``listener(device, state, previous state)`` when a broker reports a device online or offline."""
        self._connection_listeners.append(listener)

    def prepare(self, device: Device, doc: Any, now: datetime, *, source: str = "http") -> TelemetryMessage:
        """Validate a message of ``device`` in any known format and build its points (no I/O); 403
        ``device_inactive`` for a device whose status is inactive."""
        try:
            _refuse_inactive(device)
            normalized = normalize(doc, now=now, limits=self._limits)
            if normalized.device_id is not None and normalized.device_id != device.id:
                raise ValidationFailed(
                    f"the message names device '{normalized.device_id[:128]}' but is sent for '{device.id}'",
                    code="device_mismatch",
                )
            ts = normalized.ts or self._clock.stamp(device.pk, now)
            points = build_points(normalized.values, ts, self._limits)
            if not points:
                raise ValidationFailed("the message holds no value to store (all null or empty)", code="invalid_data")
        except TelemetraError as exc:
            metrics.REJECTED.labels(source, exc.code).inc()
            raise
        return TelemetryMessage(
            device_pk=device.pk,
            ts=ts,
            data=normalized.data,
            metadata=normalized.metadata,
            type=normalized.type,
            points=points,
            msg_id=normalized.msg_id,
            device_id=device.id,
            tenant_id=device.tenant_id,
        )

    async def accept(self, device: Device, doc: Any, *, source: str = "http") -> TelemetryMessage:
        """Commit one message of ``device``; return it with its id once committed (at once when a writer is
        free, else in the next transaction with what arrived meanwhile: ``Pipeline.submit``)."""
        message = self.prepare(device, doc, utcnow(), source=source)
        refused = await self.pipeline.submit([message], source, tenant_id=device.tenant_id)
        if refused:
            raise refused[0]  # the database refuses it (UnstorableMessage): a 4xx, never a 503 to retry for ever
        return message

    async def record_connection(self, device: Device, state: str) -> None:
        """Keep what the broker says of a device's connection (its retained state, or its last will)."""
        current = await self._store.get_device_by_pk(device.pk) or device
        now = utcnow()
        fields: dict[str, Any] = {"attributes": {**current.attributes, "connection": state}, "connection_at": now}
        if state == "online":
            fields["last_seen"] = now
        updated = await self._store.update_device(device.pk, fields)
        logger.info("device %s is %s (mqtt)", device.id, state)
        for listener in self._connection_listeners:
            try:
                await listener(updated, state, current.attributes.get("connection"))
            except Exception:
                logger.exception("connection listener %r failed", listener)

    async def accept_batch(
        self, tenant_id: int, docs: list[Any], *, source: str = "http_batch"
    ) -> list[BatchItemResult]:
        """Commit the valid messages of a batch for the tenant's devices; report each one's fate."""
        now = utcnow()
        wanted = [_named_device(doc) for doc in docs]
        devices = await self._devices_named({d for d in wanted if d})
        results, accepted = [], []
        for index, (doc, device_id) in enumerate(zip(docs, wanted, strict=True)):
            if index and index % PREPARE_SLICE == 0:
                await asyncio.sleep(0)  # the writer, between two round trips to the database, goes on
            result = BatchItemResult(index=index, device_id=device_id)
            device = devices.get(device_id) if device_id else None
            try:
                if device_id is None:
                    raise ValidationFailed(
                        "each message needs a 'device_id' (or bizData.devId)", code="missing_device_id"
                    )
                if device is None or device.tenant_id != tenant_id:
                    raise DeviceNotFound(f"No device '{device_id[:128]}' in your tenant.")
                result.message = self.prepare(device, doc, now, source=source)
                accepted.append(result.message)
            except TelemetraError as exc:
                result.error = exc
                if exc.code in ("device_not_found", "missing_device_id"):
                    metrics.REJECTED.labels(source, exc.code).inc()
            results.append(result)
        if accepted:
            _drop_refused(results, await self.pipeline.submit(accepted, source, tenant_id=tenant_id))
        return results

    async def _devices_named(self, device_ids: set[str]) -> dict[str, Device]:
        """The devices of ``device_ids`` that exist, from the credential cache where it has them (it follows
        every device change, here at once and elsewhere within about a second)."""
        if self._credentials is None:
            return await self._store.get_devices(list(device_ids))
        found, missing = self._credentials.devices(device_ids)
        if missing:
            generation = self._credentials.generation
            loaded = await self._store.get_devices(missing)
            self._credentials.put_devices(list(loaded.values()), generation)
            found.update(loaded)
        return found

    async def accept_own_batch(
        self, device: Device, docs: list[Any], *, source: str = "http_batch"
    ) -> list[BatchItemResult]:
        """Commit the valid messages of one device's batch (its buffer, replayed); a message naming another
        device is rejected."""
        try:
            _refuse_inactive(device)  # the whole request is the device's own: refused whole, as its single messages
        except DeviceInactive as exc:
            metrics.REJECTED.labels(source, exc.code).inc(len(docs))
            raise
        now = utcnow()
        results, accepted = [], []
        for index, doc in enumerate(docs):
            result = BatchItemResult(index=index, device_id=device.id)
            try:
                result.message = self.prepare(device, doc, now, source=source)
                accepted.append(result.message)
            except TelemetraError as exc:
                result.error = exc
            results.append(result)
        if accepted:
            _drop_refused(results, await self.pipeline.submit(accepted, source, tenant_id=device.tenant_id))
        return results


def _drop_refused(results: list[BatchItemResult], refused: Mapping[int, TelemetraError]) -> None:
    """Report as rejected the accepted messages the pipeline did not commit (indexes count accepted ones)."""
    if not refused:
        return
    accepted = [r for r in results if r.error is None]
    for index, error in refused.items():
        accepted[index].message, accepted[index].error = None, error


def _refuse_inactive(device: Device) -> None:
    # The device comes from a cache (the credential cache over HTTP, the device cache on a broker): an
    # attribute compare, no query, on the hot path. A status change reaches the credential cache within about
    # a second (it moves the credential epoch) and a broker source's device cache within its KNOWN_TTL_S.
    if device.status == INACTIVE:
        raise DeviceInactive(
            f"Device '{device.id}' is inactive: its telemetry is refused until its status is active again "
            "(PUT /api/v1/devices/config, or the admin's device update)."
        )


def _named_device(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    named = doc.get("device_id")
    if named is None and isinstance(doc.get("bizData"), dict):
        named = doc["bizData"].get("devId")
    return named if isinstance(named, str) else None
