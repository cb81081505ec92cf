"""The live hub: tenant-scoped fan-out, and a slow subscriber dropped without holding anyone up."""

from __future__ import annotations

from telemetra.live.hub import LiveHub


def _event(tenant_id: int, device_id: str, n: int) -> dict:
    return {"tenant_id": tenant_id, "device_id": device_id, "timestamp": "t", "values": {"n": n}, "message_id": n}


async def test_events_go_to_their_devices_subscribers_of_the_same_tenant_only() -> None:
    hub = LiveHub(buffer=10)
    mine = hub.subscribe(1, {"a", "b"})
    foreign = hub.subscribe(2, {"a"})  # same device id, another tenant: never happens, but must not leak
    hub.deliver([_event(1, "a", 1), _event(1, "c", 2), _event(1, "b", 3)])
    assert [(await mine.next(1))["message_id"] for _ in range(2)] == [1, 3]
    assert foreign._queue.empty()
    mine.close()
    assert await mine.next(1) is None
    hub.deliver([_event(2, "a", 4)])
    assert (await foreign.next(1))["message_id"] == 4


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_go_on() -> None:
    hub = LiveHub(buffer=3)
    slow, fast = hub.subscribe(1, {"a"}), hub.subscribe(1, {"a"})
    for n in range(5):
        hub.deliver([_event(1, "a", n)])
        assert (await fast.next(1))["message_id"] == n
    assert slow.dropped and await slow.next(1) is None  # its backlog is gone; it is told it ended
    hub.deliver([_event(1, "a", 9)])
    assert (await fast.next(1))["message_id"] == 9
    assert not fast.dropped
    fast.close()
    assert not hub.has_subscribers


async def test_a_subscription_gets_only_the_kinds_it_asked_for() -> None:
    from telemetra.live.hub import EVERY_KIND, LiveHub

    hub = LiveHub(buffer=10)
    points_only = hub.subscribe(1, {"d"})
    console = hub.subscribe(1, {"d"}, EVERY_KIND)
    telemetry = {"tenant_id": 1, "device_id": "d", "timestamp": "t", "values": {}, "message_id": 1}
    command = {"kind": "command", "tenant_id": 1, "device_id": "d", "command_id": "c", "name": "n", "status": "sent"}
    alert = {"kind": "alert", "tenant_id": 2, "device_id": "d", "alert_id": 1}  # another tenant's
    hub.deliver([telemetry, command, alert])
    assert await points_only.next(1) == telemetry
    assert [await console.next(1), await console.next(1)] == [telemetry, command]
    hub.close()
    assert await points_only.next(1) is None and await console.next(1) is None


async def test_ready_hands_over_what_waits_without_waiting() -> None:
    hub = LiveHub(buffer=10)
    subscription = hub.subscribe(1, {"a"})
    assert subscription.ready(5) == []
    hub.deliver([_event(1, "a", n) for n in range(4)])
    assert [e["message_id"] for e in subscription.ready(3)] == [0, 1, 2]
    subscription.close()
    assert subscription.ready(5) == [None]  # what was not read is dropped with the subscription; the end stays
