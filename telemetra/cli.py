"""The `telemetra` command: serve, migrate, and manage tenants, devices and keys."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable, Optional

import typer

from telemetra.errors import ConfigError, TelemetraError
from telemetra.gc_tuning import tune_gc
from telemetra.log import configure_logging
from telemetra.settings import Settings, load_settings

logger = logging.getLogger(__name__)
app = typer.Typer(help="Telemetra: an IoT telemetry platform.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
tenant_app = typer.Typer(help="Manage tenants (clients).", no_args_is_help=True)
device_app = typer.Typer(help="Manage devices.", no_args_is_help=True)
key_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(device_app, name="device")
rollup_app = typer.Typer(help="Maintain the rollups.", no_args_is_help=True)
app.add_typer(rollup_app, name="rollup")
app.add_typer(key_app, name="key")
mqtt_app = typer.Typer(help="Manage Telemetra's sessions on the MQTT broker.", no_args_is_help=True)
app.add_typer(mqtt_app, name="mqtt")

DEMO_TENANT = "demo"
DEMO_KEY_NAME = "demo-run"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_file, settings.log_format)
    return settings


def _run(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open the store, migrate, run ``work(services)``, close; print errors as one clean line."""
    from telemetra.runtime import command_runtime

    async def main() -> Any:
        async with command_runtime(settings) as runtime:
            return await work(runtime.services)

    try:
        return asyncio.run(main())
    except TelemetraError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _emit(as_json: bool, data: Any, lines: list[str]) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else "\n".join(lines))


@app.command()
def serve(host: Annotated[Optional[str], typer.Option(help="Interface to listen on.")] = None,
          port: Annotated[Optional[int], typer.Option(help="TCP port.")] = None,
          demo: Annotated[bool, typer.Option(help="Create a demo tenant and print a fresh key for it.")] = False,
          mqtt: Annotated[Optional[str], typer.Option(help="Also take telemetry from this MQTT broker.")] = None,
          nats: Annotated[Optional[str], typer.Option(help="Also take telemetry from this NATS JetStream.")] = None,
          simulate: Annotated[Optional[int], typer.Option(help="Simulate this many demo devices.")] = None,
          tls_cert: Annotated[Optional[str], typer.Option(help="Serve HTTPS with this certificate chain (PEM).")] = None,
          tls_key: Annotated[Optional[str], typer.Option(help="Private key (PEM) of --tls-cert.")] = None,
          ) -> None:
    """Migrate the database and serve the API and dashboard."""
    from telemetra.api.app import create_app
    from telemetra.api.http_protocol import guarded_protocol
    from telemetra.api.server import run_server
    from telemetra.key_notice import KeyNotice, default_keys_file

    settings = _settings(host=host, port=port, mqtt_url=mqtt, nats_url=nats, simulate_devices=simulate,
                         tls_cert_file=tls_cert, tls_key_file=tls_key)

    notice = KeyNotice(default_keys_file(settings), echo=typer.echo)

    async def bootstrap(services: Any) -> None:
        admin_key = await services.keys.ensure_admin_key(settings.admin_key)
        if admin_key:
            notice.show("Admin key (shown once, keep it safe)", admin_key)
        if demo:
            tenant = await services.store.get_tenant_by_name(DEMO_TENANT)
            tenant = tenant or await services.store.create_tenant(DEMO_TENANT)
            for key in await services.store.list_keys(tenant_id=tenant.id, kind="tenant"):
                if key.name == DEMO_KEY_NAME and key.revoked_at is None:
                    await services.store.revoke_key(key.id, key.created_at.now(key.created_at.tzinfo))
            _key, secret = await services.keys.issue_tenant_key(tenant.id, name=DEMO_KEY_NAME)
            notice.show(f"Demo tenant '{DEMO_TENANT}' key for this run", secret)

    _run(settings, bootstrap)
    scheme = "https" if settings.tls_cert_file else "http"
    typer.echo(f"Telemetra on {scheme}://{settings.host}:{settings.port}  (API docs: /docs)")
    served = create_app(settings)
    tune_gc()
    run_server(served, host=settings.host, port=settings.port,
               access_log=settings.log_level == "DEBUG", server_header=False,
               http=guarded_protocol(header_timeout_s=settings.http_header_timeout_s,
                                     max_connections=settings.http_max_connections),
               h11_max_incomplete_event_size=settings.max_header_bytes,
               forwarded_allow_ips=settings.forwarded_allow_ips,
               ssl_certfile=settings.tls_cert_file, ssl_keyfile=settings.tls_key_file)


