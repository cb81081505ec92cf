"""The monthly partitions of the telemetry tables, and retention, which drops whole months or deletes rows.

Partitions are created ahead of need (``ensure_partitions``, at migration and at each maintenance run); a
month goes whole once no tenant keeps it any more, and a tenant's older rows are deleted from the months
that stay.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta, timezone

import asyncpg

from telemetra.store.base import RetentionPreview
from telemetra.store.console_reads import MINUTE_COUNTS_KEPT
from telemetra.store.postgres.access import PostgresAccess

logger = logging.getLogger(__name__)
__all__ = ["PostgresPartitions"]

PARTITIONED_TABLES = ("messages", "points")
PARTITION_NAME = re.compile(r"y(\d{4})m(\d{2})")
PARTITION_MONTHS_BEHIND = 1
PARTITION_MONTHS_AHEAD = 3


def _month_start(day: date, months_later: int) -> date:
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


class PostgresPartitions(PostgresAccess):
    """Partition upkeep and retention, on the store's transactions and reads."""

    async def ensure_partitions(self, now: datetime) -> list[str]:
        """Create the monthly partitions around ``now`` that do not exist yet; return their names."""
        created = []
        this_month = now.date().replace(day=1)
        for offset in range(-PARTITION_MONTHS_BEHIND, PARTITION_MONTHS_AHEAD + 1):
            lo, hi = _month_start(this_month, offset), _month_start(this_month, offset + 1)
            for table in PARTITIONED_TABLES:
                name = f"{table}_y{lo.year}m{lo.month:02d}"
                async with self._tx() as conn:
                    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
                    if exists:
                        continue
                    try:
                        await conn.execute(
                            f"CREATE TABLE {name} PARTITION OF {table} "
                            f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
                        )
                        created.append(name)
                    except asyncpg.exceptions.CheckViolationError:
                        # Rows of that month already sit in the default partition; leave them there.
                        logger.warning("partition %s not created: the default partition holds its rows", name)
        return created

    async def apply_retention(self, now: datetime) -> tuple[int, list[str]]:
        tenants = await self._fetch("SELECT id, retention_days FROM tenants ORDER BY id")
        dropped: list[str] = []
        if tenants and all(days is not None for _, days in tenants):
            # Partitions hold every tenant's rows: a month goes whole once no tenant keeps it any more.
            oldest_kept = min(now - timedelta(days=days) for _, days in tenants)
            dropped = await self._drop_partitions_before(oldest_kept)
        deleted = 0
        async with self._tx() as conn:  # the console's per-minute counts show a day; two are kept
            await conn.execute("DELETE FROM minute_counts WHERE minute < $1", now - MINUTE_COUNTS_KEPT)
        for tenant_id, days in tenants:
            if days is None:
                continue
            async with self._tx() as conn:
                for table in PARTITIONED_TABLES:
                    status = await conn.execute(
                        f"DELETE FROM {table} WHERE device_pk IN (SELECT pk FROM devices WHERE tenant_id = $1) "
                        f"AND ts < $2",
                        tenant_id,
                        now - timedelta(days=days),
                    )
                    deleted += int(status.split()[-1])
                # The msg_ids of those messages (bookkeeping, not counted): a replay that old is stored anew.
                await conn.execute(
                    "DELETE FROM message_ids WHERE device_pk IN (SELECT pk FROM devices WHERE tenant_id = $1) "
                    "AND ts < $2",
                    tenant_id,
                    now - timedelta(days=days),
                )
        return deleted, dropped

    async def preview_retention(self, now: datetime) -> RetentionPreview:
        tenants = await self._fetch("SELECT id, retention_days FROM tenants ORDER BY id")
        partitions: list[str] = []
        if tenants and all(days is not None for _, days in tenants):
            oldest_kept = min(now - timedelta(days=days) for _, days in tenants)
            partitions = await self._partitions_before(oldest_kept)
        previews = []
        for tenant_id, days in tenants:
            if days is None:
                continue
            cutoff = now - timedelta(days=days)
            counts = [
                (
                    await self._fetch(
                        f"SELECT count(*) FROM {table} WHERE device_pk IN "
                        f"(SELECT pk FROM devices WHERE tenant_id = $1) AND ts < $2",
                        tenant_id,
                        cutoff,
                    )
                )[0][0]
                for table in PARTITIONED_TABLES
            ]
            # PARTITIONED_TABLES is (messages, points); the preview names points first.
            previews.append((tenant_id, days, cutoff, counts[1], counts[0]))
        return RetentionPreview(previews, partitions)

    async def _partitions_before(self, cutoff: datetime) -> list[str]:
        """The monthly partitions whose whole month ends at or before ``cutoff``."""
        found = []
        for table in PARTITIONED_TABLES:
            rows = await self._fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1",
                table,
            )
            for (name,) in rows:
                match = PARTITION_NAME.fullmatch(name.removeprefix(f"{table}_"))
                if match is None:  # the default partition, or one made by hand
                    continue
                ends = _month_start(date(int(match[1]), int(match[2]), 1), 1)
                if datetime.combine(ends, time(0), timezone.utc) <= cutoff:
                    found.append(name)
        return found

    async def _drop_partitions_before(self, cutoff: datetime) -> list[str]:
        dropped = []
        for name in await self._partitions_before(cutoff):
            async with self._tx() as conn:
                await conn.execute(f"DROP TABLE {name}")
            dropped.append(name)
            logger.info("retention: dropped partition %s", name)
        return dropped
