"""WHERE clauses shared by both backends; ``mark`` is "?" (SQLite) or "$" (PostgreSQL numbered)."""

from __future__ import annotations

import functools
from typing import Any

from telemetra.store.base import DeviceFilter

__all__ = ["key_filter", "device_filter", "numbered"]


def key_filter(tenant_id: int | None, device_pk: int | None, kind: str | None, mark: str) -> tuple[str, list]:
    """Return a WHERE clause and its arguments selecting keys."""
    clauses, args = [], []
    for column, value in (("tenant_id", tenant_id), ("device_pk", device_pk), ("kind", kind)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = {mark if mark == '?' else f'${len(args)}'}")
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


def device_filter(flt: DeviceFilter, mark: str) -> tuple[str, list]:
    """Return a WHERE clause and its arguments selecting devices."""
    clauses, args = [], []

    def add(sql: str, value: Any) -> None:
        args.append(value)
        clauses.append(sql.replace("%s", "?" if mark == "?" else f"${len(args)}"))

    if flt.tenant_id is not None:
        add("tenant_id = %s", flt.tenant_id)
    if flt.status:
        add("status = %s", flt.status)
    if flt.device_type:
        add("device_type = %s", flt.device_type)
    if flt.search:
        escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        add("lower(name) LIKE lower(%s) ESCAPE '\\'", f"%{escaped}%")
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """Turn each ``?`` of ``sql`` into PostgreSQL's ``$1``, ``$2``... in order.

    The shared statements (``store.sql_reads``) are written once with SQLite's marks; none holds a ``?`` in
    a string literal or as jsonb's operator.
    """
    head, *rest = sql.split("?")
    return head + "".join(f"${i}{part}" for i, part in enumerate(rest, start=1))
