"""Devices: registration with a first key (or on first sight), lookups scoped to a tenant, reported configuration."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from typing import Any

from telemetra.domain.ids import check_device_id, new_device_id
from telemetra.domain.models import DEVICE_STATUSES, Device
from telemetra.errors import DeviceIdTaken, DeviceNameTaken, DeviceNotFound, ValidationFailed
from telemetra.registry.auth import TenantCaller
from telemetra.registry.credential_cache import CredentialCache
from telemetra.registry.keys import new_key
from telemetra.store import DeviceFilter, NewDevice, Store

logger = logging.getLogger(__name__)
__all__ = ["DeviceService", "CONFIG_FIELDS", "MAX_TENANT_DEVICES"]

# What a device reports about itself through PUT /api/v1/devices/config (seed 002); other keys are kept
# as reported attributes.
CONFIG_FIELDS = ("status", "location", "firmware_version", "hardware_version", "offline_after_s")
ADMIN_FIELDS = (
    "name",
    "description",
    "device_type",
    "status",
    "location",
    "firmware_version",
    "hardware_version",
    "offline_after_s",
)
MAX_OFFLINE_AFTER_S = 30 * 86_400
MAX_ATTRIBUTES = 256
NEW_ID_ATTEMPTS = 3
# Tenant-wide answers read every device of the tenant; past this the tenant should ask per device.
MAX_TENANT_DEVICES = 100_000


class DeviceService:
    def __init__(self, store: Store, credentials: CredentialCache | None = None) -> None:
        self._store = store
        # An authenticated device key carries its device: a changed or deleted device must not be served
        # from there.
        self._credentials = credentials or CredentialCache(ttl_s=0)

    async def register(
        self,
        tenant_id: int,
        *,
        name: str,
        device_id: str | None = None,
        description: str = "",
        device_type: str = "sensor",
        location: str | None = None,
        firmware_version: str | None = None,
        hardware_version: str | None = None,
        status: str = "active",
    ) -> tuple[Device, str]:
        """Register a device with its first key; return it and the clear key (shown once)."""
        if device_id is not None:
            problem = check_device_id(device_id)
            if problem:
                raise ValidationFailed(problem, code="invalid_device_id")
        _check_status(status)
        for attempt in range(NEW_ID_ATTEMPTS):
            chosen = device_id or new_device_id()
            record = NewDevice(
                id=chosen,
                tenant_id=tenant_id,
                name=name,
                description=description,
                device_type=device_type,
                status=status,
                location=location,
                firmware_version=firmware_version,
                hardware_version=hardware_version,
            )
            key, secret = new_key("device", tenant_id=tenant_id, name=chosen)
            try:
                device = await self._store.create_device(record, key)
                break
            except DeviceIdTaken:
                # A generated id colliding is astronomically rare; a chosen one is the caller's to fix.
                if device_id is not None or attempt == NEW_ID_ATTEMPTS - 1:
                    raise
        logger.info("device registered id=%s tenant=%s", device.id, tenant_id)
        return device, secret

    async def get(self, device_id: str) -> Device:
        device = await self._store.get_device(device_id)
        if device is None:
            raise DeviceNotFound()
        return device

    async def get_in_tenant(self, tenant_id: int, device_id: str) -> Device:
        """Return a device of the tenant; another tenant's device is reported as not found."""
        device = await self._store.get_device(device_id)
        if device is None or device.tenant_id != tenant_id:
            raise DeviceNotFound()
        return device

    async def all_in_tenant(self, tenant_id: int, device_ids: builtins.list[str]) -> builtins.list[Device]:
        """The tenant's devices of these ids, in one read; DeviceNotFound when one is not the tenant's."""
        found = await self._store.get_devices(device_ids)
        for device_id in device_ids:
            device = found.get(device_id)
            if device is None or device.tenant_id != tenant_id:
                raise DeviceNotFound(f"No device '{device_id[:128]}' in your tenant.")
        return [found[d] for d in dict.fromkeys(device_ids)]

    async def get_or_register(
        self,
        principal: TenantCaller,
        device_id: str,
        *,
        device_type: str,
        before_register: Callable[[Device], object] | None = None,
    ) -> Device:
        """Return the caller's device ``device_id``, registered on first sight (a device known only by the
        messages it sends, as seed 001's heaters are).

        Only a key of scope 'full' registers, as at /register; a key of scope 'ingest' gets 404 for a device
        it does not know, as the batch route answers, or it could claim ids (unique across tenants) before
        their owner. ``before_register`` gets the device as it would be registered, before it is: raising
        there (the message is invalid) leaves no device behind.
        """
        tenant_id = principal.tenant_id
        device = await self._store.get_device(device_id)
        if device is None:
            if not principal.may_register:
                raise DeviceNotFound(
                    f"No device '{device_id[:128]}' in your tenant; a key of scope 'ingest' does "
                    "not register devices: register it first, or send its first message with a "
                    "key of scope 'full'."
                )
            if before_register is not None:
                before_register(Device(pk=0, id=device_id, tenant_id=tenant_id, name=device_id))
            try:
                device, _ = await self.register(tenant_id, name=device_id, device_id=device_id, device_type=device_type)
            except (DeviceIdTaken, DeviceNameTaken) as taken:
                # Registered meanwhile by a concurrent message. Its name is its id, and SQLite may report
                # the name's uniqueness rather than the id's; a name that another device of the tenant
                # bears is a real conflict.
                device = await self._store.get_device(device_id)
                if device is None and isinstance(taken, DeviceNameTaken):
                    raise
        if device is None or device.tenant_id != tenant_id:
            raise DeviceNotFound(f"No device '{device_id[:128]}' in your tenant.")
        return device

    async def get_or_register_in(self, tenant_id: int, device_id: str, *, device_type: str) -> Device:
        """The tenant's device ``device_id``, registered on first sight, for a source the operator configured
        (the puller); DeviceNotFound when the id is another tenant's device."""
        device = await self._store.get_device(device_id)
        if device is None:
            try:
                device, _ = await self.register(tenant_id, name=device_id, device_id=device_id, device_type=device_type)
            except (DeviceIdTaken, DeviceNameTaken) as taken:  # registered meanwhile (see get_or_register)
                device = await self._store.get_device(device_id)
                if device is None and isinstance(taken, DeviceNameTaken):
                    raise
        if device is None or device.tenant_id != tenant_id:
            raise DeviceNotFound(f"The id '{device_id[:128]}' is another tenant's device.")
        return device

    async def list(self, flt: DeviceFilter) -> tuple[list[Device], int]:
        return await self._store.list_devices(flt)

    async def in_tenant(self, tenant_id: int) -> builtins.list[Device]:  # `list` here is the method above
        """Every device of the tenant; 422 ``too_many_devices`` past MAX_TENANT_DEVICES."""
        devices, total = await self._store.list_devices(DeviceFilter(tenant_id=tenant_id, limit=MAX_TENANT_DEVICES))
        if total > MAX_TENANT_DEVICES:
            raise ValidationFailed(
                f"the tenant has more than {MAX_TENANT_DEVICES} devices; ask per device", code="too_many_devices"
            )
        return devices

    async def report_config(self, device: Device, reported: dict[str, Any]) -> Device:
        """Apply what a device reports about itself; unknown keys become reported attributes."""
        fields = {name: reported[name] for name in CONFIG_FIELDS if name in reported}
        if "status" in fields:
            _check_status(fields["status"])
        for name in ("location", "firmware_version", "hardware_version"):
            if name in fields and fields[name] is not None and not isinstance(fields[name], str):
                raise ValidationFailed(f"'{name}' must be a string", code="invalid_config")
        if "offline_after_s" in fields:
            _check_offline_after(fields["offline_after_s"])
        extra = {k: v for k, v in reported.items() if k not in CONFIG_FIELDS}
        if extra:
            # Merged into the stored attributes, not into those of the caller's (possibly cached) device.
            current = await self._store.get_device_by_pk(device.pk) or device
            attributes = {**current.attributes, **extra}
            if len(attributes) > MAX_ATTRIBUTES:
                raise ValidationFailed(f"a device keeps at most {MAX_ATTRIBUTES} attributes", code="too_many_keys")
            fields["attributes"] = attributes
        updated = await self._store.update_device(device.pk, fields)
        self._credentials.clear()
        logger.info("device config reported id=%s fields=%s", device.id, ",".join(sorted(reported)))
        return updated

    async def admin_update(self, device: Device, changes: dict[str, Any]) -> Device:
        fields = {name: changes[name] for name in ADMIN_FIELDS if name in changes}
        if "status" in fields:
            _check_status(fields["status"])
        updated = await self._store.update_device(device.pk, fields)
        self._credentials.clear()
        return updated

    async def tenant_update(self, device: Device, changes: dict[str, Any]) -> Device:
        """A tenant's change to its device: ``ADMIN_FIELDS`` and ``attributes`` (replaced whole, bounded)."""
        attributes = changes.get("attributes")
        if attributes is not None and len(attributes) > MAX_ATTRIBUTES:
            raise ValidationFailed(f"a device keeps at most {MAX_ATTRIBUTES} attributes", code="too_many_keys")
        fields = {name: changes[name] for name in ADMIN_FIELDS if changes.get(name) is not None}
        if "location" in changes:
            fields["location"] = changes["location"]  # null clears it
        if attributes is not None:
            fields["attributes"] = attributes
        if "status" in fields:
            _check_status(fields["status"])
        if not fields:
            return device
        updated = await self._store.update_device(device.pk, fields)
        self._credentials.clear()
        logger.info("device updated id=%s fields=%s", device.id, ",".join(sorted(fields)))
        return updated

    async def delete(self, device: Device) -> None:
        await self._store.delete_device(device.pk)
        self._credentials.clear()
        logger.warning("device deleted id=%s tenant=%s", device.id, device.tenant_id)


def _check_offline_after(value: Any) -> None:
    # A device that knows its reporting interval says how long a silence means it is gone (None: default).
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OFFLINE_AFTER_S
    ):
        raise ValidationFailed(
            f"'offline_after_s' must be a whole number of seconds from 1 to {MAX_OFFLINE_AFTER_S}",
            code="invalid_config",
        )


def _check_status(status: Any) -> None:
    if status not in DEVICE_STATUSES:
        raise ValidationFailed(f"'status' must be one of {', '.join(DEVICE_STATUSES)}", code="invalid_status")
