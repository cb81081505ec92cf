"""People of a tenant (and platform admins): creating them, their roles, disabling them, their passwords.

Every change is written to the audit log (``telemetra.audit``): who did it and to whom, never a password.
Disabling a user or setting their password ends their sessions in the same transaction, so no process
serves them afterwards (a session is read from the database at every request, ``registry.sessions``).
"""

from __future__ import annotations

import logging
import re
import secrets

from telemetra.domain.models import ROLES, Role, User
from telemetra.domain.timeparse import utcnow
from telemetra.errors import UserNotFound, ValidationFailed
from telemetra.registry.passwords import check_password_rules, hash_password
from telemetra.store import Store
from telemetra.store.users_base import NewUser, UserChanges

audit = logging.getLogger("telemetra.audit")
__all__ = [
    "UserService",
    "normalize_email",
    "check_user_password",
    "MIN_USER_PASSWORD_LENGTH",
    "MAX_USERS_PER_TENANT",
    "audit",
]

MIN_USER_PASSWORD_LENGTH = 10
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
MAX_NAME_LENGTH = 100
# A listing's bound; a tenant's people are a few dozen, not thousands.
MAX_USERS_PER_TENANT = 1000
# Printable, no spaces, one '@' with something on each side: enough to tell an address from a typo without
# pretending to validate RFC 5322 (demo@localhost is valid).
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+")


def normalize_email(email: object) -> str:
    """The e-mail as stored (trimmed, lower-cased); ValidationFailed (422) when it cannot be one."""
    if not isinstance(email, str):
        raise ValidationFailed("'email' must be a string", code="invalid_email")
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or _EMAIL.fullmatch(email) is None:
        raise ValidationFailed(
            f"'email' must be an e-mail address (name@domain) of at most {MAX_EMAIL_LENGTH} characters",
            code="invalid_email",
        )
    return email


def check_user_password(password: object, email: str, field: str = "password") -> str:
    """A person's password: 10-256 characters, and not their e-mail address."""
    checked = check_password_rules(password, min_length=MIN_USER_PASSWORD_LENGTH, field=field)
    if checked.strip().lower() == email.lower():
        raise ValidationFailed(f"'{field}' must not be the e-mail address", code="invalid_password")
    return checked


def _name(name: object, email: str) -> str:
    if name is None:
        return email.split("@", 1)[0][:MAX_NAME_LENGTH]
    if not isinstance(name, str):
        raise ValidationFailed("'name' must be a string", code="invalid_name")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationFailed(f"'name' is at most {MAX_NAME_LENGTH} printable characters", code="invalid_name")
    return name or email.split("@", 1)[0][:MAX_NAME_LENGTH]


def _role(role: object) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValidationFailed("'role' is one of admin, operator, viewer", code="invalid_role")


def generate_password() -> str:
    """A one-time password: 120 random bits, 20 URL-safe characters."""
    return secrets.token_urlsafe(15)


class UserService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self,
        tenant_id: int | None,
        email: object,
        *,
        name: object = None,
        role: object = "viewer",
        password: object = None,
        platform_admin: bool = False,
        by: str,
    ) -> tuple[User, str | None]:
        """Create a user; return it and the generated one-time password when none was given."""
        address = normalize_email(email)
        checked_role = _role(role)
        generated = generate_password() if password is None else None
        secret = generated or check_user_password(password, address)
        new = NewUser(
            tenant_id=None if platform_admin else tenant_id,
            email=address,
            name=_name(name, address),
            role="admin" if platform_admin else checked_role,
            password_hash=await hash_password(secret),
            platform_admin=platform_admin,
        )
        if new.tenant_id is None and not platform_admin:
            raise ValidationFailed("a user belongs to a tenant, unless a platform admin", code="invalid_tenant")
        user = await self._store.users.create_user(new, utcnow())
        audit.info(
            "user created id=%s tenant=%s role=%s platform_admin=%s by=%s",
            user.id,
            user.tenant_id,
            user.role,
            user.platform_admin,
            by,
        )
        return user, generated

    async def list(self, tenant_id: int | None) -> list[User]:
        return await self._store.users.list_users(tenant_id, MAX_USERS_PER_TENANT)

    async def get_in_tenant(self, tenant_id: int | None, user_id: int) -> User:
        """The user of that id in that tenant (None: a platform admin); 404 otherwise, as for an unknown id."""
        user = await self._store.users.get_user(user_id)
        if user is None or user.tenant_id != tenant_id:
            raise UserNotFound()
        return user

    async def by_email(self, email: str) -> User:
        found = await self._store.users.user_by_email(normalize_email(email))
        if found is None:
            raise UserNotFound(f"No user with the e-mail {normalize_email(email)}.")
        return found[0]

    async def update(
        self,
        tenant_id: int | None,
        user_id: int,
        *,
        role: object = None,
        name: object = None,
        disabled: bool | None = None,
        by: str,
    ) -> User:
        """Change a user's role, name or disabled flag; disabling ends their sessions at once."""
        user = await self.get_in_tenant(tenant_id, user_id)
        changes = UserChanges(
            role=None if role is None else _role(role),
            name=None if name is None else _name(name, user.email),
            disabled=disabled,
        )
        updated = await self._store.users.update_user(user.id, changes)
        if updated is None:  # deleted meanwhile, with its tenant
            raise UserNotFound()
        if changes.role is not None and changes.role != user.role:
            audit.info("user role changed id=%s from=%s to=%s by=%s", user.id, user.role, changes.role, by)
        if disabled is not None and disabled != user.disabled:
            audit.info("user %s id=%s by=%s", "disabled" if disabled else "enabled", user.id, by)
        return updated

    async def reset_password(self, tenant_id: int | None, user_id: int, *, by: str) -> str:
        """Give a user a new one-time password (returned, to be shown once); their sessions end."""
        user = await self.get_in_tenant(tenant_id, user_id)
        password = generate_password()
        await self._store.users.set_password(user.id, await hash_password(password), keep_session=None)
        audit.info("user password reset id=%s by=%s", user.id, by)
        return password

    async def set_password(self, user: User, password: object, *, by: str) -> None:
        """Set a user's password (checked against the rules); their sessions end."""
        checked = check_user_password(password, user.email)
        await self._store.users.set_password(user.id, await hash_password(checked), keep_session=None)
        audit.info("user password set id=%s by=%s", user.id, by)
