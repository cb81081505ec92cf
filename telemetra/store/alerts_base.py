"""The alerting side of the store: rules, channels, alerts, the notification outbox.

Kept apart from ``Store`` (each backend's store carries one as ``store.alerts``) so that the hot path's
interface stays small. Alert changes and the notifications they cause are written in one transaction:
a raised alert is never without its outbox rows, and a crash loses neither.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from telemetra.domain.alerts import Alert, AlertChange, Channel, Delivery, OutboxItem, Rule
from telemetra.domain.rules import RuleDefinition

__all__ = ["AlertStore", "PayloadBuilder"]

PayloadBuilder = Callable[[str, Alert], dict[str, Any]]


class AlertStore(ABC):
    # -- rules ---------------------------------------------------------------------------------------
    @abstractmethod
    async def create_rule(self, tenant_id: int, name: str, definition: RuleDefinition, enabled: bool) -> Rule:
        """RuleNameTaken when the tenant already has a rule of that name."""

    @abstractmethod
    async def update_rule(
        self, tenant_id: int, rule_id: int, name: str, definition: RuleDefinition, enabled: bool
    ) -> Rule | None: ...

    @abstractmethod
    async def get_rule(self, tenant_id: int, rule_id: int) -> Rule | None: ...

    @abstractmethod
    async def list_rules(self, tenant_id: int | None, *, enabled_only: bool = False) -> list[Rule]:
        """The tenant's rules (every tenant's when None), by id."""

    @abstractmethod
    async def delete_rule(self, tenant_id: int, rule_id: int) -> bool: ...

    # -- channels ------------------------------------------------------------------------------------
    @abstractmethod
    async def create_channel(self, tenant_id: int, name: str, kind: str, config: dict[str, Any]) -> Channel: ...

    @abstractmethod
    async def get_channel(self, channel_id: int, tenant_id: int | None = None) -> Channel | None: ...

    @abstractmethod
    async def list_channels(self, tenant_id: int) -> list[Channel]: ...

    @abstractmethod
    async def update_channel(
        self, tenant_id: int, channel_id: int, name: str, config: dict[str, Any]
    ) -> Channel | None:
        """Rename and reconfigure a channel of the tenant; None when it has no such channel."""

    @abstractmethod
    async def delete_channel(self, tenant_id: int, channel_id: int) -> bool: ...

    # -- alerts --------------------------------------------------------------------------------------
    @abstractmethod
    async def open_alert_pairs(self) -> set[tuple[int, int]]:
        """(rule id, device pk) of every alert not cleared."""

    @abstractmethod
    async def apply_changes(self, changes: list[AlertChange], now: datetime, payload: PayloadBuilder) -> list[Alert]:
        """Raise, bump and clear alerts and queue their notifications, in one transaction; return the alerts
        raised or cleared by this call (a raise that met an open alert only bumps it)."""

    @abstractmethod
    async def list_alerts(
        self,
        tenant_id: int,
        *,
        status: str | None = None,
        severity: str | None = None,
        device_pk: int | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Alert], int]: ...

    @abstractmethod
    async def acknowledge(self, tenant_id: int, alert_id: int, now: datetime) -> Alert | None:
        """Acknowledge an active alert; the alert as it stands (unchanged when not active); None if unknown."""

    @abstractmethod
    async def silent_devices(self, tenant_id: int, cutoff: datetime) -> list[tuple[int, str, str, datetime]]:
        """(pk, id, type, last data or creation time) of the tenant's devices with no data since ``cutoff``."""

    # -- which process evaluates which devices -------------------------------------------------------
    @abstractmethod
    async def hold_shards(self, owner: str, now: datetime, lease: timedelta) -> tuple[set[int], int]:
        """Announce ``owner`` as alive until ``now + lease``, renew its shards, give back those above its fair
        share (the shards divided by the live owners) and take free or lapsed ones up to it. Return the
        shards it now holds until ``now + lease``, and the number of shards."""

    @abstractmethod
    async def release_shards(self, owner: str) -> None:
        """Give back every shard of ``owner`` and leave (a clean stop: others take them at once)."""

    @abstractmethod
    async def push_inbox(self, points: list[tuple[int, int, datetime, str, float]]) -> None:
        """Queue (shard, device pk, ts, key, value) points for the owner of their shard."""

    @abstractmethod
    async def peek_inbox(self, shards: list[int], limit: int) -> list[tuple[int, int, datetime, str, float]]:
        """The oldest queued (id, device pk, ts, key, value) points of these shards; they stay queued until
        ``drop_inbox``, so an owner that dies before evaluating them leaves them to the next."""

    @abstractmethod
    async def drop_inbox(self, ids: list[int]) -> None: ...

    # -- outbox --------------------------------------------------------------------------------------
    @abstractmethod
    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Take up to ``limit`` due notifications for ``lease``: no other process takes them meanwhile; if
        this one dies, they are due again when the lease ends."""

    @abstractmethod
    async def enqueue_claimed(
        self,
        tenant_id: int,
        channel_id: int,
        event: str,
        payload: dict[str, Any],
        idempotency_key: str,
        now: datetime,
        lease: timedelta,
    ) -> OutboxItem:
        """A notification sent at once by the caller (a channel's test): queued already claimed for ``lease``,
        so that ``finish_attempt`` records it in the delivery log like any other."""

    @abstractmethod
    async def finish_attempt(
        self,
        item: OutboxItem,
        now: datetime,
        *,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        retry_at: datetime | None,
    ) -> None:
        """Record the attempt; delivered when ``ok``, due again at ``retry_at``, failed for good when None."""

    @abstractmethod
    async def list_deliveries(self, tenant_id: int, channel_id: int, limit: int = 100) -> list[Delivery]: ...

    @abstractmethod
    async def outbox_counts(self) -> dict[str, int]:
        """Notifications by status (pending, delivered, failed)."""
