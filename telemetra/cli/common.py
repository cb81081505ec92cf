"""What every `telemetra` command shares: the app and its groups, the settings, a run over the services, output."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable

import typer

from telemetra.errors import ConfigError, TelemetraError
from telemetra.log import configure_logging
from telemetra.settings import Settings, load_settings
from telemetra.settings.model import unknown_variables

logger = logging.getLogger(__name__)
__all__ = [
    "app",
    "tenant_app",
    "device_app",
    "key_app",
    "rollup_app",
    "mqtt_app",
    "JsonOpt",
    "load_cli_settings",
    "run_with_services",
    "emit",
    "masked_url",
]

app = typer.Typer(
    help="Telemetra: an IoT telemetry platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def load_cli_settings(**overrides: Any) -> Settings:
    """Load the settings (options given override the environment), exit 2 naming a bad one, set up logging."""
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_file, settings.log_format)
    for name in unknown_variables(os.environ):
        logger.warning("%s is not a setting and is ignored (docs/configuration.md lists the settings)", name)
    _ensure_data_dir(settings)
    return settings


def _ensure_data_dir(settings: Settings) -> None:
    """Create the data folder (owner only) when the database is the default one inside it."""
    if settings.database_url.startswith("sqlite:///"):
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        if database.parent.resolve() == Path(settings.data_dir).resolve():
            database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def run_with_services(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
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


def masked_url(url: str) -> str:
    """A database or broker URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def emit(as_json: bool, data: Any, lines: list[str]) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else "\n".join(lines))
