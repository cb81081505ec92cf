"""`telemetra migrate` and the management of tenants, devices and keys."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from telemetra.cli.common import (
    JsonOpt,
    app,
    device_app,
    emit,
    key_app,
    load_cli_settings,
    run_with_services,
    tenant_app,
)

__all__ = [
    "migrate",
    "tenant_create",
    "tenant_list",
    "tenant_retention",
    "device_create",
    "device_list",
    "device_delete",
    "key_create",
    "key_list",
    "key_create_admin",
    "key_rotate",
    "key_revoke",
]


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = load_cli_settings()

    async def work(services: Any) -> None:
        return None

    run_with_services(settings, work)
    typer.echo("database is up to date")


@tenant_app.command("create")
def tenant_create(name: str, as_json: JsonOpt = False) -> None:
    """Create a tenant and print its first key (shown once)."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        return await services.tenants.create(name)

    tenant, key, secret = run_with_services(settings, work)
    emit(
        as_json,
        {"tenant": {"id": tenant.id, "name": tenant.name}, "key_id": key.id, "api_key": secret},
        [f"tenant {tenant.id} '{tenant.name}' created", f"api key (shown once): {secret}"],
    )


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False) -> None:
    """List tenants with their device counts."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        return await services.store.list_tenants()

    rows = run_with_services(settings, work)
    emit(
        as_json,
        [{"id": t.id, "name": t.name, "devices": n, "created_at": t.created_at.isoformat()} for t, n in rows],
        [f"{'ID':>5}  {'NAME':30} DEVICES"] + [f"{t.id:>5}  {t.name:30} {n}" for t, n in rows],
    )


@tenant_app.command("retention")
def tenant_retention(
    tenant: Annotated[str, typer.Argument(help="Tenant id or name.")],
    days: Annotated[str, typer.Argument(help="Days raw telemetry is kept, or 'forever'.")],
    as_json: JsonOpt = False,
) -> None:
    """Set how long a tenant's raw telemetry is kept (rollups are kept regardless)."""
    if days != "forever" and not (days.isdigit() and 1 <= int(days) <= 36_500):
        typer.echo("error: DAYS is a number of days from 1 to 36500, or 'forever'", err=True)
        raise typer.Exit(2)
    settings = load_cli_settings()
    kept = None if days == "forever" else int(days)

    async def work(services: Any) -> Any:
        found = await services.tenants.resolve(tenant)
        await services.store.set_tenant_retention(found.id, kept)
        return found

    found = run_with_services(settings, work)
    emit(
        as_json,
        {"tenant": found.id, "retention_days": kept},
        [f"tenant {found.id} '{found.name}': raw telemetry kept {'for ever' if kept is None else f'{kept} days'}"],
    )


@device_app.command("create")
def device_create(
    tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
    device_id: Annotated[Optional[str], typer.Option("--id", help="Device id (default: generated).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name, unique in the tenant (default: the id).")] = None,
    device_type: Annotated[str, typer.Option("--type", help="Device type.")] = "sensor",
    as_json: JsonOpt = False,
) -> None:
    """Register a device and print its key (shown once)."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.devices.register(
            owner.id, name=name or device_id or "device", device_id=device_id, device_type=device_type
        )

    device, secret = run_with_services(settings, work)
    emit(
        as_json,
        {"device": {"id": device.id, "name": device.name, "tenant_id": device.tenant_id}, "api_key": secret},
        [f"device '{device.id}' created in tenant {device.tenant_id}", f"api key (shown once): {secret}"],
    )


@device_app.command("list")
def device_list(
    tenant: Annotated[Optional[str], typer.Option(help="Only this tenant (id or name).")] = None,
    limit: Annotated[int, typer.Option(help="Most devices shown.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List devices, newest first."""
    from telemetra.store import DeviceFilter

    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        tenant_id = (await services.tenants.resolve(tenant)).id if tenant else None
        return await services.store.list_devices(DeviceFilter(tenant_id=tenant_id, limit=limit))

    devices, total = run_with_services(settings, work)
    emit(
        as_json,
        [
            {
                "id": d.id,
                "name": d.name,
                "tenant_id": d.tenant_id,
                "type": d.device_type,
                "status": d.status,
                "last_seen": d.last_seen.isoformat() if d.last_seen else None,
            }
            for d in devices
        ],
        [f"{'ID':24} {'TENANT':>6}  {'STATUS':12} NAME"]
        + [f"{d.id:24} {d.tenant_id:>6}  {d.status:12} {d.name}" for d in devices]
        + [f"({len(devices)} of {total})"],
    )


