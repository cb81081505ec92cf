"""Seed 003's contract: a device logs in with its id and password and posts sensor data with the token."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from telemetra.log import RedactSecrets
from tests.test_secrets import _database_text

# The sensor object of seed 003's device script and of the original's test.
SENSOR_DATA = {
    "machine_id": 1,
    "timestamp": "2025-03-18T14:30:00Z",
    "acceleration_x": 1.2,
    "acceleration_y": 0.5,
    "acceleration_z": -9.81,
    "repetitions": 10,
    "series_time": 30.5,
    "rest_time": 60.0,
}
PASSWORD = "password123"


async def _device_with_password(client, make_tenant, make_device, device_id: str = "raspberry1"):
    tenant = await make_tenant()
    device = await make_device(tenant, id=device_id, password=PASSWORD)
    return tenant, device


async def test_the_seed_script_logs_in_and_its_data_is_stored(client, make_tenant, make_device) -> None:
    tenant, _ = await _device_with_password(client, make_tenant, make_device)

    auth = await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})
    assert auth.status_code == 200, auth.text
    token = auth.json()["token"]
    assert auth.json()["expires_in"] == 900
    # The script sends a naive utcnow().isoformat(): UTC.
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)  # utcnow(), not deprecated
    resp = await client.post(
        "/data",
        json={**SENSOR_DATA, "timestamp": now.isoformat()},
        headers={"token": token, "Content-Type": "application/json"},
    )

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"message": "Données reçues", "device": "raspberry1"}
    latest = (await client.get("/api/v1/devices/raspberry1/latest", headers=tenant["headers"])).json()["latest"]
    assert latest["machine_id"]["value"] == 1 and latest["acceleration_z"]["value"] == -9.81
    assert latest["rest_time"] == {"timestamp": now.isoformat() + "+00:00", "value": 60.0}


async def test_data_with_a_trailing_slash_and_a_bearer_token(client, make_tenant, make_device) -> None:
    tenant, _ = await _device_with_password(client, make_tenant, make_device)
    token = (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).json()["token"]

    slash = await client.post("/data/", json=SENSOR_DATA, headers={"token": token})
    bearer = await client.post(
        "/data",
        json={**SENSOR_DATA, "timestamp": "2025-03-18T14:31:00Z", "asymmetry": 0.1},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert slash.status_code == 200 and bearer.status_code == 200, (slash.text, bearer.text)
    series = (
        await client.get(
            "/api/v1/devices/raspberry1/telemetry?keys=repetitions,asymmetry&order=asc", headers=tenant["headers"]
        )
    ).json()["telemetry"]
    assert [p["value"] for p in series["repetitions"]] == [10, 10]
    assert [p["value"] for p in series["asymmetry"]] == [0.1]


async def test_wrong_unknown_or_unset_passwords_get_the_same_401(client, make_tenant, make_device) -> None:
    tenant, _ = await _device_with_password(client, make_tenant, make_device)
    await make_device(tenant, id="no-password")

    answers = [
        await client.post("/auth/login", json=body)
        for body in (
            {"device_id": "raspberry1", "password": "password124"},
            {"device_id": "nobody", "password": PASSWORD},
            {"device_id": "no-password", "password": PASSWORD},
        )
    ]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert {a.json()["code"] for a in answers} == {"invalid_credentials"}
    assert len({a.json()["message"] for a in answers}) == 1


async def test_repeated_guesses_from_a_new_address_are_refused_even_with_the_right_password(
    client, make_tenant, make_device
) -> None:
    await _device_with_password(client, make_tenant, make_device)
    for _ in range(5):  # TELEMETRA_LOGIN_FAILURES_PER_DEVICE: 5/minute from addresses it never logged in from
        assert (
            await client.post("/auth/login", json={"device_id": "raspberry1", "password": "guess-0000"})
        ).status_code == 401

    refused = await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})

    assert refused.status_code == 429
    assert refused.json()["error"] == "Too Many Requests" and refused.json()["code"] == "rate_limited"
    assert "TELEMETRA_LOGIN_FAILURES_PER_DEVICE" in refused.json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"


async def test_a_deleted_devices_token_does_not_fit_a_device_registered_again_under_its_id(
    client, store, make_tenant, make_device, admin_headers
) -> None:
    """The password version starts at 1 again for the new device (and SQLite may give it the same pk): the
    token must still name the deleted device's password, not one that happens to have the same version."""
    tenant, first = await _device_with_password(client, make_tenant, make_device)
    old = (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).json()["token"]
    assert (await client.post("/data", json=SENSOR_DATA, headers={"token": old})).status_code == 200

    deleted = await client.delete("/api/v1/admin/devices/raspberry1", headers=admin_headers)
    assert deleted.status_code == 200, deleted.text
    again = await make_device(tenant, id="raspberry1", password=PASSWORD)  # same id, tenant and password
    assert (await store.device_password((await store.get_device("raspberry1")).pk))[1] == 1

    refused = await client.post("/data", json=SENSOR_DATA, headers={"token": old})

    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    new = (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).json()["token"]
    resp = await client.post("/data", json=SENSOR_DATA, headers={"token": new})
    assert resp.status_code == 200 and again["id"] == first["id"]


