"""The Store interface: everything Telemetra keeps, behind one set of async methods.

Two backends implement it: ``SqliteStore`` (the embedded default) and ``PostgresStore`` (production).
The store never knows who calls it; it speaks domain records and raises ``telemetra.errors`` types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from telemetra.domain.models import ApiKey, Device, KeyKind, KeyScope, StoredMessage, TelemetryMessage, Tenant
from telemetra.domain.rollup import Aggregate

if TYPE_CHECKING:
    from telemetra.store.alerts_base import AlertStore
    from telemetra.store.commands_base import CommandStore
    from telemetra.store.console_reads import ConsoleReads
    from telemetra.store.users_base import UserStore
    from telemetra.store.watches_base import WatchStore

__all__ = [
    "Store",
    "NewKey",
    "NewDevice",
    "DeviceFilter",
    "DashboardCounts",
    "PointValue",
    "HistoryRequest",
    "LIVENESS_COLUMNS",
    "PYTHON_DATA_ERRORS",
]

PointValue = tuple[datetime, Any]
# Device columns that only record signs of life (a heartbeat, the broker's connection time): a change of them
# alone leaves every cached copy of the device good enough, so it does not move the credential epoch.
LIVENESS_COLUMNS = frozenset({"last_seen", "connection_at"})
# What a write raises in Python, before the database, for a value it cannot encode (a lone surrogate, an
# integer past 64 bits in a JSON value) or that the code did not foresee (a NUL-bearing msg_id came back
# from SQLite cut short: a KeyError). It comes from the data, so the same data raises it again: each backend
# turns it, with its database's own data errors, into UnstorableMessage (see ``Store.write_telemetry``).
PYTHON_DATA_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, KeyError, OverflowError)


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """The newest ``limit`` points of one device and key in [start, before); no start: from the first."""

    device_pk: int
    key: str
    start: datetime | None
    before: datetime
    limit: int


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key to store: its hash and visible prefix, never the key."""

    kind: KeyKind
    hash: bytes
    prefix: str
    tenant_id: int | None = None
    device_pk: int | None = None
    scope: KeyScope = "full"
    name: str = ""
    expires_at: datetime | None = None
    broker_hash: str | None = None  # the MQTT broker's hash of a device key (see domain.mosquitto_auth)


@dataclass(frozen=True, slots=True)
class NewDevice:
    id: str
    tenant_id: int
    name: str
    description: str = ""
    device_type: str = "sensor"
    status: str = "active"
    location: str | None = None
    firmware_version: str | None = None
    hardware_version: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    tenant_id: int | None = None
    status: str | None = None
    device_type: str | None = None
    search: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class RetentionPreview:
    """What retention would delete now: per tenant that keeps its data a limited time, the rows older than its
    cutoff, and the whole monthly partitions (PostgreSQL) that would go."""

    tenants: list[tuple[int, int, datetime, int, int]]  # (tenant id, days kept, cutoff, points, messages)
    partitions: list[str]


@dataclass(frozen=True, slots=True)
class DashboardCounts:
    tenants: int
    devices_by_status: dict[str, int]
    devices_by_type: dict[str, int]
    online: int
    messages_total: int
    messages_since: int
    points_today: int


