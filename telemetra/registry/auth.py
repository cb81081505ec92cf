"""Who is calling: turn a presented key into a Principal, or refuse it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal, overload

from telemetra.domain.keys import hash_key
from telemetra.domain.models import ApiKey, Device, KeyKind, Role, User
from telemetra.domain.timeparse import utcnow
from telemetra.errors import Forbidden, Unauthorized
from telemetra.registry.activity import ActivityRecorder
from telemetra.registry.credential_cache import CredentialCache
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = [
    "Principal",
    "TenantPrincipal",
    "DevicePrincipal",
    "UserPrincipal",
    "TenantUserPrincipal",
    "Caller",
    "TenantCaller",
    "Authenticator",
]

MAX_PRESENTED_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the key, its tenant and, for a device key, the device."""

    key: ApiKey
    device: Device | None = None

    @property
    def kind(self) -> KeyKind:
        return self.key.kind

    @property
    def tenant_id(self) -> int | None:
        return self.key.tenant_id


@dataclass(frozen=True, slots=True)
class TenantPrincipal(Principal):
    """The caller of a tenant key (of either scope): its tenant is known."""

    @property
    def tenant_id(self) -> int:
        tenant_id = self.key.tenant_id
        assert tenant_id is not None  # a tenant key is only ever issued for a tenant (registry.keys)
        return tenant_id

    @property
    def may_register(self) -> bool:
        """Whether a message of this caller may register a device on first sight (scope full only)."""
        return self.key.scope == "full"


@dataclass(frozen=True, slots=True)
class DevicePrincipal(Principal):
    """The caller of a device key: the device and its tenant are known."""

    device: Device

    @property
    def tenant_id(self) -> int:
        tenant_id = self.key.tenant_id
        assert tenant_id is not None  # a device key is issued with its device's tenant (registry.keys)
        return tenant_id

    @classmethod
    def of_token(cls, device: Device) -> "DevicePrincipal":
        """A device that presented a login token (``registry/device_login.py``) instead of its key: the key
        record is a stand-in (id 0, never stored) so that the device's routes treat both alike."""
        stand_in = ApiKey(
            id=0,
            kind="device",
            prefix="token",
            tenant_id=device.tenant_id,
            device_pk=device.pk,
            scope="full",
            name="login token",
            created_at=utcnow(),
        )
        return cls(key=stand_in, device=device)


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A person signed in: their user and the hash of the session their cookie holds (never the id)."""

    user: User
    session_hash: bytes
    csrf_token: str
    expires_at: datetime

    kind: ClassVar[str] = "user"

    @property
    def tenant_id(self) -> int | None:
        return self.user.tenant_id

    @property
    def role(self) -> Role:
        return self.user.role


@dataclass(frozen=True, slots=True)
class TenantUserPrincipal(UserPrincipal):
    """A tenant's user signed in: their tenant is known."""

    @property
    def tenant_id(self) -> int:
        tenant_id = self.user.tenant_id
        assert tenant_id is not None  # a user without a tenant is a platform admin (registry.sessions)
        return tenant_id

    @property
    def may_register(self) -> bool:
        return self.user.role == "admin"


# Whoever calls: a key's principal or a signed-in person; on a tenant's routes, one whose tenant is known.
Caller = Principal | UserPrincipal
TenantCaller = TenantPrincipal | TenantUserPrincipal


def _principal(key: ApiKey, device: Device | None) -> Principal:
    """The principal of a key, of the class its kind calls for."""
    if key.kind == "tenant":
        return TenantPrincipal(key=key, device=device)
    if key.kind == "device" and device is not None:
        return DevicePrincipal(key=key, device=device)
    return Principal(key=key, device=device)


class Authenticator:
    def __init__(self, store: Store, activity: ActivityRecorder, credentials: CredentialCache | None = None) -> None:
        self._store = store
        self._activity = activity
        self._credentials = credentials or CredentialCache(ttl_s=0)

    async def authenticate(self, presented: str | None) -> Principal:
        """Return the caller of a presented key; Unauthorized when missing, unknown, expired or revoked."""
        if not presented:
            raise Unauthorized(
                "An API key is required; send it in the X-API-Key header (people: sign in at POST /api/v1/session).",
                code="missing_api_key",
            )
        if len(presented) > MAX_PRESENTED_KEY_LENGTH:
            raise Unauthorized()
        key_hash = hash_key(presented)
        key, device = self._credentials.get(key_hash) or await self._load(key_hash)
        now = utcnow()
        if key.revoked_at is not None:
            raise Unauthorized("This API key has been revoked; ask for a new one.", code="api_key_revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized("This API key has expired; ask for a new one.", code="api_key_expired")
        if device is not None:
            self._activity.device_seen(device.pk, now)
        self._activity.key_used(key.id, now)
        return _principal(key, device)

    async def _load(self, key_hash: bytes) -> tuple[ApiKey, Device | None]:
        """The stored key of a hash and, for a device key, its device; Unauthorized for an unknown key."""
        generation = self._credentials.generation
        # The key and its device in one lookup: a device's first request after a start costs that and no more.
        found = await self._store.find_credentials(key_hash)
        if found is None:
            raise Unauthorized()  # unknown keys are not cached: guessing cannot fill the cache
        key, device = found
        if key.kind != "device":
            device = None
        elif device is None:
            raise Unauthorized()
        self._credentials.put(key_hash, key, device, generation)
        return key, device

    @overload
    @staticmethod
    def require(principal: Principal, kind: Literal["tenant"], /, *, full_scope: bool = True) -> TenantPrincipal: ...

    @overload
    @staticmethod
    def require(principal: Principal, kind: Literal["device"], /, *, full_scope: bool = True) -> DevicePrincipal: ...

    @overload
    @staticmethod
    def require(principal: Principal, *kinds: KeyKind, full_scope: bool = True) -> Principal: ...

    @staticmethod
    def require(principal: Principal, *kinds: KeyKind, full_scope: bool = True) -> Principal:
        """Refuse (403) a principal whose key is not of ``kinds`` or lacks full scope when needed. A tenant
        key's principal is a TenantPrincipal, a device key's a DevicePrincipal (``authenticate`` makes them
        so), hence the narrower types when one kind is required."""
        if principal.kind not in kinds:
            wanted = " or ".join(kinds)
            raise Forbidden(
                f"This route needs a key of kind {wanted}; a {principal.kind} key was sent.", code="wrong_key_kind"
            )
        if full_scope and principal.kind == "tenant" and principal.key.scope != "full":
            raise Forbidden(
                "This key may only send telemetry (scope 'ingest'); use a key of scope 'full'.",
                code="insufficient_scope",
            )
        return principal
