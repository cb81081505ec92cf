"""A key or a device changed through one `telemetra serve` process is refused (or reread) by it at once, and by
another process within about a second, however long that process keeps authenticated keys: every such
change moves the database's credential epoch, which each process reads every second. On both backends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server

# The epoch is read every second (TELEMETRA_AUTH_EPOCH_POLL_S): a change shows within about that, plus the
# time of a request or two on a busy machine.
WITHIN_S = 2.0
# Far longer than any test: only the epoch can make the second process forget what it cached.
ENV = {
    "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
    "TELEMETRA_AUTH_CACHE_TTL_S": "3600",
    "TELEMETRA_RATE_LIMITS_ENABLED": "false",
}
ADMIN = {"X-API-Key": TEST_ADMIN_KEY}


@pytest.fixture
def clients(database_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    servers = [Server(database_url, env=ENV), Server(database_url, env=ENV)]
    try:
        with (
            httpx.Client(base_url=servers[0].url, timeout=10) as first,
            httpx.Client(base_url=servers[1].url, timeout=10) as second,
        ):
            yield first, second
    finally:
        for server in servers:
            server.stop()


def _tenant_and_device(client: httpx.Client) -> tuple[dict, dict]:
    tenant = client.post("/api/v1/admin/tenants", headers=ADMIN, json={"name": "acme"}).json()
    owner = {"X-API-Key": tenant["api_key"]}
    device = client.post("/api/v1/devices/register", headers=owner, json={"name": "sensor"}).json()["device"]
    return owner, device


def _until(
    answer: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool], limit_s: float
) -> tuple[httpx.Response, float]:
    """Ask again until ``done``; return the last answer and how long it took (AssertionError past the limit)."""
    started = time.monotonic()
    while not done(resp := answer()):
        assert time.monotonic() - started < limit_s, f"still {resp.status_code} {resp.text[:200]}"
        time.sleep(0.05)
    return resp, time.monotonic() - started


def _send(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.post("/api/v1/devices/telemetry", headers=headers, json={"data": {"t": 1}})


def test_a_key_revoked_through_one_process_is_refused_by_another_within_a_second(clients) -> None:
    first, second = clients
    owner, device = _tenant_and_device(first)
    headers = {"X-API-Key": device["api_key"]}
    # The second process authenticates the key, and keeps it (an hour).
    assert _send(second, headers).status_code == 201
    assert second.get("/api/v1/devices/status", headers=headers).status_code == 200
    key_id = first.get("/api/v1/keys?kind=device", headers=owner).json()["keys"][0]["id"]

    assert first.delete(f"/api/v1/keys/{key_id}", headers=owner).status_code == 200
    at_once = _send(first, headers)
    refused, _ = _until(lambda: _send(second, headers), lambda r: r.status_code != 201, WITHIN_S)
    status = second.get("/api/v1/devices/status", headers=headers)

    assert at_once.status_code == 401 and at_once.json()["code"] == "api_key_revoked"
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_revoked"
    assert status.status_code == 401 and status.json()["code"] == "api_key_revoked"


def test_a_key_rotated_with_a_grace_period_elsewhere_expires_on_time(clients) -> None:
    first, second = clients
    owner, device = _tenant_and_device(first)
    headers = {"X-API-Key": device["api_key"]}
    assert _send(second, headers).status_code == 201  # cached by the second process without an expiry
    key_id = first.get("/api/v1/keys?kind=device", headers=owner).json()["keys"][0]["id"]

    rotated = first.post(f"/api/v1/keys/{key_id}/rotate", headers=owner, json={"grace_s": 1})
    assert rotated.status_code == 201
    # The old key works through its grace second, then the second process refuses it as expired.
    refused, _ = _until(lambda: _send(second, headers), lambda r: r.status_code != 201, 1 + WITHIN_S)
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_expired"
    assert _send(second, {"X-API-Key": rotated.json()["api_key"]}).status_code == 201


def test_a_device_disabled_then_deleted_elsewhere_is_seen_within_a_second(clients) -> None:
    first, second = clients
    _owner, device = _tenant_and_device(first)
    headers = {"X-API-Key": device["api_key"]}
    assert second.get("/api/v1/devices/status", headers=headers).json()["device"]["status"] == "active"

    changed = first.put(f"/api/v1/admin/devices/{device['id']}", headers=ADMIN, json={"status": "inactive"})
    assert changed.status_code == 200
    _until(
        lambda: second.get("/api/v1/devices/status", headers=headers),
        lambda r: r.json()["device"]["status"] == "inactive",
        WITHIN_S,
    )

    assert first.delete(f"/api/v1/admin/devices/{device['id']}", headers=ADMIN).status_code in (200, 204)
    # Until the second process has read the epoch, a message it takes for the deleted device cannot be stored.
    refused, _ = _until(lambda: _send(second, headers), lambda r: r.status_code == 401, WITHIN_S)
    assert refused.json()["code"] == "invalid_api_key"


def test_the_tenants_own_rotate_and_delete_routes_reach_another_process_within_a_second(clients) -> None:
    first, second = clients
    owner, device = _tenant_and_device(first)
    old = {"X-API-Key": device["api_key"]}
    assert _send(second, old).status_code == 201  # cached by the second process for an hour

    rotated = first.post(f"/api/v1/devices/{device['id']}/key/rotate", headers=owner)
    assert rotated.status_code == 201
    refused, _ = _until(lambda: _send(second, old), lambda r: r.status_code != 201, WITHIN_S)
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_revoked"
    new = {"X-API-Key": rotated.json()["api_key"]}
    assert _send(second, new).status_code == 201

    assert first.delete(f"/api/v1/devices/{device['id']}", headers=owner).status_code == 204
    assert _send(first, new).status_code == 401
    refused, _ = _until(lambda: _send(second, new), lambda r: r.status_code == 401, WITHIN_S)
    assert refused.json()["code"] == "invalid_api_key"