class Store(ABC):
    """Persistence for tenants, keys, devices and telemetry."""

    alerts: AlertStore  # rules, channels, alerts and the notification outbox (``store.alerts_base``)
    commands: CommandStore  # commands to devices and desired state (``store.commands_base``)
    watches: WatchStore  # the monitoring API's watches (``store.watches_base``)
    console: ConsoleReads  # the console's fleet list and overview counts (``store.console_reads``)
    users: UserStore  # people who sign in and their sessions (``store.users_base``)

    backend: str

    # -- lifecycle ---------------------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect; the schema must already be migrated (see ``migrate``)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the database does not answer."""

    async def maintain(self, now: datetime) -> None:
        """Do periodic upkeep: retention (PostgreSQL also creates the coming partitions)."""
        await self.apply_retention(now)

    # -- tenants -----------------------------------------------------------------------------------
    @abstractmethod
    async def create_tenant(self, name: str) -> Tenant:
        """Create a tenant; TenantNameTaken when the name is used."""

    @abstractmethod
    async def get_tenant(self, tenant_id: int) -> Tenant | None: ...

    @abstractmethod
    async def get_tenant_by_name(self, name: str) -> Tenant | None: ...

    @abstractmethod
    async def list_tenants(self) -> list[tuple[Tenant, int]]:
        """Return every tenant with its device count."""

    @abstractmethod
    async def set_tenant_retention(self, tenant_id: int, days: int | None) -> None:
        """Keep the tenant's raw telemetry ``days`` days (None: for ever)."""

    @abstractmethod
    async def apply_retention(self, now: datetime) -> tuple[int, list[str]]:
        """Delete raw points and messages past their tenant's retention; return (rows deleted, partitions
        dropped). Rollups are kept."""

    @abstractmethod
    async def preview_retention(self, now: datetime) -> RetentionPreview:
        """What ``apply_retention(now)`` would delete, deleting nothing (``telemetra retention --dry-run``)."""

    # -- keys --------------------------------------------------------------------------------------
    @abstractmethod
    async def create_key(self, key: NewKey) -> ApiKey: ...

    @abstractmethod
    async def find_key(self, key_hash: bytes) -> ApiKey | None:
        """Return the key whose hash is ``key_hash`` (usable or not)."""

    @abstractmethod
    async def find_credentials(self, key_hash: bytes) -> tuple[ApiKey, Device | None] | None:
        """Return the key whose hash is ``key_hash`` (usable or not) with, for a device key, its device (None
        when that device is gone), in one indexed lookup: what authenticating a request reads when its key is
        not in memory (a device's first request after a start)."""

    @abstractmethod
    async def get_key(self, key_id: int) -> ApiKey | None: ...

    @abstractmethod
    async def list_keys(
        self, *, tenant_id: int | None = None, device_pk: int | None = None, kind: KeyKind | None = None
    ) -> list[ApiKey]: ...

    @abstractmethod
    async def revoke_key(self, key_id: int, at: datetime) -> bool:
        """Revoke a key (moving the credential epoch); False when it does not exist or was already revoked."""

    @abstractmethod
    async def expire_key(self, key_id: int, at: datetime) -> bool:
        """Make a usable key expire at ``at`` (sooner only; moving the credential epoch); False when it is revoked
        or already expired by then."""

    @abstractmethod
    async def credential_epoch(self) -> int:
        """The counter that every change of a key or a device that authentication caches moves (a key revoked
        or given an expiry, a device changed or deleted), in the transaction of that change."""

    @abstractmethod
    async def broker_credentials(self, now: datetime) -> list[tuple[str, str]]:
        """(device id, broker hash) of every device key usable at ``now``: not revoked, not expired."""

    @abstractmethod
    async def record_activity(
        self, key_usage: dict[int, tuple[int, datetime]], device_seen: dict[int, datetime]
    ) -> None:
        """Add usage counts and last-used times to keys, and last-seen times to devices."""

    # -- device passwords (seed 003's login) ---------------------------------------------------------
    @abstractmethod
    async def set_device_password(self, device_pk: int, password_hash: str, credential_id: str, at: datetime) -> int:
        """Set (or replace) a device's password hash and its random id; return its new version (1, 2, ...)."""

    @abstractmethod
    async def device_password(self, device_pk: int) -> tuple[str, int, str] | None:
        """Return a device's (password hash, version, credential id), None when it has no password."""

    # -- rate limits -----------------------------------------------------------------------------------
    @abstractmethod
    async def rate_limit_overrides(self) -> list[tuple[int, int | None, str, str]]:
        """Every (tenant id, device pk or None, limit name, rate) set in place of a default."""

    @abstractmethod
    async def set_rate_limit_overrides(self, tenant_id: int, device_pk: int | None, rates: dict[str, str]) -> None:
        """Replace the overrides of a tenant (device_pk None) or of one of its devices by ``rates``."""

    # -- devices -----------------------------------------------------------------------------------
    @abstractmethod
    async def create_device(self, device: NewDevice, key: NewKey) -> Device:
        """Create a device and its first key in one transaction."""

    # A looked-up id comes from outside (a path, a body, a topic, a login). One without the form of a device
    # id (``domain.ids``) names no device, and is answered None without a query: a NUL in it, for one,
    # would fail the query on PostgreSQL instead of finding nothing.
    @abstractmethod
    async def get_device(self, device_id: str) -> Device | None:
        """Return the device of ``device_id``, or None."""

    @abstractmethod
    async def get_device_by_pk(self, pk: int) -> Device | None: ...

    @abstractmethod
    async def get_devices(self, device_ids: list[str]) -> dict[str, Device]:
        """Return the devices among ``device_ids`` that exist, by id (ids without a device id's form skipped)."""

    async def get_devices_by_pk(self, pks: list[int]) -> dict[int, Device]:
        """Return the devices among ``pks`` that exist, by pk (one lookup each unless a backend does better)."""
        found = {pk: await self.get_device_by_pk(pk) for pk in sorted(set(pks))}
        return {pk: device for pk, device in found.items() if device is not None}

    @abstractmethod
    async def list_devices(self, flt: DeviceFilter) -> tuple[list[Device], int]:
        """Return a page of devices and the total matching count, newest first."""

    @abstractmethod
    async def update_device(self, pk: int, fields: dict[str, Any]) -> Device:
        """Set the given columns (name, status, attributes, ...) and updated_at; any column but the
        ``LIVENESS_COLUMNS`` moves the credential epoch."""

    @abstractmethod
    async def delete_device(self, pk: int) -> None:
        """Delete a device with its keys and telemetry (moving the credential epoch)."""

    @abstractmethod
    async def presence_changes(
        self, now: datetime, default_offline_after_s: int, device_pk: int | None = None
    ) -> list[tuple[Device, bool]]:
        """Record every device (or just ``device_pk``) whose online status differs from the one last
        announced, and return each with its new status; a change is returned to one caller only."""

    @abstractmethod
    async def device_stats(self, pk: int) -> tuple[int, datetime | None, datetime | None]:
        """Return the message count and the first and last message times of a device."""

    # -- telemetry ---------------------------------------------------------------------------------
    @abstractmethod
    async def write_telemetry(self, messages: list[TelemetryMessage], received_at: datetime) -> None:
        """Write messages, their points and latest values in one transaction; set each message's id.

        Points are unique per (device, key, ts): a later write replaces an earlier one. It may be called for
        several batches at once: on PostgreSQL each is written on its own connection; on SQLite they queue on
        the single writer's thread, the next starting as the previous commits.

        Raises ``UnstorableMessage`` when the database refuses the batch for what it holds (a NUL character
        in text, a number out of range, a constraint): the same batch would fail again, a part of it may
        not. Anything else (``StoreUnavailable``, a timeout, a lost connection) says the database could not
        write at all: retry later.
        """

    @abstractmethod
    async def list_messages(
        self,
        *,
        device_pk: int | None = None,
        msg_type: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[StoredMessage], int]:
        """Return a page of stored messages, newest first, and the total matching count."""

    @abstractmethod
    async def query_points(
        self,
        device_pk: int,
        keys: list[str] | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        descending: bool,
    ) -> dict[str, list[PointValue]]:
        """Return points per key in [start, end), at most ``limit`` per key."""

    async def recent_points(self, requests: list[HistoryRequest]) -> list[list[PointValue]]:
        """For each request, its points newest first (one query each unless a backend does better)."""
        found = []
        for r in requests:
            points = await self.query_points(r.device_pk, [r.key], r.start, r.before, r.limit, True)
            found.append(points.get(r.key, []))
        return found

    @abstractmethod
    async def latest_values(self, device_pk: int) -> dict[str, PointValue]: ...

    # -- analytics (rollups are UTC hours; times are aware datetimes) -------------------------------
    @abstractmethod
    async def hourly_rollups(
        self, device_pks: list[int], key: str, start: datetime, end: datetime
    ) -> list[tuple[int, datetime, Aggregate]]:
        """(device, hour, statistics) of ``key`` for the hours starting in [start, end), by device then hour:
        exact, from the rollups before the seal mark and from raw points after it."""

    @abstractmethod
    async def rollup_totals(
        self, device_pks: list[int], key: str, start: datetime, end: datetime
    ) -> dict[int, Aggregate]:
        """Per device, the statistics of ``key`` over the hours starting in [start, end), summed in the database
        (exact, as ``hourly_rollups``)."""

    @abstractmethod
    async def seal_rollups(
        self, until: datetime, max_slice: timedelta = timedelta(hours=1)
    ) -> tuple[datetime, datetime, int]:
        """Merge the statistics of the points from the seal mark up to ``until`` (at most ``max_slice`` of
        time) into the hourly rollups and move the mark there; return (old mark, new mark, rows merged)."""

    @abstractmethod
    async def numeric_series(
        self, device_pk: int, key: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        """The numeric points of one device and key in [start, end), oldest first."""

    @abstractmethod
    async def sample_before(self, device_pk: int, key: str, ts: datetime) -> tuple[datetime, float] | None:
        """The last numeric point of the device and key before ``ts`` (a value carried into a range)."""

    @abstractmethod
    async def energy_hours(
        self, key: str, start: datetime, end: datetime, *, device_pk: int | None = None, tenant_id: int | None = None
    ) -> dict[datetime, tuple[float, float]]:
        """Stored energy (Wh, covered seconds) per UTC hour in [start, end) of one device or a whole tenant."""

    @abstractmethod
    async def latest_numeric(self, device_pks: list[int], key: str) -> dict[int, tuple[datetime, float]]:
        """The newest numeric value of ``key`` per device (the open step of a power series)."""

    @abstractmethod
    async def numeric_keys(self, device_pk: int) -> list[str]:
        """The device's keys whose newest value is a number, by name."""

    @abstractmethod
    async def rebuild_rollups(self, since: datetime | None) -> tuple[int, int]:
        """Recompute every rollup of hours from ``since`` (all when None) from raw points; return the
        (statistics, energy) rows written."""

    @abstractmethod
    async def dashboard(self, now: datetime, online_since: datetime, day_start: datetime) -> DashboardCounts: ...