@app.command()
def worker(source: Annotated[list[str], typer.Option("--source", help="mqtt and/or nats (repeatable).")],
           mqtt: Annotated[Optional[str], typer.Option(help="MQTT broker URL (or TELEMETRA_MQTT_URL).")] = None,
           nats: Annotated[Optional[str], typer.Option(help="NATS URL (or TELEMETRA_NATS_URL).")] = None,
           client_id: Annotated[Optional[str], typer.Option(help="Stable MQTT client id of this worker.")] = None,
           ) -> None:
    """Ingest from brokers without serving HTTP; SIGTERM finishes and acknowledges what is in flight."""
    from telemetra.runtime.worker import run_worker

    settings = _settings(mqtt_url=mqtt, nats_url=nats, mqtt_client_id=client_id)
    tune_gc()
    try:
        asyncio.run(run_worker(settings, source))
    except (TelemetraError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def simulate(devices: Annotated[int, typer.Option(help="Devices to register and simulate.")] = 10,
             rate: Annotated[float, typer.Option(help="Messages per second over all devices (0: as fast as acked).")] = 10.0,
             via: Annotated[str, typer.Option(help="http, mqtt or nats.")] = "http",
             profile: Annotated[str, typer.Option(help="energy, environment, gym or meter.")] = "environment",
             duration: Annotated[Optional[float], typer.Option(help="Seconds to run (default: until Ctrl-C).")] = None,
             count: Annotated[Optional[int], typer.Option(help="Stop after this many messages.")] = None,
             url: Annotated[str, typer.Option(help="Telemetra's HTTP address (for registration).")] = "http://127.0.0.1:8000",
             key: Annotated[Optional[str], typer.Option(help="Tenant key (or TELEMETRA_SIM_KEY).", envvar="TELEMETRA_SIM_KEY")] = None,
             mqtt: Annotated[str, typer.Option(help="Broker for --via mqtt.")] = "mqtt://127.0.0.1:1883",
             nats: Annotated[str, typer.Option(help="NATS for --via nats.")] = "nats://127.0.0.1:4222",
             concurrency: Annotated[int, typer.Option(help="Messages awaiting their ack at once.")] = 64,
             ca_file: Annotated[Optional[str], typer.Option(help="CA to verify the broker's certificate with (MQTT or NATS over TLS).")] = None,
             cert_file: Annotated[Optional[str], typer.Option(help="Client certificate for a broker that asks for one.")] = None,
             key_file: Annotated[Optional[str], typer.Option(help="Key of the client certificate.")] = None,
             as_json: JsonOpt = False) -> None:
    """Register simulated devices and send realistic telemetry; report what was sent and acknowledged."""
    from telemetra.sim.profiles import PROFILES
    from telemetra.sim.runner import SimConfig, run_simulation

    if profile not in PROFILES or via not in ("http", "mqtt", "nats") or not key:
        typer.echo("error: --profile is one of " + ", ".join(PROFILES) + "; --via is http, mqtt or nats; "
                   "--key (a tenant key) is required", err=True)
        raise typer.Exit(2)
    config = SimConfig(devices=devices, rate=rate, via=via, profile=profile, url=url, tenant_key=key,
                       duration_s=duration, count=count, mqtt_url=mqtt, nats_url=nats, concurrency=concurrency,
                       ca_file=ca_file, cert_file=cert_file, key_file=key_file)
    try:
        report = asyncio.run(run_simulation(config))
    except KeyboardInterrupt:
        raise typer.Exit(130)
    except OSError as exc:  # the broker is unreachable, or its certificate does not verify
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    summary = report.summary()
    _emit(as_json, summary, [f"{summary['devices']} devices, {summary['sent']} sent, {summary['acked']} acknowledged "
                             f"in {summary['elapsed_s']} s ({summary['rate_msg_s']} msg/s), failed: {summary['failed']}",
                             f"ack latency p50 {summary['ack_latency_ms']['p50']} ms, "
                             f"p99 {summary['ack_latency_ms']['p99']} ms"])


@app.command("mqtt-sync")
def mqtt_sync(password_file: Annotated[Path, typer.Option(help="Mosquitto password_file to write.")],
              acl_file: Annotated[Path, typer.Option(help="Mosquitto acl_file to write.")],
              reload_pid_file: Annotated[Optional[Path], typer.Option(
                  help="Mosquitto's pid file: send it SIGHUP after a change so it rereads both files.")] = None,
              every: Annotated[Optional[float], typer.Option(
                  help="Keep running and sync every this many seconds (default: once).")] = None,
              as_json: JsonOpt = False) -> None:
    """Write the broker's password and ACL files from the registry: a device may publish only under its id.

    Telemetra itself logs in as TELEMETRA_MQTT_USERNAME with TELEMETRA_MQTT_PASSWORD; both are required.
    """
    from telemetra.domain.timeparse import utcnow
    from telemetra.registry.broker_sync import BrokerFiles, sync_mosquitto_files

    settings = _settings()
    if not settings.mqtt_username or not settings.mqtt_password:
        typer.echo("error: set TELEMETRA_MQTT_USERNAME and TELEMETRA_MQTT_PASSWORD: Telemetra's own login to "
                   "the broker is written to the files too", err=True)
        raise typer.Exit(2)
    files = BrokerFiles(password_file, acl_file, settings.mqtt_username, settings.mqtt_password)

    async def work(services: Any) -> Any:
        while True:
            pid = int(reload_pid_file.read_text().split()[0]) if reload_pid_file else None
            report = await sync_mosquitto_files(services.store, files, utcnow(), reload_pid=pid)
            if every is None:
                return report
            await asyncio.sleep(every)

    try:
        report = _run(settings, work)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130)
    _emit(as_json, {"devices": report.devices, "skipped": report.skipped, "changed": report.changed,
                    "reloaded": report.reloaded},
          [f"{report.devices} device(s) written to {password_file} ({'changed' if report.changed else 'unchanged'}"
           f"{', broker reloaded' if report.reloaded else ''})"]
          + ([f"skipped (id holds ':' or is the service user): {', '.join(report.skipped)}"] if report.skipped else []))


