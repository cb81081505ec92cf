"""Shared fixtures: a store on each backend (PostgreSQL for real), an app and its client, factories."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from telemetra.api.app import create_app
from telemetra.settings import Settings
from telemetra.store import Store, store_from_url

PG_ADMIN_DSN = os.environ.get("TELEMETRA_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TEST_ADMIN_KEY = "test-admin-key-0123456789abcdefghij"


def _pg_dsn(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


def _run_sync(coro: Awaitable[Any]) -> Any:
    """Run a coroutine to completion on its own loop, in a thread (fixtures may run inside a loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> str:
    """A database migrated once; each test copies it (CREATE DATABASE ... TEMPLATE), which is fast."""
    name = f"telemetra_tpl_{os.getpid()}"

    async def build() -> None:
        await _pg_admin(f"DROP DATABASE IF EXISTS {name}")
        await _pg_admin(f"CREATE DATABASE {name}")
        store = store_from_url(_pg_dsn(name))
        await store.open()
        await store.migrate()
        await store.close()

    try:
        _run_sync(build())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is required at {PG_ADMIN_DSN} for these tests and is not usable: {exc}. "
            "`make test` starts it; see README.",
            pytrace=False,
        )
    yield name
    _run_sync(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def pg_database(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test; returns its DSN."""
    name = f"telemetra_t_{uuid.uuid4().hex[:12]}"
    _run_sync(_pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template}"))
    yield _pg_dsn(name)
    _run_sync(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _migrate(url: str) -> None:
    store = store_from_url(url)
    await store.migrate()
    await store.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """The URL of an empty, migrated SQLite database."""
    url = f"sqlite:///{tmp_path / 'telemetra.db'}"
    _run_sync(_migrate(url))
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty, migrated database on each backend in turn."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_database")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    the_store = store_from_url(database_url)
    await the_store.open()
    yield the_store
    await the_store.close()


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    return Settings(database_url=database_url, admin_key=TEST_ADMIN_KEY, _env_file=None, activity_flush_interval_s=3600)


@pytest.fixture
async def app(settings: Settings, store: Store) -> AsyncIterator[Any]:
    application = create_app(settings, store)
    async with application.router.lifespan_context(application):
        await application.state.services.keys.ensure_admin_key(settings.admin_key)
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"X-API-Key": TEST_ADMIN_KEY}


@pytest.fixture
def make_tenant(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Callable[..., Awaitable[dict]]:
    """Create a tenant through the API; returns {"tenant": {...}, "api_key": ..., "headers": {...}}."""

    async def _make(name: str | None = None) -> dict:
        resp = await client.post(
            "/api/v1/admin/tenants", headers=admin_headers, json={"name": name or f"tenant-{uuid.uuid4().hex[:8]}"}
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        body["headers"] = {"X-API-Key": body["api_key"]}
        return body

    return _make


@pytest.fixture
def make_device(client: httpx.AsyncClient) -> Callable[..., Awaitable[dict]]:
    """Register a device with a tenant's key; returns the device body plus "headers" for its key."""

    async def _make(tenant: dict, **fields: Any) -> dict:
        body = {"name": f"dev-{uuid.uuid4().hex[:8]}", **fields}
        resp = await client.post("/api/v1/devices/register", headers=tenant["headers"], json=body)
        assert resp.status_code == 201, resp.text
        device = resp.json()["device"]
        device["headers"] = {"X-API-Key": device["api_key"]}
        return device

    return _make


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the tests share (rate limits); each test uses a namespace of its own in it."""
    import redis

    url = os.environ.get("TELEMETRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is required at {url} for these tests and is not usable: {exc}. `make test` starts it; see README.",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A CA (``ca_file``, for clients to trust), and a server and a client certificate it signed for
    127.0.0.1, made once per run (``tests/certs.py``)."""
    from tests.certs import make_certificates

    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session", autouse=True)
def answers_as_documented(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The one hook: every answer the suite receives from Telemetra (the ASGI client, the servers of
    tests/servers.py) must be documented for its route and status and match the documented schema."""
    from tests.answers import AnswerChecker, install

    database = tmp_path_factory.mktemp("openapi") / "unused.db"  # the app is built, never started
    document = create_app(Settings(database_url=f"sqlite:///{database}", _env_file=None)).openapi()
    with install(AnswerChecker(document)):
        yield


@pytest.fixture(autouse=True)
def no_contradicting_answer() -> Iterator[None]:
    """Fail a test whose call received an answer contradicting the document, even if it swallowed the error."""
    from tests.answers import contradictions

    contradictions.clear()
    yield
    assert not contradictions, "answers contradict the OpenAPI document:\n" + "\n".join(contradictions[:10])


from tests.servers import server_factory  # noqa: E402,F401  (a fixture for every test module)
