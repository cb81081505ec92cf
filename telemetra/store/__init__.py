"""Persistence: one Store interface, two backends."""

from __future__ import annotations

from telemetra.store.base import DashboardCounts, DeviceFilter, NewDevice, NewKey, Store

__all__ = ["Store", "NewKey", "NewDevice", "DeviceFilter", "DashboardCounts", "store_from_url"]


def store_from_url(url: str, *, pool_size: int = 10, keep_raw_messages: bool = True) -> Store:
    """Return the backend a database URL names (``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith("sqlite:///"):
        from telemetra.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"), keep_raw_messages=keep_raw_messages)
    from telemetra.store.postgres import PostgresStore

    return PostgresStore(url.replace("postgres://", "postgresql://", 1), pool_size=pool_size,
                         keep_raw_messages=keep_raw_messages)
