"""What a database cannot hold, in the body of any route that stores it (devices, keys, tenants, rules,
channels, commands, desired state, credentials, watches, seeds 001, 003 and 004) or in an integer query
parameter, is refused on both backends: a 4xx JSON error, nothing stored. Before, PostgreSQL answered a NUL
in most of these strings with 500 (SQLite stored it), and both a number past an integer column with 500.

The routes are taken from the OpenAPI document: a route with a body and no entry in ``BODIES`` (nor among the
telemetry routes that ``test_poison_input`` covers) fails the sweep, so a new route has to be added here. Each
route's valid body is sent first (it must succeed, else its variants would prove nothing); then each variant
changes one thing: a NUL in one string or key (the body's, or a property of the schema the body left out),
or a number past any integer column in one integer.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.api.test_poison_input import _stored
from tests.conftest import TEST_ADMIN_KEY

NUL_TEXT = "a\x00b"
# Past PostgreSQL's integer (2**31 - 1) and bigint; 2**64 - 1 is the largest integer the JSON parser keeps as
# one; 10**20 and 1e300 arrive as doubles that pydantic takes as whole numbers.
HUGE_NUMBERS = (2**31, 2**63, 2**64 - 1, -(2**63) - 1, 10**20, 1e300)
HUGE_QUERY_NUMBERS = ("2147483648", "9223372036854775808", "99999999999999999999", "-9223372036854775809")
# Bodies of the telemetry routes (and their NUL, number and key checks) are test_poison_input's.
TELEMETRY_ROUTES = {
    ("POST", "/api/v1/devices/telemetry"),
    ("POST", "/api/v1/devices/telemetry/batch"),
    ("POST", "/api/v1/telemetry/batch"),
    ("POST", "/api/v1/devices/{device_id}/telemetry"),
    ("POST", "/message"),
}
PASSWORD = "password123"
USER_PASSWORD = "a person's password"
PUBLIC_HOST = "93.184.216.34"  # an address literal: no DNS lookup when the channel is created


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def _request(client: httpx.AsyncClient, method: str, url: str, **options: Any) -> httpx.Response:
    try:
        return await client.request(method, url, **options)
    except Exception as exc:  # noqa: BLE001  (the in-process transport raises what the app answered 500 for)
        return httpx.Response(500, text=f"{type(exc).__name__}: {exc}")


@dataclass
class World:
    """What the sweep's bodies and paths refer to."""

    client: httpx.AsyncClient
    tenant: dict
    device: dict
    channel_id: int = 0
    rule_id: int = 0
    token: str = ""
    user_id: int = 0
    user_email: str = ""
    csrf: str = ""

    @property
    def headers(self) -> dict[str, dict[str, str]]:
        return {
            "admin": {"X-API-Key": TEST_ADMIN_KEY},
            "tenant": self.tenant["headers"],
            "device": self.device["headers"],
            # A person signed in (the client keeps the session cookie) changing something sends the CSRF token.
            # The latest sign-in's token: the sweep's own POST /api/v1/session replaces the session.
            "session": {"X-CSRF-Token": self.client.cookies.get("telemetra_csrf") or self.csrf},
        }

    async def call(self, method: str, url: str, who: str, body: Any) -> httpx.Response:
        if who != "token":
            return await _request(self.client, method, url, json=body, headers=self.headers.get(who, {}))
        # A login costs a password hash (a third of a second): one, and another after the password changed.
        for _ in range(2):
            if not self.token:
                self.token = (await self.login()).json()["token"]
            answer = await _request(self.client, method, url, json=body, headers={"token": self.token})
            if answer.status_code != 401:
                return answer
            self.token = ""
        return answer

    async def login(self) -> httpx.Response:
        return await self.client.post("/auth/login", json={"device_id": self.device["id"], "password": PASSWORD})

    async def new_key_id(self) -> int:
        answer = await self.client.post("/api/v1/keys", json={"name": "to rotate"}, headers=self.tenant["headers"])
        return answer.json()["key"]["id"]

    async def new_command_id(self) -> str:
        answer = await self.client.post(
            f"/api/v1/devices/{self.device['id']}/commands", json={"name": "reboot"}, headers=self.tenant["headers"]
        )
        return answer.json()["command"]["id"]


