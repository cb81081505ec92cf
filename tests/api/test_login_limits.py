"""Device login budgets hold under concurrency, and a guesser cannot lock the owner out.

Each test runs on both backends, with the counters in memory and in a real Redis. Each client address is
its own in-process client (`ASGITransport(client=...)`); how many passwords were checked is read from
`telemetra_login_password_checks_total`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from telemetra.registry.device_login import MAX_WAITING_CHECKS
from telemetra.registry.passwords import MAX_CONCURRENT_HASHES
from telemetra.settings import Settings
from tests.conftest import TEST_ADMIN_KEY

PASSWORD = "the owner's passphrase"
OWNER, ATTACKER, NEWCOMER = "198.51.100.7", "203.0.113.66", "192.0.2.9"


@pytest.fixture
def login_settings() -> dict[str, Any]:
    """Settings a test changes (through parametrize); by default the default budgets: 5/minute per device,
    30/minute per address."""
    return {}


@pytest.fixture(params=["memory", "redis"])
def settings(request: pytest.FixtureRequest, database_url: str, login_settings: dict[str, Any]) -> Any:
    """The login budgets counted in memory or in Redis."""
    shared: dict[str, Any] = dict(login_settings)
    if request.param == "redis":
        namespace = f"telemetra-test-{uuid.uuid4().hex[:12]}"
        url = request.getfixturevalue("redis_url")
        shared.update(redis_url=url, rate_limit_namespace=namespace)
        request.addfinalizer(lambda: _forget(url, namespace))
    return Settings(
        database_url=database_url, admin_key=TEST_ADMIN_KEY, _env_file=None, activity_flush_interval_s=3600, **shared
    )


def _forget(url: str, namespace: str) -> None:
    keys = redis.Redis.from_url(url)
    found = list(keys.scan_iter(f"{namespace}:*"))
    if found:
        keys.delete(*found)


@pytest.fixture
async def from_address(app: Any) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """A client whose requests come from a given address."""
    clients: dict[str, httpx.AsyncClient] = {}

    def _client(address: str) -> httpx.AsyncClient:
        if address not in clients:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            clients[address] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return clients[address]

    yield _client
    for c in clients.values():
        await c.aclose()


def _checks() -> float:
    return sum(
        REGISTRY.get_sample_value("telemetra_login_password_checks_total", {"result": result}) or 0.0
        for result in ("accepted", "refused")
    )


async def _login(client: httpx.AsyncClient, device_id: str, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"device_id": device_id, "password": password})


async def test_sixty_concurrent_guesses_get_five_checks_and_the_right_password_sent_last_no_token(
    from_address, make_tenant, make_device
) -> None:
    await make_device(await make_tenant(), id="pi-60", password=PASSWORD)
    attacker, before = from_address(ATTACKER), _checks()

    answers = await asyncio.gather(
        *[_login(attacker, "pi-60", f"guess-{i:04d}") for i in range(59)], _login(attacker, "pi-60", PASSWORD)
    )

    statuses = Counter(a.status_code for a in answers)
    assert _checks() - before == 5  # TELEMETRA_LOGIN_FAILURES_PER_DEVICE: 5/minute
    assert statuses[401] + statuses[200] == 5 and statuses[429] == 55, statuses
    assert all(
        a.json()["code"] == "rate_limited" and "Retry-After" in a.headers for a in answers if a.status_code == 429
    )


async def test_a_guesser_does_not_lock_the_owner_out_of_its_usual_address(
    from_address, make_tenant, make_device
) -> None:
    await make_device(await make_tenant(), id="pi-owned", password=PASSWORD)
    owner, attacker, newcomer = from_address(OWNER), from_address(ATTACKER), from_address(NEWCOMER)
    assert (await _login(owner, "pi-owned", PASSWORD)).status_code == 200  # the owner's address is known

    guesses = await asyncio.gather(*[_login(attacker, "pi-owned", f"guess-{i:04d}") for i in range(20)])
    again = await _login(owner, "pi-owned", PASSWORD)
    unknown = await _login(newcomer, "pi-owned", PASSWORD)

    # The owner's first login, from an address not yet known, counted in the shared budget: four are left.
    assert Counter(g.status_code for g in guesses) == {401: 4, 429: 16}
    assert again.status_code == 200, again.text
    # An address the device never logged in from shares the budget the guesser spent (documented).
    assert unknown.status_code == 429
    # The owner's own budget is the same size: its address cannot be used to guess without limit either.
    owner_guesses = [await _login(owner, "pi-owned", "wrong-guess") for _ in range(5)]
    assert [g.status_code for g in owner_guesses] == [401, 401, 401, 401, 429]


# 10 rather than the default 30: every check allowed costs an argon2 hash (~0.1 s), the property is the same.
@pytest.mark.parametrize("login_settings", [{"login_failures_per_ip": "10/minute"}])
async def test_a_hundred_concurrent_failures_from_one_address_get_the_address_budget_of_checks(from_address) -> None:
    attacker, before = from_address(ATTACKER), _checks()

    # Each names another device, so that only the per-address budget applies.
    answers = await asyncio.gather(*[_login(attacker, f"nobody-{i}", "wrong-password") for i in range(100)])

    assert _checks() - before == 10  # TELEMETRA_LOGIN_FAILURES_PER_IP
    assert Counter(a.status_code for a in answers) == {401: 10, 429: 90}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("settings", ["memory"], indirect=True)
async def test_password_checks_past_the_waiting_room_are_refused_at_once(app, from_address) -> None:
    """With every argon2 slot taken, MAX_WAITING_CHECKS logins wait and the others are answered 503 at once;
    a waiting login whose client goes away gives its place back."""
    login = app.state.services.login
    for _ in range(MAX_CONCURRENT_HASHES):  # as if that many checks were running
        await login._checks._slots.acquire()
    before, extra = _checks(), 5
    tasks = [
        asyncio.create_task(_login(from_address(f"10.1.{i // 250}.{i % 250}"), f"nobody-{i}", "wrong-password"))
        for i in range(MAX_WAITING_CHECKS + extra)
    ]

    refused: list[asyncio.Task] = []
    while len(refused) < extra:  # nothing else can finish while the slots are held
        done, _ = await asyncio.wait([t for t in tasks if t not in refused], return_when=asyncio.FIRST_COMPLETED)
        refused.extend(done)
    waiting = [t for t in tasks if t not in refused]
    for task in waiting:  # their clients go away
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    for _ in range(MAX_CONCURRENT_HASHES):
        login._checks._slots.release()

    assert [t.result().status_code for t in refused] == [503] * extra
    assert {t.result().json()["code"] for t in refused} == {"login_busy"}
    assert all(t.result().headers["Retry-After"] == "1" for t in refused)
    assert _checks() == before  # none was checked while waiting
    # The cancelled ones left the waiting room: a full room would answer 503 again.
    after = await asyncio.gather(*[_login(from_address(f"10.2.0.{i}"), "nobody", "wrong-password") for i in range(2)])
    assert [a.status_code for a in after] == [401, 401]
