"""A `telemetra serve` killed (SIGKILL) mid-load has stored every message it accepted (201, or accepted in
a batch's answer), once."""

from __future__ import annotations

import asyncio

import httpx

from telemetra.store import store_from_url
from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server

REQUESTS = 2000
BATCH = 10  # messages in each batch request
CONCURRENCY = 32
KILL_AFTER = 300  # accepted messages
# One writer: while it commits, what arrives waits in the queue for the next transaction (the writer has no
# timer of its own any more). An answer sent before the commit would leave those messages uncommitted for
# that long, and the kill would catch such messages.
WRITERS = "1"


async def test_every_accepted_message_survives_a_sigkill(database_url: str) -> None:
    server = Server(
        database_url,
        env={
            "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
            "TELEMETRA_RATE_LIMITS_ENABLED": "false",
            "TELEMETRA_INGEST_WRITERS": WRITERS,
            "TELEMETRA_LOG_LEVEL": "WARNING",
        },
    )
    accepted: list[int] = []  # the n of each message the server said it took
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            tenant = (
                await http.post("/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "acme"})
            ).json()
            owner = {"X-API-Key": tenant["api_key"]}
            device = (
                await http.post("/api/v1/devices/register", headers=owner, json={"name": "meter", "id": "meter-1"})
            ).json()["device"]
            requests: asyncio.Queue[int] = asyncio.Queue()
            for number in range(REQUESTS):
                requests.put_nowait(number)

            async def send(number: int) -> list[int]:
                """One request: odd ones a single message, even ones a batch; the numbers accepted."""
                if number % 2:
                    n = number * BATCH
                    response = await http.post(
                        "/api/v1/devices/telemetry",
                        headers={"X-API-Key": device["api_key"]},
                        json={"data": {"n": n}, "msg_id": f"m{n}"},
                    )
                    return [n] if response.status_code == 201 else []
                numbers = [number * BATCH + i for i in range(BATCH)]
                response = await http.post(
                    "/api/v1/telemetry/batch",
                    headers=owner,
                    json={"messages": [{"device_id": "meter-1", "data": {"n": n}, "msg_id": f"m{n}"} for n in numbers]},
                )
                if response.status_code not in (200, 207):
                    return []
                return [numbers[r["index"]] for r in response.json()["results"] if r["status"] == "accepted"]

            async def sender() -> None:
                while not requests.empty():
                    try:
                        accepted.extend(await send(requests.get_nowait()))
                    except httpx.TransportError:
                        return  # the server is gone: what was in flight may or may not be committed
                    if len(accepted) >= KILL_AFTER and server.proc.poll() is None:
                        server.proc.kill()

            await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    finally:
        server.stop()

    assert server.proc.returncode == -9 and len(accepted) >= KILL_AFTER, "the server was not killed mid-load"
    store = store_from_url(database_url)
    await store.open()
    try:
        messages, total = await store.list_messages(limit=REQUESTS * BATCH)
    finally:
        await store.close()
    stored = [m.data["n"] for m in messages]
    assert len(stored) == total == len(set(stored)), "a message was stored twice"
    lost = sorted(set(accepted) - set(stored))
    assert not lost, f"{len(lost)} accepted messages lost, among them {lost[:10]}"
