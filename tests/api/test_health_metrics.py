"""Open routes: /health, /metrics and the API docs need no key; /health is 503 without a database."""

from __future__ import annotations


async def test_open_routes(client) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy" and body["database"]["reachable"] is True and body["version"]
    assert body["uptime_s"] >= 0
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 200, path
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'telemetra_http_requests_total{method="GET",route="/health",status="200"}' in metrics.text


async def test_health_is_503_when_database_is_gone(client, store) -> None:
    await store.close()
    resp = await client.get("/health")
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert resp.json()["status"] == "unhealthy" and resp.json()["database"]["reachable"] is False


async def test_every_route_documents_its_errors(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            # Signing out answers 204 with or without a session: the one /api/ route that is never 401.
            if path.startswith("/api/") and (method, path) != ("delete", "/api/v1/session"):
                assert "401" in codes, (method, path)
            if "requestBody" in op:
                assert {"400", "415", "422"} <= codes, (method, path)
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
