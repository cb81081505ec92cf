"""`telemetra mqtt-sync`: write Mosquitto's password and ACL files from the device registry.

Devices log in to the broker with username = device id and password = their API key; the broker checks
the key against the `$7$` hash stored when the key was made (``domain.mosquitto_auth``). Only usable
keys are written: a revoked or expired key stops working at the broker with the next sync.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from telemetra.domain.mosquitto_auth import acl_file, mosquitto_hash, password_file, verify_mosquitto_hash
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["BrokerFiles", "SyncReport", "sync_mosquitto_files"]


@dataclass(frozen=True)
class BrokerFiles:
    password_path: Path
    acl_path: Path
    service_user: str
    service_password: str = field(repr=False)
    send_topic: str = "send_command"  # TELEMETRA_SEND_COMMAND_TOPIC: the worker writes it, devices may read theirs


@dataclass
class SyncReport:
    devices: int = 0
    skipped: list[str] = field(default_factory=list)  # device ids the broker's file format cannot hold
    changed: bool = False
    reloaded: bool = False


async def sync_mosquitto_files(
    store: Store, files: BrokerFiles, now: datetime, reload_pid: int | None = None
) -> SyncReport:
    """Rewrite both files when the registry changed; then ask the broker (``reload_pid``) to reload them."""
    report = SyncReport()
    entries: dict[str, str] = {}
    for device_id, broker_hash in await store.broker_credentials(now):
        if ":" in device_id or device_id == files.service_user:
            # ':' ends a username in Mosquitto's file; a device named like the service user would take
            # its rights. Such a device can still use HTTP; it is reported, not silently dropped.
            report.skipped.append(device_id)
            continue
        entries[device_id] = broker_hash  # the newest key of a device wins (rows come oldest first)
    report.devices = len(entries)
    device_lines = password_file(entries.items())
    acl = acl_file(files.service_user, files.send_topic)
    # The service user's hash has a fresh salt each time: keep the written line while it still verifies,
    # so that an unchanged registry leaves both files (and the broker) alone.
    written_devices, written_service = _split_written(files.password_path)
    if written_service is None or not _service_line_ok(written_service, files):
        written_service = password_file([(files.service_user, mosquitto_hash(files.service_password))])
        written_devices = None
    if written_devices != device_lines:
        _replace(files.password_path, device_lines + written_service)
        report.changed = True
    if not files.acl_path.exists() or files.acl_path.read_text() != acl:
        _replace(files.acl_path, acl)
        report.changed = True
    if report.changed and reload_pid is not None:
        os.kill(reload_pid, signal.SIGHUP)  # Mosquitto rereads password_file and acl_file on SIGHUP
        report.reloaded = True
    if report.skipped:
        logger.warning(
            "mqtt-sync: %d device(s) cannot log in to the broker (id holds ':' or is the service user): %s",
            len(report.skipped),
            ", ".join(report.skipped[:10]),
        )
    logger.info("mqtt-sync: %d device(s), files %s", report.devices, "rewritten" if report.changed else "unchanged")
    return report


def _split_written(path: Path) -> tuple[str | None, str | None]:
    """The device lines and the service user's line (written last) of a file we wrote earlier."""
    if not path.exists():
        return None, None
    lines = path.read_text().splitlines(keepends=True)
    return ("".join(lines[:-1]), lines[-1]) if lines else (None, None)


def _service_line_ok(line: str, files: BrokerFiles) -> bool:
    username, _, line_hash = line.rstrip("\n").partition(":")
    try:
        return username == files.service_user and verify_mosquitto_hash(files.service_password, line_hash)
    except ValueError:
        return False


def _replace(path: Path, content: str) -> None:
    """Write atomically, readable by the file's current owner only (the broker's user when it exists)."""
    tmp = path.with_name(f".{path.name}.tmp")
    owner = path.stat() if path.exists() else None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    if owner is not None and os.geteuid() == 0:
        os.chown(tmp, owner.st_uid, owner.st_gid)  # a broker running as its own user must still read it
    os.replace(tmp, path)
