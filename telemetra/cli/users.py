"""`telemetra user`: people who sign in (a tenant's users with their roles, and platform admins).

Users are named by their e-mail, unique across the platform. A password made here is printed once; one chosen
by the operator is read from standard input (`--password-stdin`), never from the command line, where any user
of the machine could read it in the process list.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from telemetra.cli.common import JsonOpt, app, emit, load_cli_settings, run_with_services
from telemetra.domain.timeparse import isoformat

__all__ = ["user_create", "user_list", "user_set_role", "user_disable", "user_reset_password"]

user_app = typer.Typer(help="Manage people who sign in (users with roles, platform admins).", no_args_is_help=True)
app.add_typer(user_app, name="user")
BY = "cli"


def _json(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "tenant_id": user.tenant_id,
        "platform_admin": user.platform_admin,
        "disabled": user.disabled,
        "created_at": isoformat(user.created_at),
        "last_sign_in_at": isoformat(user.last_sign_in_at),
    }


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The e-mail address the user signs in with.")],
    tenant: Annotated[Optional[str], typer.Option(help="Tenant id or name (not with --platform-admin).")] = None,
    role: Annotated[str, typer.Option(help="admin, operator or viewer.")] = "viewer",
    name: Annotated[Optional[str], typer.Option(help="Display name (default: the e-mail's local part).")] = None,
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="A platform admin: manages tenants, belongs to none.")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (else one is made).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user; a password made for them is printed once."""
    if platform_admin == (tenant is not None):
        typer.echo("error: give --tenant, or --platform-admin (a platform admin belongs to no tenant)", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        tenant_id = None if tenant is None else (await services.tenants.resolve(tenant)).id
        return await services.users.create(
            tenant_id, email, name=name, role=role, password=password, platform_admin=platform_admin, by=BY
        )

    user, generated = run_with_services(settings, work)
    where = "platform admin" if user.platform_admin else f"tenant {user.tenant_id}, role {user.role}"
    lines = [f"user {user.id} {user.email} created ({where})"]
    if generated:
        lines.append(f"one-time password (shown once): {generated}")
    emit(as_json, {"user": _json(user), "password": generated}, lines)


@user_app.command("list")
def user_list(
    tenant: Annotated[Optional[str], typer.Option(help="Tenant id or name (default: the platform admins).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a tenant's users, or the platform admins."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        tenant_id = None if tenant is None else (await services.tenants.resolve(tenant)).id
        return await services.users.list(tenant_id)

    users = run_with_services(settings, work)
    emit(
        as_json,
        [_json(u) for u in users],
        [f"{'ID':>5}  {'E-MAIL':40} {'ROLE':9} STATE"]
        + [
            f"{u.id:>5}  {u.email:40} {'platform' if u.platform_admin else u.role:9} "
            f"{'disabled' if u.disabled else 'active'}"
            for u in users
        ],
    )


def _change(email: str, as_json: bool, describe: str, **changes: Any) -> None:
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        user = await services.users.by_email(email)
        return await services.users.update(user.tenant_id, user.id, by=BY, **changes)

    user = run_with_services(settings, work)
    emit(as_json, _json(user), [f"user {user.id} {user.email}: {describe}"])


@user_app.command("set-role")
def user_set_role(
    email: Annotated[str, typer.Argument(help="The user's e-mail.")],
    role: Annotated[str, typer.Argument(help="admin, operator or viewer.")],
    as_json: JsonOpt = False,
) -> None:
    """Change a user's role (it applies at their next request)."""
    _change(email, as_json, f"role {role}", role=role)


@user_app.command("disable")
def user_disable(
    email: Annotated[str, typer.Argument(help="The user's e-mail.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Disable a user: their sessions end at once and they cannot sign in."""
    _change(email, as_json, "enabled" if enable else "disabled, sessions ended", disabled=not enable)


@user_app.command("reset-password")
def user_reset_password(
    email: Annotated[str, typer.Argument(help="The user's e-mail.")],
    as_json: JsonOpt = False,
) -> None:
    """Give a user a new one-time password (printed once); their sessions end."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        user = await services.users.by_email(email)
        return user, await services.users.reset_password(user.tenant_id, user.id, by=BY)

    user, password = run_with_services(settings, work)
    emit(
        as_json,
        {"user": _json(user), "password": password},
        [f"user {user.id} {user.email}: sessions ended", f"one-time password (shown once): {password}"],
    )
