"""Hardening: security headers, CORS off by default, header limits, no stack traces, admin routes closed."""

from __future__ import annotations

import logging
import re

import httpx
from fastapi.routing import APIRoute

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.conftest import TEST_ADMIN_KEY


async def test_every_answer_carries_the_security_headers(client, make_tenant) -> None:
    tenant = await make_tenant()
    answers = [
        await client.get("/health"),
        await client.get("/api/v1/devices"),
        await client.get("/api/v1/devices", headers=tenant["headers"]),
        await client.get("/nowhere"),
    ]

    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in answer.headers  # only over HTTPS
    # The interactive docs load Swagger UI's script: no script-blocking policy there.
    assert "Content-Security-Policy" not in (await client.get("/docs")).headers


async def test_cors_is_off_by_default(client) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = await client.options(
        "/api/v1/devices",
        headers={**origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-API-Key"},
    )
    plain = await client.get("/health", headers=origin)

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in plain.headers


async def test_cors_allows_only_the_configured_origins(store, database_url) -> None:
    settings = Settings(
        database_url=database_url, admin_key=TEST_ADMIN_KEY, _env_file=None, cors_origins="https://dash.example.com"
    )
    application = create_app(settings, store)
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as client:
            allowed = await client.options(
                "/api/v1/devices",
                headers={
                    "Origin": "https://dash.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "X-API-Key",
                },
            )
            other = await client.get("/health", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://dash.example.com"
    assert "access-control-allow-origin" not in other.headers


async def test_too_many_or_too_large_headers_get_431(client) -> None:
    many = {f"x-h{i}": "1" for i in range(101)}
    large = {"x-big": "a" * 20_000}

    for headers in (many, large):
        answer = await client.get("/health", headers=headers)
        assert answer.status_code == 431
        assert answer.json()["code"] == "headers_too_large" and answer.json()["error"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


async def test_an_unexpected_error_answers_500_without_a_trace(app, caplog) -> None:
    async def broken() -> None:
        raise RuntimeError("internal detail: /srv/telemetra/secret.conf line 3")

    app.router.routes.append(APIRoute("/broken", broken))
    caplog.set_level(logging.ERROR)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/broken")

    assert answer.status_code == 500
    assert answer.json() == {
        "error": "Internal Server Error",
        "code": "internal_error",
        "message": "An internal error occurred; it has been logged.",
    }
    assert "Traceback" not in answer.text and "secret.conf" not in answer.text
    assert "secret.conf" in caplog.text  # the operator gets the detail in the log


async def test_admin_routes_answer_only_to_the_admin_key(app, client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api/v1/admin")
        for method in item
    ]
    assert len(routes) >= 15

    for method, path in routes:
        for headers, status in (({}, 401), (tenant["headers"], 403), (device["headers"], 403)):
            answer = await client.request(method, path, headers=headers, json={})
            assert answer.status_code == status, (method, path, answer.text)