async def test_a_password_change_revokes_earlier_tokens(client, make_tenant, make_device) -> None:
    tenant, _ = await _device_with_password(client, make_tenant, make_device)
    old = (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).json()["token"]

    changed = await client.put(
        "/api/v1/devices/raspberry1/credentials", headers=tenant["headers"], json={"password": "a new passphrase"}
    )
    assert changed.status_code == 200, changed.text

    refused = await client.post("/data", json=SENSOR_DATA, headers={"token": old})
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    assert (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).status_code == 401
    new = await client.post("/auth/login", json={"device_id": "raspberry1", "password": "a new passphrase"})
    assert (await client.post("/data", json=SENSOR_DATA, headers={"token": new.json()["token"]})).status_code == 200


async def test_only_the_devices_tenant_sets_its_password(client, make_tenant, make_device) -> None:
    await _device_with_password(client, make_tenant, make_device)
    other = await make_tenant()

    resp = await client.put(
        "/api/v1/devices/raspberry1/credentials", headers=other["headers"], json={"password": "taken over!"}
    )

    assert resp.status_code == 404 and resp.json()["code"] == "device_not_found"
    assert (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).status_code == 200


async def test_bad_tokens_and_bad_bodies_store_nothing(client, store, make_tenant, make_device) -> None:
    await _device_with_password(client, make_tenant, make_device)
    token = (await client.post("/auth/login", json={"device_id": "raspberry1", "password": PASSWORD})).json()["token"]
    head, payload, signature = token.split(".")

    answers = {
        "no token": await client.post("/data", json=SENSOR_DATA),
        "forged": await client.post(
            "/data", json=SENSOR_DATA, headers={"token": f"{head}.{payload}.{signature[:-4]}AAAA"}
        ),
        "garbage": await client.post("/data", json=SENSOR_DATA, headers={"token": "not-a-jwt"}),
        "missing field": await client.post("/data", json={"machine_id": 1}, headers={"token": token}),
        "wrong type": await client.post("/data", json={**SENSOR_DATA, "repetitions": "many"}, headers={"token": token}),
        "too old": await client.post(
            "/data", json={**SENSOR_DATA, "timestamp": "1999-01-01T00:00:00Z"}, headers={"token": token}
        ),
    }

    assert {k: r.status_code for k, r in answers.items()} == {
        "no token": 401,
        "forged": 401,
        "garbage": 401,
        "missing field": 422,
        "wrong type": 422,
        "too old": 422,
    }
    assert answers["no token"].json()["code"] == "missing_token"
    assert answers["forged"].json()["code"] == "invalid_token"
    assert all(set(r.json()) >= {"error", "code", "message"} for r in answers.values())
    assert (await store.list_messages(limit=1))[1] == 0


async def test_a_password_is_validated_at_registration_and_never_kept(
    client, app, store, database_url, make_tenant, make_device, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactSecrets())
    tenant = await make_tenant()
    short = await client.post(
        "/api/v1/devices/register", headers=tenant["headers"], json={"id": "pi-2", "name": "pi", "password": "short"}
    )
    assert short.status_code == 422
    assert (await client.get("/api/v1/devices/pi-2", headers=tenant["headers"])).status_code == 404

    await make_device(tenant, id="pi-3", password=" spaced passphrase ")
    login = await client.post("/auth/login", json={"device_id": "pi-3", "password": " spaced passphrase "})
    token = login.json()["token"]
    await client.post("/data", json=SENSOR_DATA, headers={"token": token})
    await client.post("/data?token=" + token, json=SENSOR_DATA)

    assert login.status_code == 200
    stored, logged = await _database_text(store, database_url), caplog.text
    assert "spaced passphrase" not in stored and "spaced passphrase" not in logged
    assert token not in logged and token.split(".")[2] not in logged
