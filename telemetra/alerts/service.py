"""Rules, channels and alerts as a tenant manages them; every lookup is scoped to the caller's tenant."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx

from telemetra.alerts.dispatcher import LEASE_S, TEST_EVENT, send_notification
from telemetra.alerts.engine import RuleEngine
from telemetra.domain.alerts import SECRET_FIELDS, SECRET_MASK, Alert, Channel, Rule
from telemetra.domain.rules import parse_definition
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.errors import AlertNotFound, ChannelNotFound, RuleNotFound, ValidationFailed
from telemetra.notify import DeliveryResult
from telemetra.notify.outbound import SMTP_PORTS, AddressRefused, OutboundPolicy
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["AlertService"]

WEBHOOK_SECRET_BYTES = 32
MAX_PROBLEMS_LISTED = 20  # of a rule's unknown channels and devices, in the answer's details
CONCURRENT_TESTS = 4


class AlertService:
    def __init__(self, store: Store, engine: RuleEngine, outbound: OutboundPolicy | None = None) -> None:
        self._store = store
        self.engine = engine
        self.outbound = outbound or OutboundPolicy()
        # Tests send at once, on request: a few at a time per process, the others wait their turn.
        self._tests = asyncio.Semaphore(CONCURRENT_TESTS)

    # -- rules ---------------------------------------------------------------------------------------
    async def _definition(self, tenant_id: int, doc: dict[str, Any]):
        try:
            definition = parse_definition(doc)
        except ValueError as exc:
            raise ValidationFailed(f"Invalid rule: {exc}", code="invalid_rule") from exc
        # A rule naming what it can never reach (another tenant's channel or device, or none) would be stored and
        # silently never notify or fire: refused, with the same words whether the thing is missing or not ours.
        problems: list[tuple[list[str], str]] = []
        for index, channel_id in enumerate(definition.channels):
            if await self._store.alerts.get_channel(channel_id, tenant_id) is None:
                problems.append((["channels", str(index)], f"channel {channel_id} does not exist in your tenant"))
        if definition.selector.device_ids:
            found = await self._store.get_devices(list(definition.selector.device_ids))
            for index, device_id in enumerate(definition.selector.device_ids):
                device = found.get(device_id)
                if device is None or device.tenant_id != tenant_id:
                    where = ["selector", "device_ids", str(index)]
                    problems.append((where, f"device {device_id!r} does not exist in your tenant"))
        if problems:
            shown = "; ".join(".".join(loc) + ": " + msg for loc, msg in problems[:3])
            details = [{"loc": loc, "msg": msg} for loc, msg in problems[:MAX_PROBLEMS_LISTED]]
            raise ValidationFailed(f"Invalid rule: {shown}", code="invalid_rule", details=details)
        return definition

    async def create_rule(self, tenant_id: int, name: str, doc: dict[str, Any], enabled: bool) -> Rule:
        rule = await self._store.alerts.create_rule(tenant_id, name, await self._definition(tenant_id, doc), enabled)
        self.engine.rules_changed()
        return rule

    async def update_rule(self, tenant_id: int, rule_id: int, name: str, doc: dict[str, Any], enabled: bool) -> Rule:
        definition = await self._definition(tenant_id, doc)
        rule = await self._store.alerts.update_rule(tenant_id, rule_id, name, definition, enabled)
        if rule is None:
            raise RuleNotFound()
        self.engine.rules_changed()
        return rule

    async def get_rule(self, tenant_id: int, rule_id: int) -> Rule:
        rule = await self._store.alerts.get_rule(tenant_id, rule_id)
        if rule is None:
            raise RuleNotFound()
        return rule

    async def delete_rule(self, tenant_id: int, rule_id: int) -> None:
        if not await self._store.alerts.delete_rule(tenant_id, rule_id):
            raise RuleNotFound()
        self.engine.rules_changed()

    # -- channels ------------------------------------------------------------------------------------
    async def create_channel(
        self, tenant_id: int, name: str, kind: str, config: dict[str, Any]
    ) -> tuple[Channel, str | None]:
        """Create a channel; for a webhook without a secret, generate one and return it (shown once)."""
        config = dict(config)
        generated = None
        if kind == "webhook" and not config.get("secret"):
            generated = config["secret"] = secrets.token_urlsafe(WEBHOOK_SECRET_BYTES)
        await self._check_channel(kind, config)
        return await self._store.alerts.create_channel(tenant_id, name, kind, config), generated

    async def _check_channel(self, kind: str, config: dict[str, Any]) -> None:
        """Refuse a configuration that cannot work, or names a destination the outbound policy refuses now.

        Where it leads is checked again at every delivery (DNS changes; the operator's allowance too).
        """
        from telemetra.notify import EmailConfig, WebhookConfig

        try:
            if kind == "webhook":
                webhook = WebhookConfig.from_json(config)
                url = httpx.URL(webhook.url)
                # The host as httpx will hand it to the connection: IDNA-encoded, IPv6 without brackets.
                host = url.raw_host.decode("ascii")
                port, usual_ports = url.port or (443 if url.scheme == "https" else 80), None
            else:
                email = EmailConfig.from_json(config)
                if email.ca_file is not None:
                    self.outbound.ca_path(email.ca_file)  # the same refusal whether or not the file exists
                host, port, usual_ports = email.host, email.port, SMTP_PORTS
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationFailed(f"Invalid {kind} channel: {exc}", code="invalid_channel") from exc
        try:
            await self.outbound.precheck(host, port, usual_ports=usual_ports)
        except AddressRefused as exc:
            raise ValidationFailed(f"Invalid {kind} channel: {exc}", code="outbound_address_refused") from exc

    async def get_channel(self, tenant_id: int, channel_id: int) -> Channel:
        channel = await self._store.alerts.get_channel(channel_id, tenant_id)
        if channel is None:
            raise ChannelNotFound()
        return channel

    async def update_channel(
        self, tenant_id: int, channel_id: int, name: str, kind: str, config: dict[str, Any]
    ) -> Channel:
        """Rename and reconfigure a channel. Its kind stays; a secret or password left out (or sent back masked)
        keeps the one it has: they were shown once and are masked since."""
        current = await self.get_channel(tenant_id, channel_id)
        if kind != current.kind:
            raise ValidationFailed(
                f"A channel's kind stays {current.kind}; create another channel for {kind}.", code="channel_kind_fixed"
            )
        config = dict(config)
        for field in SECRET_FIELDS:
            if config.get(field) in (None, "", SECRET_MASK) and current.config.get(field):
                config[field] = current.config[field]
        await self._check_channel(kind, config)
        updated = await self._store.alerts.update_channel(tenant_id, channel_id, name, config)
        if updated is None:
            raise ChannelNotFound()
        return updated

    async def delete_channel(self, tenant_id: int, channel_id: int) -> None:
        if not await self._store.alerts.delete_channel(tenant_id, channel_id):
            raise ChannelNotFound()

    # -- alerts --------------------------------------------------------------------------------------
    async def test_channel(self, tenant_id: int, channel_id: int) -> DeliveryResult:
        """Send a test notification through the channel's own sender now (the outbound policy applies) and
        record the attempt in its delivery log; the outcome, whatever it is, is returned, not raised."""
        channel = await self.get_channel(tenant_id, channel_id)
        now = utcnow()
        payload = {
            "event": TEST_EVENT,
            "channel": {"id": channel.id, "name": channel.name},
            "message": f"A test notification of channel '{channel.name}', sent on request at {isoformat(now)}.",
            "sent_at": isoformat(now),
        }
        key = f"test-{channel.id}-{uuid.uuid4().hex}"
        async with self._tests:
            item = await self._store.alerts.enqueue_claimed(
                tenant_id, channel.id, TEST_EVENT, payload, key, now, timedelta(seconds=LEASE_S)
            )
            async with self.outbound.http_client() as http:
                result = await send_notification(http, self.outbound, channel, item)
        await self._store.alerts.finish_attempt(
            item,
            utcnow(),
            ok=result.ok,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
            retry_at=None,  # a test is sent once
        )
        logger.info("channel %s tested: %s", channel.id, "delivered" if result.ok else result.error)
        return result

    async def acknowledge(self, tenant_id: int, alert_id: int) -> Alert:
        alert = await self._store.alerts.acknowledge(tenant_id, alert_id, utcnow())
        if alert is None:
            raise AlertNotFound()
        if alert.status == "acknowledged":
            self.engine.announce([alert])
        return alert
