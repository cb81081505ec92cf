"""`telemetra mqtt-sync` and `telemetra mqtt retire-client`: Telemetra's side of the MQTT broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from telemetra.cli.common import JsonOpt, app, emit, load_cli_settings, mqtt_app, run_with_services
from telemetra.errors import TelemetraError

__all__ = ["mqtt_sync", "mqtt_retire_client"]


@app.command("mqtt-sync")
def mqtt_sync(
    password_file: Annotated[Path, typer.Option(help="Mosquitto password_file to write.")],
    acl_file: Annotated[Path, typer.Option(help="Mosquitto acl_file to write.")],
    reload_pid_file: Annotated[
        Optional[Path],
        typer.Option(help="Mosquitto's pid file: send it SIGHUP after a change so it rereads both files."),
    ] = None,
    every: Annotated[
        Optional[float], typer.Option(help="Keep running and sync every this many seconds (default: once).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the broker's password and ACL files from the registry: a device may publish only under its id.

    Telemetra itself logs in as TELEMETRA_MQTT_USERNAME with TELEMETRA_MQTT_PASSWORD; both are required.
    """
    from telemetra.domain.timeparse import utcnow
    from telemetra.registry.broker_sync import BrokerFiles, sync_mosquitto_files

    settings = load_cli_settings()
    if not settings.mqtt_username or not settings.mqtt_password:
        typer.echo(
            "error: set TELEMETRA_MQTT_USERNAME and TELEMETRA_MQTT_PASSWORD: Telemetra's own login to "
            "the broker is written to the files too",
            err=True,
        )
        raise typer.Exit(2)
    files = BrokerFiles(
        password_file, acl_file, settings.mqtt_username, settings.mqtt_password, settings.send_command_topic
    )

    async def work(services: Any) -> Any:
        while True:
            pid = int(reload_pid_file.read_text().split()[0]) if reload_pid_file else None
            report = await sync_mosquitto_files(services.store, files, utcnow(), reload_pid=pid)
            if every is None:
                return report
            await asyncio.sleep(every)

    try:
        report = run_with_services(settings, work)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    emit(
        as_json,
        {"devices": report.devices, "skipped": report.skipped, "changed": report.changed, "reloaded": report.reloaded},
        [
            f"{report.devices} device(s) written to {password_file} ({'changed' if report.changed else 'unchanged'}"
            f"{', broker reloaded' if report.reloaded else ''})"
        ]
        + ([f"skipped (id holds ':' or is the service user): {', '.join(report.skipped)}"] if report.skipped else []),
    )


@mqtt_app.command("retire-client")
def mqtt_retire_client(
    client_id: Annotated[str, typer.Option(help="Client id of the worker that is gone (e.g. telemetra-mqtt-2).")],
    mqtt: Annotated[Optional[str], typer.Option(help="MQTT broker URL (or TELEMETRA_MQTT_URL).")] = None,
    quiet_s: Annotated[
        float,
        typer.Option(help="Seconds without a message, everything acknowledged, before the session counts as empty."),
    ] = 2.0,
    discard: Annotated[bool, typer.Option(help="Drop what the session holds instead of storing it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """End the broker session of a worker that will not come back, storing what the broker kept for it.

    In a share group the broker goes on queuing a departed worker's share for it until its session expires.
    This takes the session over (so never name a running worker), unsubscribes it, stores and acknowledges
    what it holds, and deletes it.
    """
    from telemetra.runtime.worker import retire_mqtt_client

    settings = load_cli_settings(mqtt_url=mqtt, mqtt_client_id=client_id)
    try:
        result = asyncio.run(retire_mqtt_client(settings, client_id, quiet_s=quiet_s, discard=discard))
    except (TelemetraError, ValueError, OSError, asyncio.TimeoutError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc or type(exc).__name__}", err=True)
        raise typer.Exit(1) from exc
    if not result.retired:
        typer.echo(f"interrupted: the session of {client_id} is kept", err=True)
        raise typer.Exit(130)
    session = {True: "its session", False: "no session (nothing to retire)", None: "its session, if any"}
    emit(
        as_json,
        {
            "client_id": client_id,
            "session_present": result.session_present,
            "stored": result.stored,
            "discarded": result.discarded,
        },
        [
            f"{client_id}: {session[result.session_present]} ended; {result.stored} message(s) stored"
            + (", the rest discarded" if result.discarded else "")
        ],
    )