@mqtt_app.command("retire-client")
def mqtt_retire_client(
        client_id: Annotated[str, typer.Option(help="Client id of the worker that is gone (e.g. telemetra-mqtt-2).")],
        mqtt: Annotated[Optional[str], typer.Option(help="MQTT broker URL (or TELEMETRA_MQTT_URL).")] = None,
        quiet_s: Annotated[float, typer.Option(
            help="Seconds without a message, everything acknowledged, before the session counts as empty.")] = 2.0,
        discard: Annotated[bool, typer.Option(
            help="Drop what the session holds instead of storing it.")] = False,
        as_json: JsonOpt = False) -> None:
    """End the broker session of a worker that will not come back, storing what the broker kept for it.

    In a share group the broker goes on queuing a departed worker's share for it until its session expires.
    This takes the session over (so never name a running worker), unsubscribes it, stores and acknowledges
    what it holds, and deletes it.
    """
    from telemetra.runtime.worker import retire_mqtt_client

    settings = _settings(mqtt_url=mqtt, mqtt_client_id=client_id)
    try:
        result = asyncio.run(retire_mqtt_client(settings, client_id, quiet_s=quiet_s, discard=discard))
    except (TelemetraError, ValueError, OSError, asyncio.TimeoutError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc or type(exc).__name__}", err=True)
        raise typer.Exit(1) from exc
    if not result.retired:
        typer.echo(f"interrupted: the session of {client_id} is kept", err=True)
        raise typer.Exit(130)
    session = {True: "its session", False: "no session (nothing to retire)", None: "its session, if any"}
    _emit(as_json, {"client_id": client_id, "session_present": result.session_present, "stored": result.stored,
                    "discarded": result.discarded},
          [f"{client_id}: {session[result.session_present]} ended; {result.stored} message(s) stored"
           + (", the rest discarded" if result.discarded else "")])


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = _settings()

    async def work(services: Any) -> None:
        return None

    _run(settings, work)
    typer.echo("database is up to date")


