"""The cloud-to-device side of the store: commands and their lifecycle, and each device's desired state.

Kept apart from ``Store`` (each backend's store carries one as ``store.commands``). Every state change is
one conditional update: it applies only from the states ``domain.commands.ALLOWED_FROM`` lists, so two
processes (or a late ack racing the expiry sweep) can never move a command backwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from telemetra.domain.commands import Command, NewCommand

__all__ = ["CommandStore", "DesiredState"]

DesiredState = tuple[int, dict[str, Any], datetime]  # (version, state, updated at)


class CommandStore(ABC):
    @abstractmethod
    async def create_command(self, command: NewCommand) -> Command: ...

    @abstractmethod
    async def get_command(
        self, command_id: str, *, tenant_id: int | None = None, device_pk: int | None = None
    ) -> Command | None:
        """The command, if it belongs to the tenant (or device) given."""

    @abstractmethod
    async def list_commands(
        self, device_pk: int, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[Command], int]:
        """A device's commands, newest first, and the total count."""

    @abstractmethod
    async def pending_commands(self, device_pk: int, now: datetime, limit: int = 100) -> list[Command]:
        """The device's queued and sent commands that have not expired at ``now``, oldest first (not those
        published on seed 001's gateway topic)."""

    @abstractmethod
    async def transition(
        self,
        command_id: str,
        status: str,
        at: datetime,
        *,
        transport: str | None = None,
        result: Any = None,
        device_pk: int | None = None,
    ) -> Command | None:
        """Move a command to ``status`` if its current state allows it; None when it does not (or no such
        command of ``device_pk``)."""

    @abstractmethod
    async def expire_commands(self, now: datetime) -> int:
        """Mark every queued or sent command whose expiry has passed as expired; return how many."""

    # -- desired state -------------------------------------------------------------------------------
    @abstractmethod
    async def get_desired(self, device_pk: int) -> DesiredState | None: ...

    @abstractmethod
    async def set_desired(
        self, device_pk: int, state: dict[str, Any], now: datetime, expected_version: int | None = None
    ) -> DesiredState | None:
        """Replace the desired state and bump its version; None when ``expected_version`` is given and
        is not the current one."""
