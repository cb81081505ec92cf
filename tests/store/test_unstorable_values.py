"""A value the database refuses, past every check above the store, is the caller's fault: the store raises
UnstorableValue (422 ``unstorable_value``) chained to the driver's error, instead of the driver's error that
the API answered 500, and it keeps serving. The telemetry batch write is left out: the pipeline handles its
failures (test_pipeline, test_poison_input)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from telemetra.errors import UnstorableValue, ValidationFailed
from telemetra.store import Store, store_from_url
from tests.store.test_store import T0, _device

# Past SQLite's 64-bit integers, and past PostgreSQL's `integer` and `bigint`.
HUGE = 2**64


async def _refused(call) -> UnstorableValue:
    with pytest.raises(UnstorableValue) as caught:
        await call
    error = caught.value
    assert isinstance(error, ValidationFailed) and (error.status, error.code) == (422, "unstorable_value")
    assert isinstance(error.__cause__, (asyncpg.DataError, OverflowError))
    return error


async def test_a_number_past_a_column_is_refused_on_both_backends(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await _refused(store.get_tenant(HUGE))  # a read (a path or query parameter nobody bounded)
    await _refused(store.commands.list_commands(device.pk, offset=HUGE))
    await _refused(store.set_tenant_retention(tenant.id, HUGE))  # a write, in a transaction
    await _refused(store.alerts.get_channel(HUGE, tenant.id))
    assert (await store.get_tenant(tenant.id)).retention_days is None
    await store.set_tenant_retention(tenant.id, 30)  # the store still writes
    assert (await store.get_tenant(tenant.id)).retention_days == 30


@pytest.fixture
async def pg_store(pg_database: str) -> AsyncIterator[Store]:
    the_store = store_from_url(pg_database)
    await the_store.open()
    yield the_store
    await the_store.close()


async def test_a_nul_postgresql_cannot_hold_is_refused(pg_store: Store) -> None:
    """PostgreSQL refuses a NUL in text (SQLSTATE 22021) and jsonb (22P05); SQLite keeps it."""
    store = pg_store
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await _refused(store.create_tenant("a\x00b"))
    await _refused(store.commands.set_desired(device.pk, {"mode": "a\x00b"}, T0))
    await _refused(store.get_tenant_by_name("a\x00b"))
    assert [t.name for t, _ in await store.list_tenants()] == ["acme"]
    assert await store.commands.get_desired(device.pk) is None
