"""The services of one process, built once from the settings and a store: what routes, sources and commands call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telemetra.alerts.engine import RuleEngine
from telemetra.alerts.ownership import ShardOwnership
from telemetra.alerts.service import AlertService
from telemetra.analytics.service import AnalyticsService
from telemetra.commands.desired import DesiredStateService
from telemetra.commands.runner import build_transport
from telemetra.commands.service import CommandService
from telemetra.domain.timeparse import utcnow
from telemetra.ingest.pipeline import Pipeline
from telemetra.ingest.service import TelemetryService, limits_from_settings
from telemetra.live.feed import LiveFeed
from telemetra.live.hub import LiveHub
from telemetra.live.redis_bus import RedisBus
from telemetra.live.watches import WatchService
from telemetra.notify.outbound import OutboundPolicy
from telemetra.ratelimit import RateLimiter
from telemetra.ratelimit.policy import RateLimitPolicy
from telemetra.registry.activity import ActivityRecorder
from telemetra.registry.auth import Authenticator
from telemetra.registry.credential_cache import CredentialCache
from telemetra.registry.credential_epoch import CredentialEpochWatcher
from telemetra.registry.device_login import DeviceLogin
from telemetra.registry.devices import DeviceService
from telemetra.registry.keys import KeyService
from telemetra.registry.presence import PresenceMonitor
from telemetra.registry.sessions import SessionService
from telemetra.registry.tenants import TenantService
from telemetra.registry.tokens import TokenCodec
from telemetra.registry.users import UserService
from telemetra.settings import Settings
from telemetra.store import Store

__all__ = ["Services", "build_services"]


@dataclass
class Services:
    """Everything a route, a source or a command may call, built once by ``build_services``."""

    settings: Settings
    store: Store
    activity: ActivityRecorder
    auth: Authenticator
    keys: KeyService
    tenants: TenantService
    devices: DeviceService
    telemetry: TelemetryService
    pipeline: Pipeline
    analytics: AnalyticsService
    alerts: AlertService
    commands: CommandService
    desired: DesiredStateService
    live: LiveFeed
    watches: WatchService
    presence: PresenceMonitor
    limiter: RateLimiter
    rate_limits: RateLimitPolicy
    login: DeviceLogin
    users: UserService
    sessions: SessionService
    credential_epoch: CredentialEpochWatcher
    started_at: datetime


def build_services(settings: Settings, store: Store) -> Services:
    """Build the services and tie them to each other; nothing is started (``Runtime`` starts them)."""
    activity = ActivityRecorder(store, settings.activity_flush_interval_s)
    credentials = CredentialCache(settings.auth_cache_ttl_s, follows_epoch=True)
    epoch = CredentialEpochWatcher(store, credentials, settings.auth_epoch_poll_s)  # another process's changes
    keys = KeyService(store, credentials)
    devices = DeviceService(store, credentials)
    pipeline = Pipeline(
        store,
        max_batch_messages=settings.ingest_max_batch_messages,
        max_queue_messages=settings.ingest_max_queue_messages,
        writers=settings.ingest_writers,
        tenant_share=settings.ingest_tenant_share,
    )
    bus = RedisBus(settings.redis_url, settings.redis_channel) if settings.redis_url else None
    live = LiveFeed(LiveHub(settings.stream_buffer_events), bus)
    # First: it only queues (a slow stream never slows ingestion), and streams hear of a commit at once.
    pipeline.add_consumer(live.on_batch)
    engine = RuleEngine(
        store,
        silence_interval_s=settings.rules_silence_check_s,
        ownership=ShardOwnership(store, lease_s=settings.rules_lease_s),
    )
    pipeline.add_consumer(engine.on_batch)  # evaluates the points of its devices, queues the rest for their owner
    telemetry = TelemetryService(store, pipeline, limits_from_settings(settings), credentials)
    transport = build_transport(settings)
    commands = CommandService(
        store,
        transport,
        default_offline_after_s=settings.online_window_s,
        send_topic=settings.send_command_topic,
        expiry_interval_s=settings.command_expiry_check_s,
    )
    telemetry.on_connection(commands.on_connection)  # a device back online gets what waited for it
    commands.on_change(live.on_command)  # the console's streams show a command's states
    engine.on_alert(live.on_alert)
    presence = PresenceMonitor(
        store, default_offline_after_s=settings.online_window_s, check_interval_s=settings.presence_check_s
    )
    telemetry.on_connection(presence.on_connection)
    presence.subscribe(engine.on_presence)  # offline rules
    limiter = RateLimiter(settings.redis_url, settings.rate_limit_namespace)
    login = DeviceLogin(store, TokenCodec(settings), limiter, activity, settings)
    # Where webhooks and mail may go: checked when a channel is created and at every delivery.
    outbound = OutboundPolicy.from_text(settings.outbound_allow, settings.outbound_ca_dir)
    return Services(
        settings=settings,
        store=store,
        activity=activity,
        auth=Authenticator(store, activity, credentials),
        keys=keys,
        tenants=TenantService(store, keys),
        devices=devices,
        telemetry=telemetry,
        pipeline=pipeline,
        analytics=AnalyticsService(store, devices, settings),
        alerts=AlertService(store, engine, outbound),
        commands=commands,
        desired=DesiredStateService(store, transport),
        live=live,
        watches=WatchService(
            store, live.hub, inactivity_s=settings.watch_inactivity_s, default_offline_after_s=settings.online_window_s
        ),
        presence=presence,
        limiter=limiter,
        rate_limits=RateLimitPolicy(store, limiter, settings),
        login=login,
        users=UserService(store),
        sessions=SessionService(store, limiter, settings),
        credential_epoch=epoch,
        started_at=utcnow(),
    )
