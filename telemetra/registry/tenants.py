"""Tenants (a tenant is a client): creation comes with a first key."""

from __future__ import annotations

import logging

from telemetra.domain.models import ApiKey, Tenant
from telemetra.errors import TenantNameTaken, TenantNotFound, ValidationFailed
from telemetra.registry.keys import KeyService
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["TenantService", "DEFAULT_TENANT_NAME"]

DEFAULT_TENANT_NAME = "default"
MAX_TENANT_NAME_LENGTH = 100


class TenantService:
    def __init__(self, store: Store, keys: KeyService) -> None:
        self._store = store
        self._keys = keys

    async def create(self, name: str) -> tuple[Tenant, ApiKey, str]:
        """Create a tenant and its first full key; return the tenant, key record and clear key."""
        name = name.strip()
        if not 0 < len(name) <= MAX_TENANT_NAME_LENGTH or any(ord(c) < 32 for c in name):
            raise ValidationFailed(
                f"a tenant name is 1-{MAX_TENANT_NAME_LENGTH} printable characters", code="invalid_name"
            )
        tenant = await self._store.create_tenant(name)
        key, secret = await self._keys.issue_tenant_key(tenant.id, name="initial")
        logger.info("tenant created id=%s name=%s", tenant.id, tenant.name)
        return tenant, key, secret

    async def get(self, tenant_id: int) -> Tenant:
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            raise TenantNotFound()
        return tenant

    async def resolve(self, ref: str) -> Tenant:
        """Find a tenant by id or name (for the CLI)."""
        tenant = await self._store.get_tenant(int(ref)) if ref.isdigit() else None
        tenant = tenant or await self._store.get_tenant_by_name(ref)
        if tenant is None:
            raise TenantNotFound(f"No tenant '{ref}'; list them with `telemetra tenant list`.")
        return tenant

    async def named(self, names: list[str]) -> list[Tenant]:
        """The tenants of these names that exist, in the order given."""
        found = [await self._store.get_tenant_by_name(name) for name in names]
        return [tenant for tenant in found if tenant is not None]

    async def get_or_create(self, name: str) -> Tenant:
        """The tenant of this name, created (without a key: the operator issues one) on first use."""
        tenant = await self._store.get_tenant_by_name(name)
        if tenant is None:
            try:
                tenant = await self._store.create_tenant(name)
                logger.info("tenant created id=%s name=%s", tenant.id, tenant.name)
            except TenantNameTaken:  # created meanwhile by a concurrent caller
                tenant = await self._store.get_tenant_by_name(name)
                if tenant is None:
                    raise
        return tenant

    async def default_tenant(self) -> Tenant:
        """Return the tenant of open registration, creating it on first use."""
        tenant = await self._store.get_tenant_by_name(DEFAULT_TENANT_NAME)
        if tenant is None:
            tenant = await self._store.create_tenant(DEFAULT_TENANT_NAME)
        return tenant
