"""Start and stop the broker sources of a process (inside `serve`, or alone in `worker`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from telemetra.domain.jsonbody import PayloadLimits
from telemetra.ingest.device_cache import DeviceCache
from telemetra.settings import Settings

if TYPE_CHECKING:
    from telemetra.ingest.pipeline import Pipeline
    from telemetra.ingest.service import TelemetryService
    from telemetra.ingest.sources.mqtt import MqttConfig
    from telemetra.ingest.sources.pull import PullConfig
    from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = [
    "Source",
    "build_sources",
    "configured_sources",
    "mqtt_config",
    "pull_config",
    "payload_limits",
    "SOURCE_NAMES",
]

SOURCE_NAMES = ("mqtt", "nats")


class Source(Protocol):
    async def start(self) -> None: ...

    async def stop(self, timeout_s: float) -> None:
        """Stop taking messages; within ``timeout_s``, let those in hand commit and acknowledge them (those
        that fail meanwhile are not retried: left unacknowledged, the broker sends them again)."""


def configured_sources(settings: Settings) -> list[str]:
    """Return the sources whose broker URL is set."""
    return [name for name in SOURCE_NAMES if getattr(settings, f"{name}_url")]


def mqtt_config(settings: Settings) -> "MqttConfig":
    """The MQTT source's configuration from the settings (TELEMETRA_MQTT_URL must be set)."""
    from telemetra.ingest.sources.mqtt import MqttConfig

    return MqttConfig(
        url=settings.mqtt_url or "",
        client_id=settings.mqtt_client_id,
        shared_group=settings.mqtt_shared_group or None,
        receive_maximum=settings.mqtt_receive_maximum,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        session_expiry_s=settings.mqtt_session_expiry_s,
        ca_file=settings.mqtt_ca_file,
        cert_file=settings.mqtt_cert_file,
        key_file=settings.mqtt_key_file,
    )


def pull_config(settings: Settings, url: str | None = None) -> "PullConfig | None":
    """The puller's configuration from the settings (None when no upstream is set)."""
    from telemetra.ingest.sources.pull import PullConfig

    url = url or settings.pull_url
    if not url:
        return None
    return PullConfig(
        url=url,
        every_s=settings.pull_every_s,
        clients=tuple(c.strip() for c in settings.pull_clients.split(",") if c.strip()),
        concurrency=settings.pull_concurrency,
        timeout_s=settings.pull_timeout_s,
    )


def payload_limits(settings: Settings) -> PayloadLimits:
    """A broker payload's limits: those of an HTTP body (TELEMETRA_MAX_BODY_BYTES, TELEMETRA_MAX_JSON_DEPTH)."""
    return PayloadLimits(max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)


def build_sources(
    settings: Settings, names: list[str], *, telemetry: "TelemetryService", pipeline: "Pipeline", store: "Store"
) -> list[Source]:
    """Return the sources named in ``names`` (each needs its URL setting), feeding ``telemetry`` and ``pipeline``."""
    cache = DeviceCache(store)
    limits = payload_limits(settings)
    sources: list[Source] = []
    for name in names:
        if name == "mqtt":
            from telemetra.ingest.sources.mqtt import MqttSource

            if not settings.mqtt_url:
                raise ValueError("the mqtt source needs TELEMETRA_MQTT_URL (or --mqtt)")
            sources.append(MqttSource(mqtt_config(settings), telemetry, pipeline, cache, limits=limits))
        elif name == "nats":
            from telemetra.ingest.sources.nats import NatsConfig, NatsSource

            if not settings.nats_url:
                raise ValueError("the nats source needs TELEMETRA_NATS_URL")
            config = NatsConfig(
                url=settings.nats_url,
                stream=settings.nats_stream,
                durable=settings.nats_durable,
                fetch_batch=settings.nats_fetch_batch,
                ack_wait_s=settings.nats_ack_wait_s,
                tls=settings.nats_tls,
            )
            sources.append(NatsSource(config, telemetry, pipeline, cache, limits=limits))
        else:
            raise ValueError(f"unknown source '{name}'; choose from {', '.join(SOURCE_NAMES)}")
    return sources