@tenant_app.command("create")
def tenant_create(name: str, as_json: JsonOpt = False) -> None:
    """Create a tenant and print its first key (shown once)."""
    settings = _settings()

    async def work(services: Any) -> Any:
        return await services.tenants.create(name)

    tenant, key, secret = _run(settings, work)
    _emit(as_json, {"tenant": {"id": tenant.id, "name": tenant.name}, "key_id": key.id, "api_key": secret},
          [f"tenant {tenant.id} '{tenant.name}' created", f"api key (shown once): {secret}"])


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False) -> None:
    """List tenants with their device counts."""
    settings = _settings()

    async def work(services: Any) -> Any:
        return await services.store.list_tenants()

    rows = _run(settings, work)
    _emit(as_json, [{"id": t.id, "name": t.name, "devices": n, "created_at": t.created_at.isoformat()}
                    for t, n in rows],
          [f"{'ID':>5}  {'NAME':30} DEVICES"] + [f"{t.id:>5}  {t.name:30} {n}" for t, n in rows])


@tenant_app.command("retention")
def tenant_retention(tenant: Annotated[str, typer.Argument(help="Tenant id or name.")],
                     days: Annotated[str, typer.Argument(help="Days raw telemetry is kept, or 'forever'.")],
                     as_json: JsonOpt = False) -> None:
    """Set how long a tenant's raw telemetry is kept (rollups are kept regardless)."""
    if days != "forever" and not (days.isdigit() and 1 <= int(days) <= 36_500):
        typer.echo("error: DAYS is a number of days from 1 to 36500, or 'forever'", err=True)
        raise typer.Exit(2)
    settings = _settings()
    kept = None if days == "forever" else int(days)

    async def work(services: Any) -> Any:
        found = await services.tenants.resolve(tenant)
        await services.store.set_tenant_retention(found.id, kept)
        return found

    found = _run(settings, work)
    _emit(as_json, {"tenant": found.id, "retention_days": kept},
          [f"tenant {found.id} '{found.name}': raw telemetry kept {'for ever' if kept is None else f'{kept} days'}"])