@dataclass
class Route:
    body: Callable[[World], Any]
    who: str = "tenant"
    # Where any JSON number is a value the route keeps as sent (telemetry, free-form documents; "": the whole
    # body): no integer column there, so no number is out of range. Elsewhere every integer of the body is one the schema
    # declares an integer (a float field's value is written as a float: a huge double is a valid one).
    free_numbers: tuple[str, ...] = ()
    more_bodies: list[Callable[[World], Any]] = field(default_factory=list)
    # The valid body's answer when not a 2xx (its variants must still be refused before it).
    base_status: int | None = None


def _rule(world: World) -> dict:
    return {
        "name": _uid("rule"),
        "key": "temperature",
        "severity": "major",
        "condition": {"type": "zscore", "k": 3.0, "window": 10},
        "clear": {"type": "threshold", "op": "<", "value": 75.0},
        "selector": {"device_ids": [world.device["id"]], "device_type": "sensor"},
        "channels": [world.channel_id],
        "enabled": True,
    }


BODIES: dict[tuple[str, str], Route] = {
    ("POST", "/api/v1/admin/tenants"): Route(lambda w: {"name": _uid("tenant")}, "admin"),
    ("PUT", "/api/v1/admin/tenants/{tenant_id}"): Route(lambda w: {"retention_days": 365}, "admin"),
    ("POST", "/api/v1/admin/tenants/{tenant_id}/keys"): Route(
        lambda w: {"scope": "ingest", "name": "gateway", "expires_at": "2030-01-01T00:00:00Z"}, "admin"
    ),
    ("PUT", "/api/v1/admin/devices/{device_id}"): Route(
        lambda w: {
            "name": _uid("device"),
            "description": "d",
            "device_type": "sensor",
            "status": "active",
            "location": "l",
            "firmware_version": "1.0",
            "hardware_version": "2.0",
            "offline_after_s": 60,
        },
        "admin",
    ),
    ("PUT", "/api/v1/admin/tenants/{tenant_id}/rate-limits"): Route(
        lambda w: {
            "device": "60/minute",
            "device_telemetry": "100/minute",
            "tenant": "600/minute",
            "batch": "10/minute",
        },
        "admin",
    ),
    ("PUT", "/api/v1/admin/devices/{device_id}/rate-limits"): Route(
        lambda w: {"device": "60/minute", "device_telemetry": "100/minute", "batch": "10/minute"}, "admin"
    ),
    ("POST", "/api/v1/devices/register"): Route(
        lambda w: {
            "id": _uid("dev"),
            "name": _uid("device"),
            "description": "d",
            "device_type": "sensor",
            "location": "l",
            "firmware_version": "1.0",
            "hardware_version": "2.0",
            "password": PASSWORD,
        }
    ),
    ("PUT", "/api/v1/devices/config"): Route(
        lambda w: {
            "status": "active",
            "location": "l",
            "firmware_version": "1.0",
            "hardware_version": "2.0",
            "offline_after_s": 60,
            "sampling": {"every_s": 30, "mode": "fast", "ports": ["a", 1]},
        },
        "device",
        free_numbers=("sampling",),
    ),
    ("POST", "/api/v1/devices/commands/{command_id}/ack"): Route(
        lambda w: {"status": "succeeded", "result": {"note": "done", "uptime_s": 3, "log": ["ok"]}},
        "device",
        free_numbers=("result",),
    ),
    ("PUT", "/api/v1/devices/{device_id}/credentials"): Route(lambda w: {"password": PASSWORD}),
    ("PATCH", "/api/v1/devices/{device_id}"): Route(
        lambda w: {
            "name": _uid("device"),
            "description": "d",
            "type": "sensor",
            "status": "active",
            "location": "l",
            "metadata": {"floor": 2, "tags": ["a"]},
        },
        free_numbers=("metadata",),
    ),
    # The device's old key keeps working (a day's grace): the sweep's device routes still use it.
    ("POST", "/api/v1/devices/{device_id}/key/rotate"): Route(
        lambda w: {"grace_s": 86_400, "expires_at": "2030-01-01T00:00:00Z"}
    ),
    ("POST", "/api/v1/devices/{device_id}/commands"): Route(
        lambda w: {"name": "reboot", "params": {"mode": "soft", "delay_s": 5, "steps": ["a"]}, "ttl_s": 60},
        free_numbers=("params",),
    ),
    ("PUT", "/api/v1/devices/{device_id}/desired"): Route(
        lambda w: {"state": {"mode": "eco", "sampling_s": 30, "tags": ["x"]}}, free_numbers=("state",)
    ),
    ("POST", "/api/v1/keys"): Route(lambda w: {"scope": "ingest", "name": "gw", "expires_at": "2030-01-01T00:00:00Z"}),
    ("POST", "/api/v1/keys/{key_id}/rotate"): Route(lambda w: {"grace_s": 60, "expires_at": "2030-01-01T00:00:00Z"}),
    # No broker in this test: a valid order is answered 503 (no transport), after the body was read.
    ("POST", "/send"): Route(lambda w: {"device_id": w.device["id"], "switch": True}, base_status=503),
    ("POST", "/api/register-device"): Route(lambda w: {"deviceId": w.device["id"]}),
    ("POST", "/api/v1/users"): Route(
        lambda w: {"email": f"{_uid('u')}@example.com", "name": "N", "role": "viewer", "password": USER_PASSWORD}
    ),
    ("PATCH", "/api/v1/users/{user_id}"): Route(lambda w: {"name": _uid("name"), "role": "viewer", "disabled": False}),
    ("POST", "/api/v1/session"): Route(lambda w: {"email": w.user_email, "password": USER_PASSWORD}, "none"),
    ("PUT", "/api/v1/session/password"): Route(
        lambda w: {"current_password": USER_PASSWORD, "new_password": USER_PASSWORD}, "session"
    ),
    ("POST", "/auth/login"): Route(lambda w: {"device_id": w.device["id"], "password": PASSWORD}, "none"),
    ("POST", "/data"): Route(
        lambda w: {
            "machine_id": 1,
            "timestamp": "2026-01-01T00:00:00Z",
            "acceleration_x": 1.2,
            "acceleration_y": 0.5,
            "acceleration_z": -9.81,
            "repetitions": 10,
            "series_time": 30.5,
            "rest_time": 60.0,
            "note": "ok",
        },
        "token",
        free_numbers=("",),
    ),
    ("POST", "/api/v1/rules"): Route(
        _rule, more_bodies=[lambda w: {"name": _uid("rule"), "condition": {"type": "no_data", "seconds": 600.0}}]
    ),
    ("PUT", "/api/v1/rules/{rule_id}"): Route(_rule),
    ("POST", "/api/v1/channels"): Route(
        lambda w: {
            "name": _uid("hook"),
            "kind": "webhook",
            "config": {"url": f"https://{PUBLIC_HOST}/hook", "secret": "s3cret", "timeout_s": 5.0},
        },
        more_bodies=[
            lambda w: {
                "name": _uid("mail"),
                "kind": "email",
                "config": {
                    "host": PUBLIC_HOST,
                    "port": 587,
                    "security": "starttls",
                    "username": "alerts",
                    "password": "pw",
                    "sender": "alerts@example.com",
                    "recipients": ["ops@example.com"],
                },
            }
        ],
    ),
}


