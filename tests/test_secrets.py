"""A key never appears in clear in the database or in a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from telemetra.log import RedactSecrets, redact


async def _database_text(store, database_url: str) -> str:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*")).decode("latin-1")
    conn = await asyncpg.connect(database_url)
    try:
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        dumps = [str(await conn.fetch(f"SELECT t::text FROM {table} t")) for table in tables]
        return "\n".join(dumps)
    finally:
        await conn.close()


async def test_keys_not_in_database_or_logs(
    client, app, store, database_url, admin_headers, make_tenant, make_device, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactSecrets())  # as configure_logging puts on every handler
    tenant = await make_tenant()
    device = await make_device(tenant)
    issued = await client.post(
        f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys", headers=admin_headers, json={"scope": "ingest"}
    )
    secrets = [tenant["api_key"], device["api_key"], issued.json()["api_key"], admin_headers["X-API-Key"]]
    await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}})
    await client.get("/api/v1/devices", headers=tenant["headers"])
    await client.get("/api/v1/devices?api_key=" + tenant["api_key"], headers={"X-API-Key": "wrong"})
    await app.state.services.activity.flush()
    stored = await _database_text(store, database_url)
    logged = caplog.text
    assert "tenant key issued" in logged and "device registered" in logged  # logging did happen
    for secret in secrets:
        assert secret not in stored
        assert secret not in logged
        assert secret[5:] not in stored  # not even without its prefix


def test_redaction_filter_scrubs_keys_and_query_secrets(caplog) -> None:
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "GET /api/telemetry?deviceId=a&api_key=%s k=%s",
        ("abc123secret", "tlmt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
    )
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert "abc123secret" not in message and "AAAAAAAAAAAA" not in message
    assert "deviceId=a" in message and "api_key=[REDACTED]" in message
    assert redact("token=eyJhbGciOi.x.y password=hunter2") == "token=[REDACTED] password=[REDACTED]"
    assert (
        redact("sent eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyYXNwYmVycnkxIn0.c2lnbmF0dXJl here") == "sent [REDACTED JWT] here"
    )
