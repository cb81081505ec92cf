"""Schemathesis against our own OpenAPI schema, every operation, over the wire with valid credentials:
no 5xx, and every answer (status, content type, headers, body) matches what the schema documents."""

from __future__ import annotations

import uuid

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server

# Small per operation so that the whole run (~70 operations) stays within about two minutes on CI: 25 took
# three minutes on a slow day of the 2-core machine, with the whole suite at 16 of CI's 20 minutes.
MAX_EXAMPLES_PER_OPERATION = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
DEVICE_ROUTES = (
    "/api/v1/devices/status",
    "/api/v1/devices/telemetry",
    "/api/v1/devices/config",
    "/api/v1/devices/heartbeat",
)
PASSWORD = "fuzzing-password"


class Credentials:
    """The keys of one tenant and one of its devices; renewed when a fuzzed request revoked them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.renew()

    def renew(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            tenant = http.post(
                "/api/v1/admin/tenants",
                headers={"X-API-Key": TEST_ADMIN_KEY},
                json={"name": f"fuzz-{uuid.uuid4().hex[:8]}"},
            ).json()
            self.tenant = {"X-API-Key": tenant["api_key"]}
            device = http.post(
                "/api/v1/devices/register",
                headers=self.tenant,
                json={"name": "fuzzed", "id": f"fuzz-{uuid.uuid4().hex[:8]}", "password": PASSWORD},
            ).json()["device"]
            self.device = {"X-API-Key": device["api_key"]}
            self.device_id, self.tenant_name = device["id"], tenant["tenant"]["name"]
            token = http.post("/auth/login", json={"device_id": device["id"], "password": PASSWORD}).json()["token"]
            self.token = {"token": token}

    def for_path(self, path: str) -> dict[str, str]:
        if path.startswith("/api/v1/admin"):
            return {"X-API-Key": TEST_ADMIN_KEY}
        if path.startswith(DEVICE_ROUTES):
            return self.device
        if path.startswith("/data"):
            return self.token
        return self.tenant


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("fuzz") / "telemetra.db"
    server = Server(
        f"sqlite:///{database}",
        env={
            "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
            "TELEMETRA_RATE_LIMITS_ENABLED": "false",
            "TELEMETRA_LOGIN_FAILURES_PER_DEVICE": "100000/minute",
            "TELEMETRA_LOGIN_FAILURES_PER_IP": "100000/minute",
            "TELEMETRA_JWT_SECRET": "fuzzing-secret-" + "x" * 40,
            "TELEMETRA_LOG_LEVEL": "WARNING",
        },
    )
    yield server
    server.stop()
    assert "Traceback" not in server.stderr, server.stderr[-5000:]


@pytest.fixture(scope="module")
def credentials(fuzz_server) -> Credentials:
    return Credentials(fuzz_server.url)


def _fuzz(operation, base_url: str, credentials: Credentials) -> None:
    calls = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case) -> None:
        # Our credentials replace whatever key the generator invented: every operation is fuzzed past auth.
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("x-api-key", "token")}
        case.headers = {**headers, **credentials.for_path(case.path)}
        # Every other case names our real device (or tenant): random ids alone would only ever reach the 404s.
        nonlocal calls
        calls += 1
        if calls % 2 and case.path_parameters:
            for name, real in (
                ("device_id", credentials.device_id),
                ("object_id", credentials.device_id),
                ("client", credentials.tenant_name),
            ):
                if name in case.path_parameters:
                    case.path_parameters[name] = real
        with requests.Session() as session:
            response = case.call(base_url=base_url, session=session)
        if response.status_code == 401 and case.path != "/auth/login":
            credentials.renew()  # a fuzzed DELETE revoked our key, or a PUT changed the password
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_answers_as_documented(fuzz_server, credentials) -> None:
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz(operation, fuzz_server.url, credentials)
        except Exception as exc:  # noqa: BLE001  (collect every operation's failure, then report them all)
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 60
    assert not failures, "\n\n".join(failures)
