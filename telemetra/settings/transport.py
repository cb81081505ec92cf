"""Settings of the transports: MQTT and NATS brokers, the HTTPS certificate, commands and the live feed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, field_validator

from telemetra.domain.mosquitto_auth import check_send_topic

if TYPE_CHECKING:
    from telemetra.nats_connection import NatsTls

# Not the host name: a container gets a new one at each start, and a new id is a new, empty session.
DEFAULT_MQTT_CLIENT_ID = "telemetra-ingest"


class TransportSettings(BaseModel):
    """Brokers, TLS files, command delivery and the live feed (a group of ``Settings``)."""

    mqtt_url: str | None = Field(
        None,
        description="MQTT broker to take telemetry from (`mqtt://host:1883`); `telemetra serve` and "
        "`telemetra worker --source mqtt` subscribe when it is set.",
    )
    mqtt_client_id: str = Field(
        DEFAULT_MQTT_CLIENT_ID,
        min_length=1,
        max_length=128,
        description="MQTT client id, which names the broker's persistent session: the same across restarts "
        "and host names, so that a restarted worker gets back what the broker kept for it. With "
        "a share group, one per worker (the StatefulSet pod name: `telemetra-mqtt-0`, ...).",
    )
    mqtt_username: str | None = Field(None, description="User Telemetra connects to the broker as.")
    mqtt_password: str | None = Field(None, repr=False, description="Password of `TELEMETRA_MQTT_USERNAME`.")
    mqtt_ca_file: str | None = Field(
        None,
        description="CA certificate (PEM) the MQTT broker's certificate must chain to; with it, or with an "
        "`mqtts://` URL (port 8883 by default), Telemetra connects over TLS.",
    )
    mqtt_cert_file: str | None = Field(
        None,
        description="Client certificate (PEM) Telemetra presents to the MQTT broker, for brokers that require one.",
    )
    mqtt_key_file: str | None = Field(None, description="Private key (PEM) of `TELEMETRA_MQTT_CERT_FILE`.")
    tls_cert_file: str | None = Field(
        None, description="Certificate chain (PEM) `telemetra serve` answers HTTPS with (or `--tls-cert`)."
    )
    tls_key_file: str | None = Field(None, description="Private key (PEM) of the HTTPS certificate (or `--tls-key`).")
    mqtt_shared_group: str | None = Field(
        None,
        pattern=r"^[^/+#]*$",
        description="Share group (`$share/<group>/devices/+/telemetry`) for several MQTT workers to split the "
        "load, each with its own `TELEMETRA_MQTT_CLIENT_ID`. Unset: a plain subscription, the "
        "safe default (Mosquitto 2.0 does not keep shared subscriptions over its own restart; see "
        "README, MQTT).",
    )
    mqtt_receive_maximum: int = Field(
        1000,
        ge=1,
        le=65535,
        description="Unacknowledged QoS 1 messages the broker may send at once (the MQTT flow-control window).",
    )
    mqtt_session_expiry_s: int = Field(
        604_800,
        ge=0,
        description="How long the broker keeps a worker's session (and the messages it has not "
        "acknowledged) while the worker is away, in seconds.",
    )
    nats_url: str | None = Field(
        None,
        description="NATS server with JetStream (`nats://host:4222`) to take telemetry from; "
        "`telemetra worker --source nats` consumes when it is set.",
    )
    nats_ca_file: str | None = Field(
        None,
        description="CA certificate (PEM) the NATS server's certificate must chain to; with it, a client "
        "certificate, or a `tls://` URL, Telemetra connects to NATS over TLS only.",
    )
    nats_cert_file: str | None = Field(
        None, description="Client certificate (PEM) Telemetra presents to NATS, for servers that verify clients."
    )
    nats_key_file: str | None = Field(None, description="Private key (PEM) of `TELEMETRA_NATS_CERT_FILE`.")
    nats_stream: str = Field("TELEMETRY", description="JetStream stream holding telemetry subjects.")
    nats_durable: str = Field("telemetra", description="Durable consumer name shared by every worker.")
    nats_fetch_batch: int = Field(500, ge=1, le=10_000, description="Messages fetched per pull.")
    nats_ack_wait_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="Seconds JetStream waits for a fetched message's ack before it hands the "
        "message out again (a worker that died): longer than any commit.",
    )
    command_transport: Literal["auto", "mqtt", "nats", "none"] = Field(
        "auto",
        description="How commands reach devices: `mqtt` (devices/{id}/commands), `nats` (commands.{id}), "
        "`none` (HTTP heartbeats only); `auto` picks MQTT when its URL is set, else NATS.",
    )
    command_default_ttl_s: int = Field(
        3600, ge=1, description="How long a command waits for its device when the request gives no `ttl_s`."
    )
    command_max_ttl_s: int = Field(604_800, ge=1, description="Longest `ttl_s` a command may ask for, in seconds.")
    command_expiry_check_s: float = Field(
        5.0, gt=0, le=3600, description="How often commands past their TTL are marked expired, in seconds."
    )
    send_command_topic: str = Field(
        "send_command",
        min_length=1,
        description="Topic (or NATS subject) seed 001's POST /send publishes on; `{device_id}` as one level "
        "(`send_command/{device_id}`) gives each device a topic of its own, which `telemetra mqtt-sync`'s ACL lets "
        "that device read (one topic for all is read by no device: it carries every device's orders).",
    )
    redis_channel: str = Field(
        "telemetra:live",
        min_length=1,
        description="Redis pub/sub channel of the live feed; deployments that share a Redis each need their own.",
    )
    stream_buffer_events: int = Field(
        1000, ge=1, le=100_000, description="Events a live-stream client may fall behind by before it is disconnected."
    )

    @field_validator("send_command_topic")
    @classmethod
    def _send_topic(cls, topic: str) -> str:
        problem = check_send_topic(topic)
        if problem is not None:
            raise ValueError(problem)
        return topic

    @property
    def nats_tls(self) -> "NatsTls | None":
        """TLS for every connection to NATS, or None for plain text."""
        from telemetra.nats_connection import nats_tls_from

        return nats_tls_from(self.nats_url or "", self.nats_ca_file, self.nats_cert_file, self.nats_key_file)