def _resolve(schema: dict, components: dict) -> dict:
    ref = schema.get("$ref")
    return components.get(ref.rsplit("/", 1)[-1], {}) if ref else schema


def _types(schema: dict, components: dict) -> set[str]:
    schema = _resolve(schema, components)
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _types(option, components)
    return found


def _with(doc: Any, path: tuple, value: Any) -> Any:
    """A copy of ``doc`` with the value at ``path`` replaced (or added)."""
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = _with(doc.get(path[0]) if isinstance(doc, dict) else doc[path[0]], path[1:], value)
    return copy


def _renamed(doc: dict, path: tuple, key: str) -> Any:
    """A copy of ``doc`` whose object at ``path`` has its key ``key`` renamed with a NUL in it."""
    inner = doc
    for part in path:
        inner = inner[part]
    return _with(doc, path, {(k + "\x00" if k == key else k): v for k, v in inner.items()})


def _variants(body: Any, schema: dict, components: dict, free_numbers: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(what changed, body): a NUL in each string and key, a huge number in each integer."""

    def walk(node: Any, path: tuple) -> Iterator[tuple[str, Any]]:
        where = ".".join(str(p) for p in path)
        if isinstance(node, str):
            yield where, _with(body, path, NUL_TEXT)
        elif isinstance(node, int) and not isinstance(node, bool):
            if not any(where == free or where.startswith(free + ".") or free == "" for free in free_numbers):
                for number in HUGE_NUMBERS:
                    yield f"{where}={number}", _with(body, path, number)
        elif isinstance(node, dict):
            for key, value in node.items():
                if path:  # a top-level key is a field name: the models refuse an unknown one
                    yield f"{where}.<key {key}>", _renamed(body, path, key)
                yield from walk(value, (*path, key))
            if path:
                yield f"{where}.<new>", _with(body, (*path, "added"), {"deep": [NUL_TEXT]})
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*path, index))

    yield from walk(body, ())
    properties = _resolve(schema, components).get("properties", {})
    for name, prop in properties.items():
        if isinstance(body, dict) and name not in body:
            types = _types(prop, components)
            if "string" in types:
                yield f"{name} (absent from the body)", {**body, name: NUL_TEXT}
            if "integer" in types:
                for number in HUGE_NUMBERS:
                    yield f"{name}={number} (absent from the body)", {**body, name: number}


async def _url(world: World, path: str) -> str:
    values = {
        "tenant_id": world.tenant["tenant"]["id"],
        "device_id": world.device["id"],
        "rule_id": world.rule_id,
        "user_id": world.user_id,
    }
    for name in re.findall(r"\{([^}]+)\}", path):
        if name == "key_id":
            value: Any = await world.new_key_id()
        elif name == "command_id":
            value = await world.new_command_id()
        else:
            value = values[name]
        path = path.replace("{" + name + "}", str(value))
    return path


async def _snapshot(world: World) -> list[Any]:
    """Everything the sweep's routes could have stored, as the API shows it."""
    tenant, device, admin = world.headers["tenant"], world.device["id"], world.headers["admin"]
    tenant_id = world.tenant["tenant"]["id"]
    reads = [
        ("/api/v1/devices", tenant),
        ("/api/v1/keys", tenant),
        ("/api/v1/rules", tenant),
        ("/api/v1/channels", tenant),
        (f"/api/v1/devices/{device}/commands", tenant),
        (f"/api/v1/devices/{device}/state", tenant),
        ("/api/devices", tenant),
        ("/api/v1/admin/tenants", admin),
        ("/api/v1/admin/devices?per_page=100", admin),
        (f"/api/v1/admin/tenants/{tenant_id}/keys", admin),
        (f"/api/v1/admin/tenants/{tenant_id}/rate-limits", admin),
        (f"/api/v1/admin/devices/{device}/rate-limits", admin),
    ]
    shots = []
    for url, headers in reads:
        answer = await world.client.get(url, headers=headers)
        assert answer.status_code == 200, (url, answer.text)
        shots.append((url, answer.json()))
    return shots


async def _world(client: httpx.AsyncClient, make_tenant, make_device) -> World:
    tenant = await make_tenant()
    world = World(client, tenant, await make_device(tenant, id=_uid("dev"), password=PASSWORD))
    channel = await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={"name": "base", "kind": "webhook", "config": {"url": f"https://{PUBLIC_HOST}/hook"}},
    )
    world.channel_id = channel.json()["channel"]["id"]
    rule = await client.post("/api/v1/rules", headers=tenant["headers"], json=_rule(world))
    world.rule_id = rule.json()["rule"]["id"]
    world.user_email = f"{_uid('person')}@example.com"
    user = await client.post(
        "/api/v1/users",
        headers=tenant["headers"],
        json={"email": world.user_email, "name": "Person", "role": "viewer", "password": USER_PASSWORD},
    )
    world.user_id = user.json()["user"]["id"]
    signed_in = await client.post("/api/v1/session", json={"email": world.user_email, "password": USER_PASSWORD})
    world.csrf = signed_in.json()["csrf_token"]
    return world


