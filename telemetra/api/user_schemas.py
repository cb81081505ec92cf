"""Bodies of the session and user routes, and the JSON of a user and a session (``docs/users.md``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from telemetra.domain.models import Tenant, User
from telemetra.domain.timeparse import isoformat
from telemetra.registry.auth import UserPrincipal

__all__ = ["SignIn", "PasswordChange", "UserCreate", "UserUpdate", "user_public", "session_info"]

# Kept exactly as typed (no stripping); the registry checks the length rules and answers with its own codes.
_Secret = Annotated[str, StringConstraints(strip_whitespace=False, max_length=1024)]
_Email = Annotated[str, StringConstraints(max_length=320)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SignIn(_Strict):
    email: _Email = Field(examples=["demo@localhost"])
    password: _Secret = Field(json_schema_extra={"writeOnly": True})


class PasswordChange(_Strict):
    current_password: _Secret = Field(json_schema_extra={"writeOnly": True})
    new_password: _Secret = Field(
        json_schema_extra={"writeOnly": True}, description="10-256 characters, not the e-mail address."
    )


class UserCreate(_Strict):
    email: _Email = Field(examples=["ana@example.com"])
    name: str | None = Field(None, max_length=100)
    role: Literal["admin", "operator", "viewer"] = "viewer"
    password: _Secret | None = Field(
        None,
        json_schema_extra={"writeOnly": True},
        description="Omitted: a one-time password is generated and answered once.",
    )


class UserUpdate(_Strict):
    role: Literal["admin", "operator", "viewer"] | None = None
    name: str | None = Field(None, max_length=100)
    disabled: bool | None = Field(None, description="true ends every session of the user at once.")


def user_public(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": isoformat(user.created_at),
        "last_sign_in_at": isoformat(user.last_sign_in_at) if user.last_sign_in_at else None,
    }


def session_info(principal: UserPrincipal, tenant: Tenant | None) -> dict[str, Any]:
    user = principal.user
    return {
        "user": {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "platform_admin": user.platform_admin,
            "tenant_id": user.tenant_id,
            "tenant_name": tenant.name if tenant else None,
            "created_at": isoformat(user.created_at),
            "last_sign_in_at": isoformat(user.last_sign_in_at) if user.last_sign_in_at else None,
        },
        "csrf_token": principal.csrf_token,
        "expires_at": isoformat(principal.expires_at),
    }
