"""Persistence: one Store interface, two backends."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from telemetra.store.base import DashboardCounts, DeviceFilter, NewDevice, NewKey, RetentionPreview, Store
from telemetra.store.rollups import RollupConfig

if TYPE_CHECKING:
    from telemetra.settings import Settings

__all__ = [
    "Store",
    "NewKey",
    "NewDevice",
    "DeviceFilter",
    "DashboardCounts",
    "RetentionPreview",
    "store_from_url",
    "store_from_settings",
    "RollupConfig",
]


def store_from_url(
    url: str,
    *,
    pool_size: int = 10,
    keep_raw_messages: bool = True,
    rollup_config: RollupConfig | None = None,
    sqlite_cache_mb: int = 64,
    query_pool_size: int = 3,
    query_timeout_s: float = 10.0,
) -> Store:
    """Return the backend a database URL names (``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith("sqlite:///"):
        from telemetra.store.sqlite import SqliteStore

        return SqliteStore(
            url.removeprefix("sqlite:///"),
            keep_raw_messages=keep_raw_messages,
            rollup_config=rollup_config,
            writer_cache_mb=sqlite_cache_mb,
            query_connections=query_pool_size,
        )
    from telemetra.store.postgres import PostgresStore

    return PostgresStore(
        url.replace("postgres://", "postgresql://", 1),
        pool_size=pool_size,
        keep_raw_messages=keep_raw_messages,
        rollup_config=rollup_config,
        query_pool_size=query_pool_size,
        query_timeout_s=query_timeout_s,
    )


def store_from_settings(settings: "Settings", *, pool_size: int | None = None) -> Store:
    """The store ``settings`` describe, rollups included."""
    energy_keys = frozenset(k.strip() for k in settings.energy_keys.split(",") if k.strip())
    return store_from_url(
        settings.database_url,
        pool_size=pool_size or settings.pg_pool_size,
        keep_raw_messages=settings.keep_raw_messages,
        sqlite_cache_mb=settings.sqlite_cache_mb,
        query_pool_size=settings.query_pool_size,
        query_timeout_s=settings.query_timeout_s,
        rollup_config=RollupConfig(energy_keys=energy_keys, max_hold=timedelta(seconds=settings.energy_max_hold_s)),
    )