def _refusal(answer: httpx.Response) -> str | None:
    """None when ``answer`` is a 4xx with our JSON error, else what is wrong with it."""
    if not 400 <= answer.status_code < 500:
        return f"{answer.status_code} {answer.text[:200]}"
    try:
        body = answer.json()
    except ValueError:
        return f"{answer.status_code} not JSON: {answer.text[:200]}"
    if not {"error", "code", "message"} <= set(body):
        return f"{answer.status_code} {body}"
    return None


async def test_every_stored_body_refuses_what_the_database_cannot_hold(
    client, app, store, make_tenant, make_device
) -> None:
    world = await _world(client, make_tenant, make_device)
    document = app.openapi()
    components = document.get("components", {}).get("schemas", {})
    failures: list[tuple] = []
    swept = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None or (method.upper(), path) in TELEMETRY_ROUTES:
                continue
            route = BODIES.get((method.upper(), path))
            assert route is not None, f"{method.upper()} {path} takes a body: add it to BODIES"
            swept.add((method.upper(), path))
            schema = content.get("schema", {})
            for make_body in [route.body, *route.more_bodies]:
                base = await world.call(method.upper(), await _url(world, path), route.who, make_body(world))
                assert 200 <= base.status_code < 300 or base.status_code == route.base_status, (method, path, base.text)
                body = make_body(world)
                url = await _url(world, path)
                before = await _snapshot(world)
                for what, variant in _variants(body, schema, components, route.free_numbers):
                    problem = _refusal(await world.call(method.upper(), url, route.who, variant))
                    if problem is not None:
                        failures.append((method.upper(), path, what, problem))
                if await _snapshot(world) != before:
                    failures.append((method.upper(), path, "something was stored"))
    assert swept == set(BODIES), set(BODIES) - swept
    assert (await world.login()).status_code == 200  # the password is the one set, refused ones changed nothing
    assert await _stored(store) == 1  # the valid /data message only
    assert not failures, "\n".join(map(str, failures))


