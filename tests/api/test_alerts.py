"""Rules raise one alert per (rule, device), dedup while it lasts, clear with hysteresis, and can be acknowledged."""

from __future__ import annotations

import asyncio
import inspect
from datetime import timedelta

import pytest

from telemetra.api.alert_schemas import (
    AlertAnswer,
    AlertList,
    ChannelAnswer,
    ChannelCreated,
    ChannelList,
    DeliveryList,
    RuleAnswer,
    RuleList,
)
from telemetra.domain.timeparse import utcnow


@pytest.fixture
def settings(settings):
    # A channel below points at 127.0.0.1, which notifications reach only when the operator allows it.
    return settings.model_copy(update={"outbound_allow": "127.0.0.1/32"})


async def eventually(check, timeout_s: float = 10.0):
    """Rules run after the commit that answered the request: poll until ``check()`` (a function or a
    coroutine function) returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def send(client, tenant, device, **data) -> None:
    resp = await client.post(
        f"/api/v1/devices/{device['id']}/telemetry", headers=tenant["headers"], json={"data": data}
    )
    assert resp.status_code == 201, resp.text


async def alerts(client, tenant, **params) -> list[dict]:
    resp = await client.get("/api/v1/alerts", headers=tenant["headers"], params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["alerts"]


async def rule(client, tenant, **body) -> dict:
    resp = await client.post("/api/v1/rules", headers=tenant["headers"], json={"name": "r", **body})
    assert resp.status_code == 201, resp.text
    return resp.json()["rule"]


async def test_a_threshold_rule_with_hysteresis(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    boiler = await make_device(tenant, device_type="boiler")
    other = await make_device(tenant, device_type="meter")
    made = await rule(
        client,
        tenant,
        name="too hot",
        key="temperature",
        severity="major",
        condition={"type": "threshold", "op": ">", "value": 30},
        clear={"type": "threshold", "op": "<", "value": 28},
        selector={"device_type": "boiler"},
    )
    assert made["condition"] == {"type": "threshold", "op": ">", "value": 30.0}

    await send(client, tenant, boiler, temperature=25)
    await send(client, tenant, other, temperature=99)  # not selected: a meter
    for value in (31, 32, 33, 29):  # 29 is between the two thresholds: still too hot
        await send(client, tenant, boiler, temperature=value)

    async def counted():
        found = await alerts(client, tenant, status="active")
        return found if found and found[0]["count"] == 3 else None

    (alert,) = await eventually(counted)
    assert (alert["device_id"], alert["severity"], alert["first_value"], alert["last_value"]) == (
        boiler["id"],
        "major",
        31.0,
        33.0,
    )

    acked = await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=tenant["headers"])
    assert acked.json()["alert"]["status"] == "acknowledged" and acked.json()["alert"]["acknowledged_at"]
    await send(client, tenant, boiler, temperature=27)
    cleared = await eventually(lambda: alerts(client, tenant, status="cleared"))
    assert cleared[0]["id"] == alert["id"] and cleared[0]["cleared_at"]

    await send(client, tenant, boiler, temperature=40)  # a new episode: a new alert
    fresh = await eventually(lambda: alerts(client, tenant, status="active"))
    assert fresh[0]["id"] != alert["id"] and fresh[0]["count"] == 1
    assert len(await alerts(client, tenant)) == 2
    assert len(await alerts(client, tenant, device=other["id"])) == 0


async def test_zscore_and_rate_rules(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    await rule(client, tenant, name="odd", key="load", condition={"type": "zscore", "k": 3, "window": 20})
    await rule(
        client, tenant, name="jump", key="level", condition={"type": "rate", "max_per_s": 1.0}, severity="critical"
    )
    base = utcnow() - timedelta(minutes=30)
    for i in range(20):
        resp = await client.post(
            f"/api/v1/devices/{device['id']}/telemetry",
            headers=tenant["headers"],
            json={
                "data": {"load": 10 + (i % 3), "level": 100 + i},
                "timestamp": (base + timedelta(seconds=60 * i)).isoformat(),
            },
        )
        assert resp.status_code == 201
    assert await alerts(client, tenant) == []  # ordinary values and a slow climb (1/60 per s)
    resp = await client.post(
        f"/api/v1/devices/{device['id']}/telemetry",
        headers=tenant["headers"],
        json={"data": {"load": 30, "level": 500}, "timestamp": (base + timedelta(seconds=60 * 20)).isoformat()},
    )
    assert resp.status_code == 201
    found = await eventually(lambda: alerts(client, tenant, status="active"))
    rules_fired = {a["rule"] for a in found}
    assert rules_fired == {"odd", "jump"} and {a["severity"] for a in found} == {"warning", "critical"}


async def test_zscores_sharing_a_window_fire_each_at_its_own_bound(client, make_tenant, make_device) -> None:
    """A warning at 2 and a critical at 6 standard deviations over the same 20 values look at one window per
    device; each fires at its own bound, and a member limited to one device leaves the other alone."""
    tenant = await make_tenant()
    watched, other = await make_device(tenant), await make_device(tenant)
    window = {"type": "zscore", "k": 2, "window": 20}
    await rule(client, tenant, name="warn", key="load", condition=window, severity="warning")
    await rule(client, tenant, name="crit", key="load", condition={**window, "k": 6}, severity="critical")
    await rule(
        client,
        tenant,
        name="only",
        key="load",
        condition={**window, "k": 2.5},
        severity="minor",
        selector={"device_ids": [watched["id"]]},
    )
    base = utcnow() - timedelta(minutes=30)

    async def post(device, i, load) -> None:
        resp = await client.post(
            f"/api/v1/devices/{device['id']}/telemetry",
            headers=tenant["headers"],
            json={"data": {"load": load}, "timestamp": (base + timedelta(seconds=60 * i)).isoformat()},
        )
        assert resp.status_code == 201, resp.text

    for i in range(20):  # mean 11, population standard deviation about 0.82
        for device in (watched, other):
            await post(device, i, 10 + (i % 3))
    await post(other, 20, 14)  # 3.7 sd: above the warning, below the critical
    found = await eventually(lambda: alerts(client, tenant, status="active"))
    assert {(a["rule"], a["device_id"]) for a in found} == {("warn", other["id"])}
    await post(watched, 20, 30)  # 23 sd: all three of the watched device's rules
    found = await eventually(lambda: _at_least(4, alerts(client, tenant, status="active")))
    assert {(a["rule"], a["device_id"]) for a in found} == {
        ("warn", other["id"]),
        ("warn", watched["id"]),
        ("crit", watched["id"]),
        ("only", watched["id"]),
    }


async def _at_least(count: int, answer) -> list[dict] | None:
    found = await answer
    return found if len(found) >= count else None


async def test_no_data_fires_for_a_silent_device_and_clears_on_data(app, client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    silent = await make_device(tenant)
    await rule(client, tenant, name="quiet", condition={"type": "no_data", "seconds": 60}, severity="minor")
    engine = app.state.services.alerts.engine

    await engine.check_silence(utcnow())
    assert await alerts(client, tenant) == []  # just created: not silent for a minute yet
    await engine.check_silence(utcnow() + timedelta(seconds=61))
    await engine.check_silence(utcnow() + timedelta(seconds=120))  # still silent: the same alert
    (alert,) = await alerts(client, tenant, status="active")
    assert alert["device_id"] == silent["id"] and "no data" in alert["message"]

    await send(client, tenant, silent, temperature=20)
    await eventually(lambda: alerts(client, tenant, status="cleared"))


@pytest.mark.parametrize(
    "body, code",
    [
        ({"name": "x", "condition": {"type": "threshold", "op": ">", "value": 1}}, "invalid_rule"),  # no key
        ({"name": "x", "key": "t", "condition": {"type": "threshold", "op": "=>", "value": 1}}, "validation_error"),
        ({"name": "x", "key": "t", "condition": {"type": "zscore", "k": 2}}, "invalid_rule"),
        ({"name": "x", "key": "t", "condition": {"type": "range", "low": 5, "high": 1}}, "invalid_rule"),
        (
            {"name": "x", "key": "t", "condition": {"type": "threshold", "op": ">", "value": 1}, "channels": [999]},
            "invalid_rule",
        ),
    ],
)
async def test_bad_rules_are_422(client, make_tenant, body, code) -> None:
    tenant = await make_tenant()
    resp = await client.post("/api/v1/rules", headers=tenant["headers"], json=body)
    assert resp.status_code == 422 and resp.json()["code"] == code, resp.text
    assert (await client.get("/api/v1/rules", headers=tenant["headers"])).json()["rules"] == []


async def test_a_rule_naming_a_device_it_can_never_watch_is_422(client, make_tenant, make_device) -> None:
    """Another tenant's device and one that does not exist were stored, and the rule silently never fired: both
    are refused alike, naming the field's path, on create and on replace; the tenant's own devices are taken."""
    tenant, other = await make_tenant(), await make_tenant()
    mine, theirs = await make_device(tenant), await make_device(other)
    condition = {"type": "threshold", "op": ">", "value": 1}
    answers = {}
    for name, stranger in (("other tenant", theirs["id"]), ("missing", "no-such-device")):
        body = {"name": "x", "key": "t", "condition": condition, "selector": {"device_ids": [mine["id"], stranger]}}
        resp = await client.post("/api/v1/rules", headers=tenant["headers"], json=body)
        assert resp.status_code == 422 and resp.json()["code"] == "invalid_rule", resp.text
        assert "selector.device_ids.1" in resp.json()["message"], resp.text
        assert resp.json()["details"][0]["loc"] == ["selector", "device_ids", "1"], resp.text
        answers[name] = resp.json()["message"].replace(stranger, "<id>")
    assert answers["other tenant"] == answers["missing"]  # the same words: nothing tells one from the other
    assert (await client.get("/api/v1/rules", headers=tenant["headers"])).json()["rules"] == []

    made = await rule(client, tenant, key="t", condition=condition, selector={"device_ids": [mine["id"]]})
    body = {"name": "r", "key": "t", "condition": condition, "selector": {"device_ids": [theirs["id"]]}}
    resp = await client.put(f"/api/v1/rules/{made['id']}", headers=tenant["headers"], json=body)
    assert resp.status_code == 422 and "selector.device_ids.0" in resp.json()["message"], resp.text
    kept = (await client.get(f"/api/v1/rules/{made['id']}", headers=tenant["headers"])).json()["rule"]
    assert kept["selector"]["device_ids"] == [mine["id"]]


async def test_an_unknown_channel_names_its_path(client, make_tenant) -> None:
    tenant = await make_tenant()
    body = {"name": "x", "key": "t", "condition": {"type": "threshold", "op": ">", "value": 1}, "channels": [999]}
    resp = await client.post("/api/v1/rules", headers=tenant["headers"], json=body)
    assert resp.status_code == 422 and "channels.0: channel 999" in resp.json()["message"], resp.text


async def test_rules_and_alerts_are_the_tenants_own(client, make_tenant, make_device) -> None:
    owner, other = await make_tenant(), await make_tenant()
    device = await make_device(owner)
    made = await rule(client, owner, key="t", condition={"type": "threshold", "op": ">", "value": 1})
    await send(client, owner, device, t=5)
    (alert,) = await eventually(lambda: alerts(client, owner))
    h = other["headers"]
    assert (await client.get(f"/api/v1/rules/{made['id']}", headers=h)).status_code == 404
    assert (
        await client.put(
            f"/api/v1/rules/{made['id']}",
            headers=h,
            json={"name": "r", "key": "t", "condition": {"type": "threshold", "op": ">", "value": 9}},
        )
    ).status_code == 404
    assert (await client.delete(f"/api/v1/rules/{made['id']}", headers=h)).status_code == 404
    assert (await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=h)).status_code == 404
    assert await alerts(client, other) == []
    assert (await client.get("/api/v1/alerts", headers=device["headers"])).status_code == 403
    assert (await client.delete(f"/api/v1/rules/{made['id']}", headers=owner["headers"])).status_code == 204


async def test_answers_match_their_documented_shapes(app, client, make_tenant, make_device) -> None:
    """The OpenAPI schema documents these answers with models; the real answers must validate against them."""
    tenant = await make_tenant()
    device = await make_device(tenant)
    h = tenant["headers"]
    created = await client.post(
        "/api/v1/channels",
        headers=h,
        json={"name": "hook", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/nowhere", "timeout_s": 1}},
    )
    ChannelCreated.model_validate(created.json())
    channel = created.json()["channel"]
    ChannelAnswer.model_validate((await client.get(f"/api/v1/channels/{channel['id']}", headers=h)).json())
    ChannelList.model_validate((await client.get("/api/v1/channels", headers=h)).json())
    made = await rule(
        client,
        tenant,
        key="t",
        channels=[channel["id"]],
        selector={"device_ids": [device["id"]]},
        condition={"type": "range", "low": 0, "high": 1},
        clear={"type": "threshold", "op": "<", "value": 1},
    )
    RuleAnswer.model_validate((await client.get(f"/api/v1/rules/{made['id']}", headers=h)).json())
    await rule(client, tenant, name="z", key="t", condition={"type": "zscore", "k": 2, "window_s": 600})
    RuleList.model_validate((await client.get("/api/v1/rules", headers=h)).json())
    await send(client, tenant, device, t=5)
    (alert,) = await eventually(lambda: alerts(client, tenant))
    AlertList.model_validate((await client.get("/api/v1/alerts", headers=h)).json())
    AlertAnswer.model_validate((await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=h)).json())
    await app.state.dispatcher.deliver_due()
    found = (await client.get(f"/api/v1/channels/{channel['id']}/deliveries", headers=h)).json()
    assert found["deliveries"], "the failed attempt is listed"
    DeliveryList.model_validate(found)


async def test_an_offline_rule_follows_the_online_status(app, client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device, other = await make_device(tenant, device_type="pump"), await make_device(tenant, device_type="meter")
    await rule(
        client,
        tenant,
        name="pump down",
        severity="critical",
        condition={"type": "offline"},
        selector={"device_type": "pump"},
    )
    for one in (device, other):
        resp = await client.put("/api/v1/devices/config", headers=one["headers"], json={"offline_after_s": 1})
        assert resp.status_code == 200, resp.text
        await client.post("/api/v1/devices/heartbeat", headers=one["headers"])
    presence = app.state.services.presence
    await presence.check()  # both online
    assert await alerts(client, tenant) == []

    await asyncio.sleep(1.2)
    await presence.check()  # both silent past their offline_after_s: offline, only the pump is watched
    # (The app's own monitor may have announced it a moment earlier: the same rules hear it.)
    (alert,) = await eventually(lambda: alerts(client, tenant, status="active"))
    assert (alert["device_id"], alert["severity"], alert["rule"]) == (device["id"], "critical", "pump down")
    assert "offline" in alert["message"]

    await client.post("/api/v1/devices/heartbeat", headers=device["headers"])
    await presence.check()  # back
    (cleared,) = await eventually(lambda: alerts(client, tenant, status="cleared"))
    assert cleared["id"] == alert["id"]
