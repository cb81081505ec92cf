"""`telemetra pull` (an upstream objects API into the store) and `telemetra device run` (the device client)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Optional

import typer

from telemetra.cli.common import app, device_app, load_cli_settings, masked_url
from telemetra.errors import TelemetraError

__all__ = ["pull", "device_run", "parse_duration_s"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration_s(text: str) -> float:
    """`10s`, `500ms`, `2m`, `1h` or a number of seconds, in seconds (more than 0)."""
    found = _DURATION.match(text)
    seconds = float(found.group(1)) * _UNIT_S[found.group(2)] if found else 0.0
    if seconds <= 0:
        raise typer.BadParameter(f"'{text}' is not a duration like 10s, 500ms, 2m or 1h")
    return seconds


@app.command()
def pull(
    source: Annotated[
        Optional[str],
        typer.Option("--from", help="The upstream objects API's address (or TELEMETRA_PULL_URL)."),
    ] = None,
    every: Annotated[Optional[str], typer.Option(help="Time between polls: 10s, 500ms, 2m (default 10s).")] = None,
    client: Annotated[
        Optional[list[str]], typer.Option("--client", help="Only this client's objects (repeatable).")
    ] = None,
) -> None:
    """Poll an upstream IoT objects API (seed 000's shapes) and store its objects' readings; each object is a
    device of the tenant named after its client, both created on first sight. Stops at SIGTERM or Ctrl-C."""
    from telemetra.runtime.worker import run_puller

    overrides: dict[str, object] = {"pull_url": source}
    if every is not None:
        overrides["pull_every_s"] = parse_duration_s(every)
    if client:
        overrides["pull_clients"] = ",".join(client)
    settings = load_cli_settings(**overrides)
    if not settings.pull_url:
        typer.echo("error: give the upstream with --from URL (or TELEMETRA_PULL_URL)", err=True)
        raise typer.Exit(2)
    typer.echo(f"pulling from {masked_url(settings.pull_url)} every {settings.pull_every_s:g} s", err=True)
    try:
        asyncio.run(run_puller(settings, settings.pull_url))
    except (TelemetraError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from exc


@device_app.command("run")
def device_run(
    config: Annotated[str, typer.Option("--config", help="The device's TOML file (see docs/edge.md).")],
) -> None:
    """Run the device client: read values at a period, send them (buffered while the platform is away), take
    commands and desired state. Stops at SIGTERM or Ctrl-C; a refused key or password stops it with one line."""
    from telemetra.client.__main__ import run

    raise typer.Exit(run(config))