async def test_a_nul_names_its_field_and_code(client, make_tenant, make_device) -> None:
    """The answer says where the NUL is, as the telemetry routes do."""
    tenant = await make_tenant()
    device = await make_device(tenant, id="named")
    cases = [
        ("POST", "/api/v1/devices/register", {"name": "x\x00"}, "invalid_string", "'name'"),
        ("PUT", "/api/v1/devices/named/desired", {"state": {"a": [{"b": "\x00"}]}}, "invalid_string", "'state.a.0.b'"),
        (
            "POST",
            "/api/v1/devices/named/commands",
            {"name": "reboot", "params": {"k\x00": 1}},
            "invalid_key",
            "'params'",
        ),
        ("PUT", "/api/v1/devices/config", {"sampling": {"mode": "\x00"}}, "invalid_string", "'sampling.mode'"),
    ]
    for method, url, body, code, where in cases:
        headers = device["headers"] if url.endswith("/config") else tenant["headers"]
        answer = await _request(client, method, url, json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == code and where in answer.json()["message"], answer.text


async def test_a_huge_number_in_any_integer_query_parameter_is_refused(client, app, make_tenant, make_device) -> None:
    """`offset` of a device's commands had no bound: 99999999999999999999 reached the database (500)."""
    tenant = await make_tenant()
    device = await make_device(tenant, id="queried")
    failures = []
    for path, operations in app.openapi()["paths"].items():
        url = re.sub(r"\{[a-z_]*device_id\}|\{object_id\}", "queried", path)
        url = re.sub(r"\{[^}]+\}", "1", url)
        headers = {"X-API-Key": TEST_ADMIN_KEY} if path.startswith("/api/v1/admin") else tenant["headers"]
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query" or "integer" not in _types(parameter["schema"], {}):
                    continue
                for number in HUGE_QUERY_NUMBERS:
                    answers = [
                        await _request(client, method.upper(), f"{url}?{parameter['name']}={number}", headers=who)
                        for who in (headers, device["headers"])
                    ]
                    problems = [_refusal(answer) for answer in answers]
                    if any(problems) or not any(answer.status_code == 422 for answer in answers):
                        failures.append(
                            (method, path, parameter["name"], number, problems, [a.status_code for a in answers])
                        )
    assert not failures, "\n".join(map(str, failures))


async def test_a_nul_in_any_path_parameter_is_a_4xx(client, app, make_tenant, make_device) -> None:
    """Device ids with a NUL name no device (the stores look none up); a command id with one reached
    PostgreSQL (500)."""
    world = await _world(client, make_tenant, make_device)
    failures = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            texts = [p["name"] for p in parameters if "string" in _types(p["schema"], {})]
            route = BODIES.get((method.upper(), path))
            body = route.body(world) if route else {"data": {"t": 1}} if method in ("post", "put") else None
            for poisoned in texts:
                url = path
                for name in (p["name"] for p in parameters):
                    value = "a%00b" if name == poisoned else world.device["id"] if name in texts else "1"
                    url = url.replace("{" + name + "}", value)
                for who in ("admin", "tenant", "device"):
                    problem = _refusal(await world.call(method.upper(), url, who, body))
                    if problem is not None:
                        failures.append((method.upper(), url, who, problem))
    assert not failures, "\n".join(map(str, failures))
    command = await world.new_command_id()
    for method, url, who in [
        ("GET", f"/api/v1/devices/{world.device['id']}/commands/{command}%00", "tenant"),
        ("POST", f"/api/v1/devices/commands/{command}%00/ack", "device"),
    ]:
        answer = await world.call(method, url, who, {"status": "received"})
        assert answer.status_code == 404 and answer.json()["code"] == "command_not_found", answer.text


async def test_a_broker_ack_with_a_nul_is_refused(client, app, make_tenant, make_device, caplog) -> None:
    """An ack over MQTT or NATS reaches no route: its result with a NUL failed PostgreSQL's write (an error out
    of the ack handler) and was stored on SQLite."""
    world = await _world(client, make_tenant, make_device)
    command = await world.new_command_id()
    doc = {"id": command, "status": "succeeded", "result": {"log": ["ok", "a\x00b"]}}
    caplog.set_level(logging.INFO, logger="telemetra.commands.service")
    await app.state.services.commands.handle_ack(world.device["id"], doc)
    assert "refused: 'result.log.1' contains the NUL character" in caplog.text
    answer = await client.get(
        f"/api/v1/devices/{world.device['id']}/commands/{command}", headers=world.tenant["headers"]
    )
    assert answer.json()["command"]["status"] == "queued", answer.text


async def test_a_time_the_database_cannot_hold_is_a_4xx(client, make_tenant) -> None:
    """A key's expiry that leaves Python's range once in UTC overflowed SQLite's conversion and PostgreSQL's
    encoder (500), and year 1 in UTC failed PostgreSQL's comparison with a naive time (500): the body's model
    bounds the years."""
    tenant = await make_tenant()
    keys = (await client.get("/api/v1/keys", headers=tenant["headers"])).json()["keys"]
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z", "1969-12-31"):
        answer = await _request(
            client, "POST", "/api/v1/keys", json={"name": "x", "expires_at": when}, headers=tenant["headers"]
        )
        assert answer.status_code == 422 and answer.json()["code"] == "validation_error", answer.text
        assert "expires_at" in answer.text
    assert (await client.get("/api/v1/keys", headers=tenant["headers"])).json()["keys"] == keys
