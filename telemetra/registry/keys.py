"""Issue, rotate and revoke keys; the clear key is returned once and never stored."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import ApiKey, Device, KeyKind, KeyScope
from telemetra.domain.mosquitto_auth import mosquitto_hash
from telemetra.domain.timeparse import utcnow
from telemetra.errors import KeyNotFound, KeyNotUsable
from telemetra.registry.credential_cache import CredentialCache
from telemetra.store import NewKey, Store

logger = logging.getLogger(__name__)
__all__ = ["KeyService", "new_key"]


def new_key(
    kind: KeyKind,
    *,
    tenant_id: int | None = None,
    device_pk: int | None = None,
    scope: KeyScope = "full",
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[NewKey, str]:
    """Return a key record to store and the clear key to show once."""
    secret = generate_key(kind)
    # A device also logs in to the MQTT broker with its key; the broker's hash can only be made now.
    broker_hash = mosquitto_hash(secret) if kind == "device" else None
    record = NewKey(
        kind=kind,
        hash=hash_key(secret),
        prefix=visible_prefix(secret),
        tenant_id=tenant_id,
        device_pk=device_pk,
        scope=scope,
        name=name,
        expires_at=expires_at,
        broker_hash=broker_hash,
    )
    return record, secret


class KeyService:
    def __init__(self, store: Store, credentials: CredentialCache | None = None) -> None:
        self._store = store
        self._credentials = credentials or CredentialCache(ttl_s=0)

    async def _reread(self, key_id: int) -> ApiKey:
        """A key as it is now, just after this service changed it; KeyNotFound when it went meanwhile (its
        tenant or device was deleted in between)."""
        key = await self._store.get_key(key_id)
        if key is None:
            raise KeyNotFound()
        return key

    async def _revoke(self, key_id: int) -> None:
        await self._store.revoke_key(key_id, utcnow())
        self._credentials.clear()  # this process refuses the key from the next request on

    async def issue_tenant_key(
        self, tenant_id: int, *, scope: KeyScope = "full", name: str = "", expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """Create a tenant key; return its record and the clear key."""
        record, secret = new_key("tenant", tenant_id=tenant_id, scope=scope, name=name, expires_at=expires_at)
        stored = await self._store.create_key(record)
        logger.info(
            "tenant key issued tenant=%s key_id=%s prefix=%s scope=%s", tenant_id, stored.id, stored.prefix, scope
        )
        return stored, secret

    async def revoke_tenant_key(self, tenant_id: int, key_id: int) -> ApiKey:
        """Revoke one of a tenant's keys; KeyNotFound when it is not theirs."""
        key = await self._store.get_key(key_id)
        if key is None or key.tenant_id != tenant_id or key.kind != "tenant":
            raise KeyNotFound()
        await self._revoke(key_id)
        logger.info("tenant key revoked tenant=%s key_id=%s prefix=%s", tenant_id, key_id, key.prefix)
        return await self._reread(key_id)

    async def rotate_device_key(self, device: Device) -> tuple[ApiKey, str]:
        """Give a device a new key and revoke its earlier ones."""
        stored, secret, _ = await self.replace_device_key(device)
        return stored, secret

    async def replace_device_key(
        self, device: Device, *, grace_s: int = 0, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str, list[ApiKey]]:
        """Give a device a new key; its earlier usable keys are revoked, or work ``grace_s`` seconds more.

        Return the new key's record, its clear key, and the earlier keys as they now are.
        """
        now = utcnow()
        old_keys = [k for k in await self._store.list_keys(device_pk=device.pk, kind="device") if k.is_usable(now)]
        record, secret = new_key(
            "device", tenant_id=device.tenant_id, device_pk=device.pk, name=device.id, expires_at=expires_at
        )
        stored = await self._store.create_key(record)
        grace_until = now + timedelta(seconds=grace_s)
        for key in old_keys:
            if grace_s <= 0:
                await self._revoke(key.id)
            elif key.expires_at is None or key.expires_at > grace_until:  # a grace never lengthens a key's life
                await self._store.expire_key(key.id, grace_until)
                self._credentials.clear()
        logger.info(
            "device key rotated device=%s key_id=%s prefix=%s grace_s=%s", device.id, stored.id, stored.prefix, grace_s
        )
        return stored, secret, [await self._reread(k.id) for k in old_keys]

    async def tenant_owned_key(self, tenant_id: int, key_id: int) -> ApiKey:
        """Return one of the tenant's keys (its tenant keys and its devices' keys); KeyNotFound otherwise."""
        key = await self._store.get_key(key_id)
        if key is None or key.tenant_id != tenant_id or key.kind == "admin":
            raise KeyNotFound()
        return key

    async def rotate(
        self, tenant_id: int, key_id: int, *, grace_s: int = 0, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str, ApiKey]:
        """Replace a tenant or device key by a new one; the old one keeps working ``grace_s`` seconds more.

        Return the new key's record, its clear key, and the old key as it now is.
        """
        old = await self.tenant_owned_key(tenant_id, key_id)
        now = utcnow()
        if not old.is_usable(now):
            raise KeyNotUsable()
        record, secret = new_key(
            old.kind,
            tenant_id=tenant_id,
            device_pk=old.device_pk,
            scope=old.scope,
            name=old.name,
            expires_at=expires_at,
        )
        stored = await self._store.create_key(record)
        if grace_s > 0:
            await self._store.expire_key(key_id, now + timedelta(seconds=grace_s))
            self._credentials.clear()  # a cached copy would not know of its new expiry
        else:
            await self._revoke(key_id)
        logger.info(
            "key rotated kind=%s old_key_id=%s new_key_id=%s prefix=%s grace_s=%s",
            old.kind,
            key_id,
            stored.id,
            stored.prefix,
            grace_s,
        )
        return stored, secret, await self._reread(key_id)

    async def revoke(self, tenant_id: int, key_id: int) -> ApiKey:
        """Revoke one of the tenant's keys (tenant or device) at once."""
        key = await self.tenant_owned_key(tenant_id, key_id)
        await self._revoke(key_id)
        logger.info("key revoked kind=%s key_id=%s prefix=%s", key.kind, key_id, key.prefix)
        return await self._reread(key_id)

    async def rotate_tenant_key(self, tenant_id: int, key_id: int) -> tuple[ApiKey, str]:
        """Replace a tenant key by a new one of the same scope and name."""
        old = await self._store.get_key(key_id)
        if old is None or old.tenant_id != tenant_id or old.kind != "tenant":
            raise KeyNotFound()
        stored, secret = await self.issue_tenant_key(tenant_id, scope=old.scope, name=old.name)
        await self._revoke(key_id)
        return stored, secret

    async def ensure_admin_key(self, configured: str | None) -> str | None:
        """Make sure an admin key exists; return a newly generated one (to print once), else None.

        A configured key (TELEMETRA_ADMIN_KEY) is stored hashed; one that replaced an earlier configured
        key revokes it.
        """
        admin_keys = [k for k in await self._store.list_keys(kind="admin") if k.revoked_at is None]
        if configured is not None:
            digest = hash_key(configured)
            existing = await self._store.find_key(digest)
            if existing is None:
                await self._store.create_key(
                    NewKey(kind="admin", hash=digest, prefix=visible_prefix(configured), name="configured")
                )
            for key in admin_keys:
                if key.name == "configured" and (existing is None or key.id != existing.id):
                    await self._revoke(key.id)
            return None
        if admin_keys:
            return None
        record, secret = new_key("admin", name="generated")
        await self._store.create_key(record)
        logger.warning("no admin key was configured: one was generated (prefix %s) and printed once", record.prefix)
        return secret

    async def create_admin_key(self, name: str) -> tuple[ApiKey, str]:
        """A further admin key (an operator's, a script's); `rotate_admin_key` revokes it with the generated one."""
        if name in ("generated", "configured"):
            raise ValueError(f"the name '{name}' is kept for the server's own admin key")
        record, secret = new_key("admin", name=name)
        stored = await self._store.create_key(record)
        logger.info("admin key %s '%s' created", record.prefix, name)
        return stored, secret

    async def rotate_admin_key(self) -> str:
        """Revoke every generated admin key and return a new one."""
        for key in await self._store.list_keys(kind="admin"):
            if key.revoked_at is None and key.name != "configured":
                await self._revoke(key.id)
        record, secret = new_key("admin", name="generated")
        await self._store.create_key(record)
        return secret
