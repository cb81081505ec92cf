"""Load generators and bare broker clients, each run by bench/ingest.py as a process of its own.

They are separate processes (not threads of the harness) so that no two of them, nor the harness, share a
GIL: the bare ceilings must not be held back by the measuring code, and neither must Telemetra's load.
Each role prints "READY" when it is ready to take load (if it takes any), and one JSON line starting with
"RESULT " at the end. Times are wall-clock (time.time()) so that they compare across processes.

    python bench/loadgen.py mqtt-pub --port 1883 --devices devices.txt --count 30000
    python bench/loadgen.py mqtt-sub --port 1883 --count 30000
    python bench/loadgen.py nats-pub --url nats://127.0.0.1:4222 --stream BARE --subjects 'bare.>' \
        --prefix bare. --devices devices.txt --count 30000
    python bench/loadgen.py nats-consume --url nats://127.0.0.1:4222 --stream BARE --count 30000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson

# The body of every broker message: the same three values as the HTTP cases, plus the publish time in
# the metadata (metadata is stored as sent but does not become points), from which the harness computes
# publish -> commit latency out of the database.
VALUES = {"temperature": 21.5, "humidity": 40.1, "power": 3.2}


def payload(sent_at: float) -> bytes:
    return orjson.dumps({"data": VALUES, "metadata": {"t": sent_at}})


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def report(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def read_devices(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


# -- MQTT ------------------------------------------------------------------------------------------------
def mqtt_pub(args: argparse.Namespace) -> None:
    """Publish QoS 1 to devices/<id>/telemetry, round-robin over the devices, with a window in flight.

    Without --rate, --count messages go out as fast as paho takes them, and paho's network loop runs in
    this thread (``client.loop``): with ``loop_start`` the publishing thread and the network thread passed
    the GIL back and forth at every message, and this publisher alone reached about 6,900 msg/s at 150 us of
    CPU a message; in one thread, 9,100 msg/s at 110 us (against Mosquitto, no subscriber).

    With --rate (the overload run) the messages are paced for --duration seconds, in the same one thread.
    What counts as offered is what the broker acknowledged within that time (``acked``); what was still
    queued here at the end is dropped, never having reached the broker.
    """
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    devices = read_devices(args.devices)
    topics = [f"devices/{d}/telemetry" for d in devices]
    acked = 0

    def on_publish(client, userdata, mid, reason_code, properties):
        nonlocal acked
        acked += 1

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
    )
    client.max_inflight_messages_set(args.inflight)
    client.max_queued_messages_set(0)  # paho holds what does not fit the window; 0 = no limit
    client.on_publish = on_publish
    client.connect("127.0.0.1", args.port, keepalive=60)
    deadline = time.time() + 10
    while not client.is_connected():
        if time.time() > deadline:
            raise SystemExit("publisher: no CONNACK within 10 s")
        client.loop(0.1)
    print("READY", flush=True)

    first = time.time()
    sent = 0
    if args.rate:
        # Paced: every tick, publish what the rate allows since the start (catching up after a stall).
        end = first + args.duration
        while (now := time.time()) < end:
            due = int((now - first) * args.rate)
            while sent < due:
                client.publish(topics[sent % len(topics)], payload(time.time()), qos=1)
                sent += 1
            client.loop(0.002)  # reads the PUBACKs, sends what the window allows; the tick's wait
        published = last_ack = time.time()
        acked_in_time = acked
        client.disconnect()
        report(
            {
                "sent": sent,
                "acked": acked_in_time,
                "complete": True,
                "first_publish": first,
                "last_publish": published,
                "last_puback": last_ack,
            }
        )
        return
    # Keep the window full; paho reads the PUBACKs (and writes what waits) in client.loop.
    while sent < args.count:
        while sent < args.count and sent - acked < args.inflight:
            client.publish(topics[sent % len(topics)], payload(time.time()), qos=1)
            sent += 1
        client.loop(0.01)
    published = time.time()
    give_up = published + args.timeout
    while acked < sent and time.time() < give_up and client.is_connected():
        client.loop(0.05)
    last_ack = time.time()
    client.disconnect()
    report(
        {
            "sent": sent,
            "acked": acked,
            "complete": acked >= sent,
            "first_publish": first,
            "last_publish": published,
            "last_puback": last_ack,
        }
    )


def mqtt_sub(args: argparse.Namespace) -> None:
    """The bare subscriber: MQTT 5, the same shared subscription and receive maximum as Telemetra, QoS 1
    (paho acknowledges after on_message returns); it parses each payload and counts."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    received = 0
    first = last = None
    latencies: list[float] = []
    done = threading.Event()
    subscribed = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(f"$share/bare/{args.topic}", qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        nonlocal received, first, last
        now = time.time()
        doc = orjson.loads(message.payload)
        latencies.append(now - doc["metadata"]["t"])
        received += 1
        first = first or now
        last = now
        if received >= args.count:
            done.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = args.receive_maximum
    client.connect("127.0.0.1", args.port, keepalive=60, clean_start=True, properties=props)
    client.loop_start()
    if not subscribed.wait(10):
        raise SystemExit("subscriber: no SUBACK within 10 s")
    print("READY", flush=True)
    complete = done.wait(args.timeout)
    time.sleep(0.2)  # let paho send the last PUBACKs
    client.disconnect()
    client.loop_stop()
    report(
        {
            "received": received,
            "complete": complete,
            "first_receive": first,
            "last_receive": last,
            "p50_ms": _ms(percentile(latencies, 50)),
            "p99_ms": _ms(percentile(latencies, 99)),
        }
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# -- NATS JetStream ------------------------------------------------------------------------------------
async def nats_pub(args: argparse.Namespace) -> None:
    """Fill a stream: JetStream publishes with up to --in-flight awaiting their PubAck (publish_async)."""
    import nats
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    devices = read_devices(args.devices)
    subjects = [f"{args.prefix}{d}" for d in devices]
    nc = await nats.connect(args.url)
    js = nc.jetstream(publish_async_max_pending=args.in_flight)
    try:
        await js.stream_info(args.stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=args.stream, subjects=args.subjects.split(",")))
    first = time.time()
    futures = []
    for i in range(args.count):
        futures.append(await js.publish_async(subjects[i % len(subjects)], payload(time.time())))
    acks = await asyncio.gather(*futures)
    last = time.time()
    await nc.close()
    report(
        {
            "sent": args.count,
            "acked": len(acks),
            "first_publish": first,
            "last_puback": last,
            "last_seq": acks[-1].seq if acks else 0,
        }
    )


async def nats_consume(args: argparse.Namespace) -> None:
    """The bare consumer: a durable pull consumer, fetch(--batch) and ack every message, nothing else."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(args.url)
    js = nc.jetstream()
    await js.add_consumer(
        args.stream,
        ConsumerConfig(durable_name=args.durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=60, max_ack_pending=10_000),
    )
    sub = await js.pull_subscribe_bind(args.durable, args.stream)
    print("READY", flush=True)
    done, first = 0, None
    while done < args.count:
        try:
            msgs = await sub.fetch(args.batch, timeout=1.0)
        except (asyncio.TimeoutError, nats.errors.TimeoutError):
            continue
        first = first or time.time()
        for msg in msgs:
            await msg.ack()
        done += len(msgs)
    await nc.flush()
    last = time.time()
    await nc.close()
    report({"acked": done, "first_fetch": first, "last_ack": last})


def main() -> None:
    parser = argparse.ArgumentParser(description="bench load generators (run by bench/ingest.py)")
    roles = parser.add_subparsers(dest="role", required=True)

    pub = roles.add_parser("mqtt-pub")
    pub.add_argument("--port", type=int, required=True)
    pub.add_argument("--devices", required=True, help="file of device ids, one a line")
    pub.add_argument("--count", type=int, default=0)
    pub.add_argument("--inflight", type=int, default=1000)
    pub.add_argument("--rate", type=float, default=0, help="messages/s, paced (0: as fast as possible)")
    pub.add_argument("--duration", type=float, default=60)
    pub.add_argument("--timeout", type=float, default=300)

    sub = roles.add_parser("mqtt-sub")
    sub.add_argument("--port", type=int, required=True)
    sub.add_argument("--count", type=int, required=True)
    sub.add_argument("--topic", default="devices/+/telemetry")
    sub.add_argument("--receive-maximum", type=int, default=1000)
    sub.add_argument("--timeout", type=float, default=300)

    npub = roles.add_parser("nats-pub")
    npub.add_argument("--url", required=True)
    npub.add_argument("--stream", required=True)
    npub.add_argument("--subjects", required=True, help="comma-separated subjects of the stream")
    npub.add_argument("--prefix", required=True, help="subject = prefix + device id")
    npub.add_argument("--devices", required=True)
    npub.add_argument("--count", type=int, required=True)
    npub.add_argument("--in-flight", type=int, default=1000)

    ncons = roles.add_parser("nats-consume")
    ncons.add_argument("--url", required=True)
    ncons.add_argument("--stream", required=True)
    ncons.add_argument("--durable", default="bare")
    ncons.add_argument("--count", type=int, required=True)
    ncons.add_argument("--batch", type=int, default=1000)

    args = parser.parse_args()
    if args.role == "mqtt-pub":
        mqtt_pub(args)
    elif args.role == "mqtt-sub":
        mqtt_sub(args)
    elif args.role == "nats-pub":
        asyncio.run(nats_pub(args))
    else:
        asyncio.run(nats_consume(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
