"""Simulated devices inside `telemetra serve --simulate N`: a few demo devices sending through the pipeline."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import random
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Coroutine

from telemetra.errors import TelemetraError
from telemetra.sim.profiles import DEVICE_TYPES, PROFILES, DeviceState, make_message

if TYPE_CHECKING:
    from telemetra.ingest.service import TelemetryService
    from telemetra.registry.devices import DeviceService
    from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["run_demo_devices", "simulate_alone"]

DEMO_INTERVAL_S = 5.0


async def run_demo_devices(
    store: Store, devices: DeviceService, telemetry: TelemetryService, tenant_name: str, count: int
) -> None:
    """Register ``count`` demo devices (one profile after another) if missing, then send forever."""
    tenant = await store.get_tenant_by_name(tenant_name)
    tenant_id = tenant.id if tenant else (await store.create_tenant(tenant_name)).id
    profiles = list(PROFILES)
    states = []
    for i in range(count):
        profile = profiles[i % len(profiles)]
        device_id = f"demo-{profile}-{i + 1}"
        device = await store.get_device(device_id)
        if device is None:
            device, _ = await devices.register(
                tenant_id, name=device_id, device_id=device_id, device_type=DEVICE_TYPES[profile]
            )
        states.append((device, profile, DeviceState(index=i, device_id=device_id)))
    logger.info("simulating %d demo devices, one message each every %.0fs", count, DEMO_INTERVAL_S)
    rng = random.Random()
    run = secrets.token_hex(4)  # sequences restart with the process: a new run must not look like a replay
    while True:
        for device, profile, state in states:
            body = make_message(profile, state, datetime.now(timezone.utc), rng)
            body["msg_id"] = f"{run}-{body['msg_id']}"
            try:
                await telemetry.accept(device, body, source="simulator")
            except TelemetraError as exc:
                logger.warning("demo device %s: %s", device.id, exc.message)
        await asyncio.sleep(DEMO_INTERVAL_S)


async def simulate_alone(lock_path: Path, simulation: Coroutine[Any, Any, None]) -> None:
    """Run ``simulation`` unless another server on the same database already runs one.

    A second `make run PORT=...` on the same file would otherwise double every demo device's messages.
    The lock is an advisory file lock beside the database, released when this process ends, killed or not.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another server on this database simulates the demo devices; this one does not")
            if asyncio.iscoroutine(simulation):
                simulation.close()
            return
        await simulation
    finally:
        os.close(fd)
