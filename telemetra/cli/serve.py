"""`telemetra serve`, `worker` and `simulate`: the long-running processes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Optional

import typer

from telemetra.cli.common import JsonOpt, app, emit, load_cli_settings, masked_url, run_with_services
from telemetra.errors import TelemetraError
from telemetra.gc_tuning import tune_gc

__all__ = ["serve", "worker", "simulate"]


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port.")] = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="Create a demo tenant and user (once) and print their key and password, kept beside the database."
        ),
    ] = False,
    mqtt: Annotated[Optional[str], typer.Option(help="Also take telemetry from this MQTT broker.")] = None,
    nats: Annotated[Optional[str], typer.Option(help="Also take telemetry from this NATS JetStream.")] = None,
    simulate: Annotated[Optional[int], typer.Option(help="Simulate this many demo devices.")] = None,
    tls_cert: Annotated[Optional[str], typer.Option(help="Serve HTTPS with this certificate chain (PEM).")] = None,
    tls_key: Annotated[Optional[str], typer.Option(help="Private key (PEM) of --tls-cert.")] = None,
) -> None:
    """Migrate the database and serve the API and the web console."""
    from telemetra.api.http_protocol import guarded_protocol
    from telemetra.api.server import PortBusy, bind_listener, run_server
    from telemetra.cli.demo import demo_file, ensure_demo
    from telemetra.console import create_console_app
    from telemetra.key_notice import KeyNotice, default_keys_file

    settings = load_cli_settings(
        host=host,
        port=port,
        mqtt_url=mqtt,
        nats_url=nats,
        simulate_devices=simulate,
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
    )
    # The port first: a second run on a busy port stops here, before it has touched the database or the demo.
    try:
        listener = bind_listener(settings.host, settings.port)
    except PortBusy as exc:
        typer.echo(f"error: {exc} (is another Telemetra running? choose another port with --port)", err=True)
        raise typer.Exit(1) from exc

    notice = KeyNotice(default_keys_file(settings), echo=typer.echo)

    async def bootstrap(services: Any) -> None:
        admin_key = await services.keys.ensure_admin_key(settings.admin_key)
        if admin_key:
            notice.show("Admin key (shown once, keep it safe)", admin_key)
        if demo:
            access = await ensure_demo(services, demo_file(settings))
            notice.show_saved(f"Demo tenant '{access.tenant}' key", access.key, access.path)
            notice.show_saved("Demo sign-in", f"{access.email} / {access.password}", access.path)

    try:
        run_with_services(settings, bootstrap)
    except BaseException:
        listener.close()
        raise
    scheme = "https" if settings.tls_cert_file else "http"
    typer.echo(f"Database: {masked_url(settings.database_url)}")
    served = create_console_app(settings)
    tune_gc()
    run_server(
        served,
        host=settings.host,
        port=settings.port,
        sockets=[listener],
        on_ready=lambda: typer.echo(
            f"Telemetra on {scheme}://{settings.host}:{settings.port}  (console: /console/, API docs: /docs)"
        ),
        access_log=settings.log_level == "DEBUG",
        server_header=False,
        http=guarded_protocol(
            header_timeout_s=settings.http_header_timeout_s, max_connections=settings.http_max_connections
        ),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )


@app.command()
def worker(
    source: Annotated[list[str], typer.Option("--source", help="mqtt and/or nats (repeatable).")],
    mqtt: Annotated[Optional[str], typer.Option(help="MQTT broker URL (or TELEMETRA_MQTT_URL).")] = None,
    nats: Annotated[Optional[str], typer.Option(help="NATS URL (or TELEMETRA_NATS_URL).")] = None,
    client_id: Annotated[Optional[str], typer.Option(help="Stable MQTT client id of this worker.")] = None,
) -> None:
    """Ingest from brokers without serving HTTP; SIGTERM finishes and acknowledges what is in flight."""
    from telemetra.runtime.worker import run_worker

    settings = load_cli_settings(mqtt_url=mqtt, nats_url=nats, mqtt_client_id=client_id)
    tune_gc()
    try:
        asyncio.run(run_worker(settings, source))
    except (TelemetraError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(help="Devices to register and simulate.")] = 10,
    rate: Annotated[float, typer.Option(help="Messages per second over all devices (0: as fast as acked).")] = 10.0,
    via: Annotated[str, typer.Option(help="http, mqtt or nats.")] = "http",
    profile: Annotated[str, typer.Option(help="energy, environment, gym or meter.")] = "environment",
    duration: Annotated[Optional[float], typer.Option(help="Seconds to run (default: until Ctrl-C).")] = None,
    count: Annotated[Optional[int], typer.Option(help="Stop after this many messages.")] = None,
    url: Annotated[str, typer.Option(help="Telemetra's HTTP address (for registration).")] = "http://127.0.0.1:8000",
    key: Annotated[
        Optional[str], typer.Option(help="Tenant key (or TELEMETRA_SIM_KEY).", envvar="TELEMETRA_SIM_KEY")
    ] = None,
    mqtt: Annotated[str, typer.Option(help="Broker for --via mqtt.")] = "mqtt://127.0.0.1:1883",
    nats: Annotated[str, typer.Option(help="NATS for --via nats.")] = "nats://127.0.0.1:4222",
    concurrency: Annotated[int, typer.Option(help="Messages awaiting their ack at once.")] = 64,
    prefix: Annotated[
        str, typer.Option(help="Device ids start with it; a later run with the same prefix reuses the devices.")
    ] = "sim",
    ca_file: Annotated[
        Optional[str], typer.Option(help="CA to verify the broker's certificate with (MQTT or NATS over TLS).")
    ] = None,
    cert_file: Annotated[Optional[str], typer.Option(help="Client certificate for a broker that asks for one.")] = None,
    key_file: Annotated[Optional[str], typer.Option(help="Key of the client certificate.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register simulated devices and send realistic telemetry; report what was sent and acknowledged."""
    from telemetra.sim.profiles import PROFILES
    from telemetra.sim.runner import SimConfig, run_simulation

    if profile not in PROFILES or via not in ("http", "mqtt", "nats") or not key:
        typer.echo(
            "error: --profile is one of " + ", ".join(PROFILES) + "; --via is http, mqtt or nats; "
            "--key (a tenant key) is required",
            err=True,
        )
        raise typer.Exit(2)
    config = SimConfig(
        devices=devices,
        rate=rate,
        via=via,
        profile=profile,
        url=url,
        tenant_key=key,
        duration_s=duration,
        count=count,
        mqtt_url=mqtt,
        nats_url=nats,
        concurrency=concurrency,
        prefix=prefix,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
    )
    try:
        report = asyncio.run(run_simulation(config))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except OSError as exc:  # the broker is unreachable, or its certificate does not verify
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    summary = report.summary()
    emit(
        as_json,
        summary,
        [
            f"{summary['devices']} devices, {summary['sent']} sent, {summary['acked']} acknowledged "
            f"in {summary['elapsed_s']} s ({summary['rate_msg_s']} msg/s), failed: {summary['failed']}",
            f"ack latency p50 {summary['ack_latency_ms']['p50']} ms, p99 {summary['ack_latency_ms']['p99']} ms",
        ],
    )