@rollup_app.command("rebuild")
def rollup_rebuild(since: Annotated[Optional[str], typer.Option(
                       help="Only hours from this ISO date or datetime (UTC) on; default: all.")] = None,
                   as_json: JsonOpt = False) -> None:
    """Recompute the hourly statistics and energy rollups from the raw points (e.g. after changing
    TELEMETRA_ENERGY_KEYS or TELEMETRA_ENERGY_MAX_HOLD_S)."""
    from telemetra.domain.timeparse import TimestampError, parse_query_time

    try:
        start = parse_query_time(since) if since else None
    except TimestampError as exc:
        typer.echo(f"error: --since: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = _settings()

    async def work(services: Any) -> Any:
        return await services.store.rebuild_rollups(start)

    stats_rows, energy_rows = _run(settings, work)
    _emit(as_json, {"statistics_rows": stats_rows, "energy_rows": energy_rows},
          [f"rebuilt {stats_rows} hourly statistics rows and {energy_rows} energy rows"])


@device_app.command("create")
def device_create(tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
                  device_id: Annotated[Optional[str], typer.Option("--id", help="Device id (default: generated).")] = None,
                  name: Annotated[Optional[str], typer.Option(help="Name, unique in the tenant (default: the id).")] = None,
                  device_type: Annotated[str, typer.Option("--type", help="Device type.")] = "sensor",
                  as_json: JsonOpt = False) -> None:
    """Register a device and print its key (shown once)."""
    settings = _settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.devices.register(owner.id, name=name or device_id or "device",
                                               device_id=device_id, device_type=device_type)

    device, secret = _run(settings, work)
    _emit(as_json, {"device": {"id": device.id, "name": device.name, "tenant_id": device.tenant_id},
                    "api_key": secret},
          [f"device '{device.id}' created in tenant {device.tenant_id}", f"api key (shown once): {secret}"])


@device_app.command("list")
def device_list(tenant: Annotated[Optional[str], typer.Option(help="Only this tenant (id or name).")] = None,
                limit: Annotated[int, typer.Option(help="Most devices shown.")] = 100,
                as_json: JsonOpt = False) -> None:
    """List devices, newest first."""
    from telemetra.store import DeviceFilter

    settings = _settings()

    async def work(services: Any) -> Any:
        tenant_id = (await services.tenants.resolve(tenant)).id if tenant else None
        return await services.store.list_devices(DeviceFilter(tenant_id=tenant_id, limit=limit))

    devices, total = _run(settings, work)
    _emit(as_json, [{"id": d.id, "name": d.name, "tenant_id": d.tenant_id, "type": d.device_type,
                     "status": d.status, "last_seen": d.last_seen.isoformat() if d.last_seen else None}
                    for d in devices],
          [f"{'ID':24} {'TENANT':>6}  {'STATUS':12} NAME"]
          + [f"{d.id:24} {d.tenant_id:>6}  {d.status:12} {d.name}" for d in devices]
          + [f"({len(devices)} of {total})"])


@key_app.command("create")
def key_create(tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
               scope: Annotated[str, typer.Option(help="full or ingest.")] = "full",
               name: Annotated[str, typer.Option(help="A label.")] = "",
               as_json: JsonOpt = False) -> None:
    """Issue a tenant key and print it (shown once)."""
    if scope not in ("full", "ingest"):
        typer.echo("error: --scope is full or ingest", err=True)
        raise typer.Exit(2)
    settings = _settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.keys.issue_tenant_key(owner.id, scope=scope, name=name)

    key, secret = _run(settings, work)
    _emit(as_json, {"key_id": key.id, "prefix": key.prefix, "scope": key.scope, "api_key": secret},
          [f"key {key.id} ({key.scope}) created", f"api key (shown once): {secret}"])


@key_app.command("list")
def key_list(tenant: Annotated[str, typer.Option(help="Tenant id or name.")], as_json: JsonOpt = False) -> None:
    """List a tenant's keys (prefixes only; keys are never stored)."""
    settings = _settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.store.list_keys(tenant_id=owner.id)

    keys = _run(settings, work)
    _emit(as_json, [{"id": k.id, "kind": k.kind, "prefix": k.prefix, "scope": k.scope, "name": k.name,
                     "revoked": k.revoked_at is not None, "usage_count": k.usage_count} for k in keys],
          [f"{k.id:>5}  {k.kind:7} {k.prefix:14} {k.scope:7} {'revoked' if k.revoked_at else 'active':8} {k.name}"
           for k in keys])


@key_app.command("rotate")
def key_rotate(device: Annotated[Optional[str], typer.Option(help="Give this device a new key.")] = None,
               tenant: Annotated[Optional[str], typer.Option(help="Tenant of --key-id.")] = None,
               key_id: Annotated[Optional[int], typer.Option(help="Replace this tenant key.")] = None,
               admin: Annotated[bool, typer.Option("--admin", help="Replace the generated admin key.")] = False,
               grace: Annotated[int, typer.Option(min=0, max=7 * 86_400,
                                                  help="Seconds the old key keeps working (device and tenant "
                                                       "keys; 0: revoked at once).")] = 0,
               as_json: JsonOpt = False) -> None:
    """Replace a key by a new one and revoke the old (at once, or after --grace); the new key is printed once."""
    if sum([device is not None, key_id is not None, admin]) != 1:
        typer.echo("error: give exactly one of --device, --tenant with --key-id, or --admin", err=True)
        raise typer.Exit(2)
    settings = _settings()

    async def work(services: Any) -> Any:
        from telemetra.domain.timeparse import utcnow

        if admin:
            return None, await services.keys.rotate_admin_key()
        if device is not None:
            owned = await services.devices.get(device)
            if not grace:
                return await services.keys.rotate_device_key(owned)
            usable = [k for k in await services.store.list_keys(device_pk=owned.pk, kind="device")
                      if k.is_usable(utcnow())]
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

    key, secret = _run(settings, work)
    _emit(as_json, {"key_id": key.id if key else None, "api_key": secret, "grace_s": grace},
          [f"new key (shown once): {secret}",
           f"the previous key works {grace} s more" if grace else "the previous key is revoked"])


@key_app.command("revoke")
def key_revoke(tenant: Annotated[str, typer.Option(help="Tenant id or name.")],
               key_id: Annotated[int, typer.Option(help="The key to revoke.")]) -> None:
    """Revoke a tenant key at once."""
    settings = _settings()

    async def work(services: Any) -> Any:
        owner = await services.tenants.resolve(tenant)
        return await services.keys.revoke_tenant_key(owner.id, key_id)

    _run(settings, work)
    typer.echo(f"key {key_id} revoked")


def main() -> None:
    app()
