"""`telemetra pull` (and `serve` with TELEMETRA_PULL_URL): poll an upstream IoT objects API into the store.

Each upstream object becomes a device of the tenant named after its client, both created on first sight;
each poll stores the object's current metrics with the upstream's timestamp, through the same
``TelemetryService`` and pipeline as every other source (``source="pull"`` in the ingest metrics). A reading's
msg_id is the object's id and the upstream's timestamp: polled twice, by this process or after a restart, it is
stored once. An object whose id is a device of another tenant is left alone (device ids are unique across
tenants), said once.

The upstream being down, slow or answering garbage is counted (``telemetra_pull_*``), logged once per change
of state, and retried with a back-off (doubling from the poll period up to ``MAX_BACKOFF_S``); nothing local
waits for it but the poller.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import Counter, Gauge

from telemetra.domain.models import Device, TelemetryMessage
from telemetra.domain.timeparse import utcnow
from telemetra.errors import Conflict, DeviceNotFound, TelemetraError, ValidationFailed
from telemetra.ingest.sources.pull_upstream import Upstream, UpstreamError, UpstreamObject

if TYPE_CHECKING:
    from telemetra.ingest.service import TelemetryService
    from telemetra.registry.devices import DeviceService
    from telemetra.registry.tenants import TenantService

logger = logging.getLogger(__name__)
__all__ = ["PullConfig", "PullSource", "PollResult"]

SOURCE = "pull"
MAX_BACKOFF_S = 300.0
# An upstream listing more objects than this is polled for the first ones only (and told once).
MAX_OBJECTS = 10_000

PULL_POLLS = Counter("telemetra_pull_polls_total", "Polls of the upstream objects API, by outcome", ["outcome"])
PULL_FAILURES = Counter(
    "telemetra_pull_request_failures_total",
    "Requests to the upstream objects API that failed, by kind (down, slow, http_error, garbage)",
    ["kind"],
)
PULL_UP = Gauge("telemetra_pull_upstream_up", "1 while the last poll of the upstream objects API succeeded")
PULL_OBJECTS = Gauge("telemetra_pull_objects", "Objects the last poll of the upstream listed")


@dataclass(frozen=True, slots=True)
class PullConfig:
    url: str
    every_s: float = 10.0
    clients: tuple[str, ...] = ()
    concurrency: int = 8
    timeout_s: float = 5.0


@dataclass(slots=True)
class PollResult:
    objects: int = 0
    stored: int = 0
    duplicates: int = 0
    failures: Tally[str] = field(default_factory=Tally)
    detail: str = ""  # the first failure, as logged

    def failed(self, exc: UpstreamError) -> None:
        self.failures[exc.kind] += 1
        self.detail = self.detail or exc.detail
        PULL_FAILURES.labels(exc.kind).inc()

    @property
    def outcome(self) -> str:
        """``ok``, or the most frequent kind of failure of the poll (its state, as logged)."""
        return self.failures.most_common(1)[0][0] if self.failures else "ok"


def shown_url(url: str) -> str:
    """The URL without its credentials, for the logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class PullSource:
    def __init__(
        self, config: PullConfig, telemetry: TelemetryService, tenants: TenantService, devices: DeviceService
    ) -> None:
        self._config = config
        self._telemetry = telemetry
        self._tenants = tenants
        self._devices = devices
        self._upstream = Upstream(config.url, timeout_s=config.timeout_s, concurrency=config.concurrency)
        self._known: dict[str, Device | None] = {}  # object id -> its device (None: another tenant's)
        self._state = "starting"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        logger.info("pulling from %s every %.3g s", shown_url(self._config.url), self._config.every_s)
        self._task = asyncio.create_task(self._run(), name="pull")

    async def stop(self, timeout_s: float) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._upstream.aclose()

    async def _run(self) -> None:
        failures = 0
        while True:
            result = await self.poll_once()
            failures = 0 if result.outcome == "ok" else failures + 1
            every = self._config.every_s
            delay = every if failures == 0 else min(every * 2**failures, max(every, MAX_BACKOFF_S))
            await asyncio.sleep(delay)

    async def poll_once(self) -> PollResult:
        """One poll: list the objects, read each (concurrently, bounded), store what is new. Never raises but
        for cancellation: every failure is in the result, counted, and logged when the state changes."""
        result = PollResult()
        try:
            objects = await self._upstream.objects(list(self._config.clients))
        except UpstreamError as exc:
            result.failed(exc)
        else:
            if len(objects) > MAX_OBJECTS:
                if self._state == "starting":
                    logger.warning(
                        "pull: the upstream lists %d objects; polling the first %d", len(objects), MAX_OBJECTS
                    )
                objects = objects[:MAX_OBJECTS]
            result.objects = len(objects)
            PULL_OBJECTS.set(len(objects))
            read = await asyncio.gather(*(self._read(obj, result) for obj in objects))
            await self._store([item for item in read if item is not None], result)
        PULL_POLLS.labels(result.outcome).inc()
        PULL_UP.set(1 if result.outcome == "ok" else 0)
        self._note_state(result)
        return result

    async def _read(self, obj: UpstreamObject, result: PollResult) -> tuple[Device, list[dict[str, Any]]] | None:
        try:
            docs = await self._upstream.readings(obj)
        except UpstreamError as exc:
            result.failed(exc)
            return None
        if not docs:
            return None
        device = await self._device(obj)
        return (device, docs) if device is not None else None

    async def _device(self, obj: UpstreamObject) -> Device | None:
        """The object's device in its client's tenant, both created on first sight."""
        if obj.id in self._known:
            return self._known[obj.id]
        try:
            tenant = await self._tenants.get_or_create(obj.client)
            device: Device | None = await self._devices.get_or_register_in(tenant.id, obj.id, device_type=obj.type)
        except (DeviceNotFound, ValidationFailed, Conflict) as exc:
            # For good (another tenant's id, a name it cannot take): said once, not asked again.
            logger.warning("pull: object %s of client %s is not stored: %s", obj.id, obj.client, exc.message)
            device = None
        except TelemetraError as exc:  # the local store is busy or away: asked again at the next poll
            logger.info("pull: object %s not registered yet: %s", obj.id, exc.message)
            return None
        self._known[obj.id] = device
        return device

    async def _store(self, read: list[tuple[Device, list[dict[str, Any]]]], result: PollResult) -> None:
        now = utcnow()
        by_tenant: dict[int, list[TelemetryMessage]] = {}
        for device, docs in read:
            for doc in docs:
                try:
                    message = self._telemetry.prepare(device, doc, now, source=SOURCE)
                except TelemetraError:
                    result.failures["garbage"] += 1  # counted by the ingest metrics too, by its reason
                    continue
                by_tenant.setdefault(device.tenant_id, []).append(message)
        for tenant_id, messages in by_tenant.items():
            try:
                refused = await self._telemetry.pipeline.submit(messages, SOURCE, tenant_id=tenant_id)
            except TelemetraError as exc:
                # The local store is busy or away: these readings are polled again next time (their msg_ids
                # keep the ones that did get in from doubling).
                result.failures["local_" + exc.code] += 1
                continue
            for index, message in enumerate(messages):
                if index in refused:
                    result.failures["refused"] += 1
                elif message.duplicate:
                    result.duplicates += 1
                else:
                    result.stored += 1

    def _note_state(self, result: PollResult) -> None:
        """Log the upstream's state when it changes (not at every poll of a long outage)."""
        state = result.outcome
        if state == self._state:
            return
        previous, self._state = self._state, state
        url = shown_url(self._config.url)
        if state == "ok":
            logger.info(
                "pull: %s answers (%d objects)%s", url, result.objects, "" if previous == "starting" else " again"
            )
        else:
            logger.warning(
                "pull: %s: %s (%s); retrying with a back-off", url, state, result.detail or dict(result.failures)
            )
