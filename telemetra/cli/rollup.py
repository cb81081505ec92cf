"""`telemetra rollup rebuild`: recompute the rollups from the raw points."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from telemetra.cli.common import JsonOpt, emit, load_cli_settings, rollup_app, run_with_services

__all__ = ["rollup_rebuild"]


@rollup_app.command("rebuild")
def rollup_rebuild(
    since: Annotated[
        Optional[str], typer.Option(help="Only hours from this ISO date or datetime (UTC) on; default: all.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the hourly statistics and energy rollups from the raw points (e.g. after changing
    TELEMETRA_ENERGY_KEYS or TELEMETRA_ENERGY_MAX_HOLD_S)."""
    from telemetra.domain.timeparse import TimestampError, parse_query_time

    try:
        start = parse_query_time(since) if since else None
    except TimestampError as exc:
        typer.echo(f"error: --since: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        return await services.store.rebuild_rollups(start)

    stats_rows, energy_rows = run_with_services(settings, work)
    emit(
        as_json,
        {"statistics_rows": stats_rows, "energy_rows": energy_rows},
        [f"rebuilt {stats_rows} hourly statistics rows and {energy_rows} energy rows"],
    )
