"""The PostgreSQL backend: production, on asyncpg."""

from telemetra.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
