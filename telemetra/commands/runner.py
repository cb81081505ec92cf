"""Pick the command transport the settings ask for."""

from __future__ import annotations

import uuid

from telemetra.commands.transport import CommandTransport
from telemetra.domain.jsonbody import PayloadLimits
from telemetra.settings import Settings

__all__ = ["build_transport"]

COMMAND_ACK_GROUP = "telemetra"


def build_transport(settings: Settings) -> CommandTransport | None:
    """The configured transport (not yet connected), or None: commands then reach devices over HTTP only."""
    # An ack's payload is read within an HTTP body's limits (TELEMETRA_MAX_BODY_BYTES, TELEMETRA_MAX_JSON_DEPTH).
    limits = PayloadLimits(max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    choice = settings.command_transport
    if choice == "auto":
        choice = "mqtt" if settings.mqtt_url else "nats" if settings.nats_url else "none"
    if choice == "mqtt":
        if not settings.mqtt_url:
            raise ValueError("TELEMETRA_COMMAND_TRANSPORT=mqtt needs TELEMETRA_MQTT_URL")
        from telemetra.commands.mqtt import MqttCommandTransport

        # A client id of its own per process: two processes with one id would throw each other off. Acks are
        # read through a share group even when telemetry is not: every `serve` and `worker` connects, and each
        # ack is handled once. Its session ends with its connection, so no broker restart is at stake there.
        return MqttCommandTransport(
            settings.mqtt_url,
            f"{settings.mqtt_client_id}-cmd-{uuid.uuid4().hex[:8]}",
            limits=limits,
            username=settings.mqtt_username,
            password=settings.mqtt_password,
            shared_group=settings.mqtt_shared_group or COMMAND_ACK_GROUP,
            ca_file=settings.mqtt_ca_file,
            cert_file=settings.mqtt_cert_file,
            key_file=settings.mqtt_key_file,
        )
    if choice == "nats":
        if not settings.nats_url:
            raise ValueError("TELEMETRA_COMMAND_TRANSPORT=nats needs TELEMETRA_NATS_URL")
        from telemetra.commands.nats import NatsCommandTransport

        return NatsCommandTransport(settings.nats_url, settings.nats_tls, limits=limits)
    return None
