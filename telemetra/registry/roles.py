"""What each caller may do: the roles of people, the scopes of keys, and the one check every tenant route runs.

A route names the permission it needs (``read``, ``operate``, ``manage``, ``ingest``); the check maps the
caller to what it holds:

| caller | read | operate | manage | ingest |
|---|---|---|---|---|
| user `viewer` | yes | | | |
| user `operator` (commands, desired state, acknowledging alerts) | yes | yes | | |
| user `admin` (devices, keys, rules, channels, users) | yes | yes | yes | yes |
| tenant key, scope `full` (as `admin`) | yes | yes | yes | yes |
| tenant key, scope `ingest` | | | | yes |
"""

from __future__ import annotations

from typing import Literal

from telemetra.domain.models import Role
from telemetra.errors import Forbidden, ForbiddenRole
from telemetra.registry.auth import Authenticator, Caller, TenantCaller, TenantUserPrincipal, UserPrincipal

__all__ = ["Permission", "PERMISSIONS", "ROLE_PERMISSIONS", "role_allows", "require_permission", "require_platform"]

Permission = Literal["read", "operate", "manage", "ingest"]
PERMISSIONS: tuple[Permission, ...] = ("read", "operate", "manage", "ingest")
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "operate"}),
    "admin": frozenset(PERMISSIONS),
}
_LEAST_ROLE: dict[Permission, Role] = {"read": "viewer", "operate": "operator", "manage": "admin", "ingest": "admin"}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def require_permission(caller: Caller, permission: Permission) -> TenantCaller:
    """Return ``caller`` as a tenant's caller allowed ``permission``: 403 ``forbidden_role`` for a person whose
    role is too low, and the key checks of old (``wrong_key_kind``, ``insufficient_scope``) for a key."""
    if isinstance(caller, UserPrincipal):
        if not isinstance(caller, TenantUserPrincipal):
            raise Forbidden("A platform admin has no tenant; sign in as a user of the tenant.", code="wrong_key_kind")
        if not role_allows(caller.role, permission):
            raise ForbiddenRole(
                f"This needs the role {_LEAST_ROLE[permission]} or higher; you are {caller.role}. "
                "Ask an admin of your tenant."
            )
        return caller
    return Authenticator.require(caller, "tenant", full_scope=permission != "ingest")


def require_platform(caller: Caller) -> Caller:
    """Return ``caller`` when it may manage the platform: the admin key or a platform admin signed in."""
    if isinstance(caller, UserPrincipal):
        if not caller.user.platform_admin:
            raise ForbiddenRole("This needs a platform admin; you are a user of a tenant.")
        return caller
    return Authenticator.require(caller, "admin")
