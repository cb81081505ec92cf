"""Over HTTP, a message the database refuses gets a 4xx of its own (never a 503, which tells the sender to
retry for ever), the messages committed beside it get their 201, and one tenant looping it never turns
another tenant's requests away."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, AsyncIterator

import pytest

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.poison import PoisonedStore

# Small enough that a tenant with many senders fills more than its share of it.
QUEUE_MESSAGES = 24
B_MESSAGES = 1200
B_SENDERS = 12


@pytest.fixture
def queue_messages() -> int:
    return 20_000


@pytest.fixture
async def app(settings: Settings, store, queue_messages: int) -> AsyncIterator[Any]:
    settings.rate_limits_enabled = False  # the load below is far past a device's budget, on purpose
    settings.ingest_max_queue_messages = queue_messages
    application = create_app(settings, PoisonedStore(store))
    async with application.router.lifespan_context(application):
        await application.state.services.keys.ensure_admin_key(settings.admin_key)
        yield application


async def _stored(store, device: dict) -> list[Any]:
    stored = await store.get_device(device["id"])
    messages, _ = await store.list_messages(device_pk=stored.pk, limit=5000)
    return messages


async def test_a_poison_message_gets_422_and_the_messages_beside_it_201(
    client, store, make_tenant, make_device
) -> None:
    device = await make_device(await make_tenant())
    url, headers = "/api/v1/devices/telemetry", device["headers"]
    answers = await asyncio.gather(
        *(client.post(url, headers=headers, json={"data": {"n": i}}) for i in range(20)),
        client.post(url, headers=headers, json={"data": {"poison": 1}}),
        *(client.post(url, headers=headers, json={"data": {"n": i}}) for i in range(20, 40)),
    )
    poisoned = answers[20]
    assert poisoned.status_code == 422, poisoned.text
    assert poisoned.json()["code"] == "unstorable_message" and "Retry-After" not in poisoned.headers
    assert [a.status_code for a in answers[:20] + answers[21:]] == [201] * 40
    assert sorted(m.data["n"] for m in await _stored(store, device)) == list(range(40))


async def test_a_poison_message_in_a_batch_is_rejected_alone(client, store, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    messages = [{"device_id": device["id"], "data": {"n": i}} for i in range(10)]
    messages[3] = {"device_id": device["id"], "data": {"poison": 1}}
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json={"messages": messages})
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert body["accepted"] == 9 and body["rejected"] == 1
    assert body["results"][3]["status"] == "rejected" and body["results"][3]["code"] == "unstorable_message"
    assert all(r["status"] == "accepted" and r["telemetry_id"] for i, r in enumerate(body["results"]) if i != 3)
    assert sorted(m.data["n"] for m in await _stored(store, device)) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    # A device's own buffer, replayed, the same way.
    resp = await client.post(
        "/api/v1/devices/telemetry/batch",
        headers=device["headers"],
        json=[{"data": {"poison": 1}}, {"data": {"n": 10}}],
    )
    assert resp.status_code == 207 and resp.json()["results"][0]["code"] == "unstorable_message"


@pytest.mark.parametrize("queue_messages", [QUEUE_MESSAGES])
async def test_a_tenant_looping_poison_and_flooding_never_turns_another_tenant_away(
    client, store, make_tenant, make_device
) -> None:
    device_a = await make_device(await make_tenant())
    device_b = await make_device(await make_tenant())
    url = "/api/v1/devices/telemetry"
    b_done = asyncio.Event()
    a_answers: Counter[int] = Counter()
    b_answers: Counter[int] = Counter()

    async def flood_a(sender: int) -> None:
        i = 0
        while not b_done.is_set():
            # Two senders loop the poison; the others flood with good messages.
            body = {"data": {"poison": 1}} if sender < 2 else {"data": {"a": i}}
            status = (await client.post(url, headers=device_a["headers"], json=body)).status_code
            a_answers[status] += 1
            i += 1
            if status == 429:
                # Again soon, if not after the whole Retry-After: a client in the same process retrying in a
                # busy loop would take the CPU from the server's own database threads.
                await asyncio.sleep(0.01)

    async def send_b(first: int) -> None:
        for n in range(first, B_MESSAGES, B_SENDERS):
            resp = await client.post(url, headers=device_b["headers"], json={"data": {"n": n}, "msg_id": f"b{n}"})
            b_answers[resp.status_code] += 1

    flooders = [asyncio.ensure_future(flood_a(s)) for s in range(20)]  # more senders than A's share of the queue
    try:
        await asyncio.gather(*(send_b(first) for first in range(B_SENDERS)))
    finally:
        b_done.set()
        await asyncio.gather(*flooders)
    assert b_answers == Counter({201: B_MESSAGES})  # 100 %: no 503, no 429
    assert sorted(m.data["n"] for m in await _stored(store, device_b)) == list(range(B_MESSAGES))
    assert a_answers[422] > 0 and a_answers[503] == 0  # A's poison refused for good, never "retry"
    assert set(a_answers) <= {201, 422, 429}