@device_app.command("delete")
def device_delete(
    device_id: Annotated[str, typer.Argument(help="The device's id.")],
    tenant: Annotated[
        Optional[str], typer.Option(help="Refuse unless the device is this tenant's (id or name).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a device with its keys (refused at once by every process), telemetry, statistics, commands and alerts."""
    if not yes and not typer.confirm(f"Delete device '{device_id}' and all its data?"):
        raise typer.Exit(1)
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        if tenant is not None:
            device = await services.devices.get_in_tenant((await services.tenants.resolve(tenant)).id, device_id)
        else:
            device = await services.devices.get(device_id)
        await services.devices.delete(device)
        return device

    device = run_with_services(settings, work)
    emit(
        as_json,
        {"deleted": {"id": device.id, "name": device.name, "tenant_id": device.tenant_id}},
        [f"device '{device.id}' of tenant {device.tenant_id} deleted with its data"],
    )


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
    scope: Annotated[str, typer.Option(help="full or ingest.")] = "full",
    name: Annotated[str, typer.Option(help="A label.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Issue a tenant key and print it (shown once)."""
    if scope not in ("full", "ingest"):
        typer.echo("error: --scope is full or ingest", err=True)
        raise typer.Exit(2)
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.keys.issue_tenant_key(owner.id, scope=scope, name=name)

    key, secret = run_with_services(settings, work)
    emit(
        as_json,
        {"key_id": key.id, "prefix": key.prefix, "scope": key.scope, "api_key": secret},
        [f"key {key.id} ({key.scope}) created", f"api key (shown once): {secret}"],
    )


@key_app.command("create-admin")
def key_create_admin(
    name: Annotated[str, typer.Option(help="A label saying whose key it is.")] = "admin",
    as_json: JsonOpt = False,
) -> None:
    """Issue an admin key and print it alone (shown once), so that a script can keep it: ADMIN=$(telemetra key
    create-admin). `telemetra key rotate --admin` revokes it."""
    if name in ("generated", "configured") or not name.strip():
        typer.echo("error: --name must be a label other than 'generated' and 'configured'", err=True)
        raise typer.Exit(2)
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        return await services.keys.create_admin_key(name)

    key, secret = run_with_services(settings, work)
    emit(as_json, {"key_id": key.id, "prefix": key.prefix, "name": key.name, "api_key": secret}, [secret])


@key_app.command("list")
def key_list(tenant: Annotated[str, typer.Option(help="Tenant id or name.")], as_json: JsonOpt = False) -> None:
    """List a tenant's keys (prefixes only; keys are never stored)."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.store.list_keys(tenant_id=owner.id)

    keys = run_with_services(settings, work)
    emit(
        as_json,
        [
            {
                "id": k.id,
                "kind": k.kind,
                "prefix": k.prefix,
                "scope": k.scope,
                "name": k.name,
                "revoked": k.revoked_at is not None,
                "usage_count": k.usage_count,
            }
            for k in keys
        ],
        [
            f"{k.id:>5}  {k.kind:7} {k.prefix:14} {k.scope:7} {'revoked' if k.revoked_at else 'active':8} {k.name}"
            for k in keys
        ],
    )


@key_app.command("rotate")
def key_rotate(
    device: Annotated[Optional[str], typer.Option(help="Give this device a new key.")] = None,
    tenant: Annotated[Optional[str], typer.Option(help="Tenant of --key-id.")] = None,
    key_id: Annotated[Optional[int], typer.Option(help="Replace this tenant key.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Replace the generated admin key.")] = False,
    grace: Annotated[
        int,
        typer.Option(
            min=0,
            max=7 * 86_400,
            help="Seconds the old key keeps working (device and tenant keys; 0: revoked at once).",
        ),
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key by a new one and revoke the old (at once, or after --grace); the new key is printed once."""
    if sum([device is not None, key_id is not None, admin]) != 1:
        typer.echo("error: give exactly one of --device, --tenant with --key-id, or --admin", err=True)
        raise typer.Exit(2)
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        from telemetra.domain.timeparse import utcnow

        if admin:
            return None, await services.keys.rotate_admin_key()
        if device is not None:
            owned = await services.devices.get(device)
            if not grace:
                return await services.keys.rotate_device_key(owned)
            usable = [
                k for k in await services.store.list_keys(device_pk=owned.pk, kind="device") if k.is_usable(utcnow())
            ]
            if not usable:
                raise typer.BadParameter(f"device {device} has no usable key to rotate with a grace period")
            owner_id, old_id = owned.tenant_id, usable[-1].id
        else:
            if tenant is None:
                raise typer.BadParameter("--key-id needs --tenant")
            owner_id, old_id = (await services.tenants.resolve(tenant)).id, key_id
            if not grace:
                return await services.keys.rotate_tenant_key(owner_id, old_id)
        new, secret, _old = await services.keys.rotate(owner_id, old_id, grace_s=grace)
        return new, secret

    key, secret = run_with_services(settings, work)
    emit(
        as_json,
        {"key_id": key.id if key else None, "api_key": secret, "grace_s": grace},
        [
            f"new key (shown once): {secret}",
            f"the previous key works {grace} s more" if grace else "the previous key is revoked",
        ],
    )


@key_app.command("revoke")
def key_revoke(
    tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
    key_id: Annotated[int, typer.Option(help="The key to revoke.")],
) -> None:
    """Revoke a tenant key at once."""
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.keys.revoke_tenant_key(owner.id, key_id)

    run_with_services(settings, work)
    typer.echo(f"key {key_id} revoked")
