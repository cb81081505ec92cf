"""Deliver the outbox: claim due notifications, send them through their channel, record every attempt.

At least once: a notification is marked delivered only after its channel accepted it, and a claim is a
lease, so a process that dies mid-delivery leaves it due again when the lease ends. Receivers see every
redelivery with the same Idempotency-Key (webhook) or Message-ID (e-mail), so each notification once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import orjson

from telemetra.alerts import metrics
from telemetra.domain.alerts import Channel, OutboxItem
from telemetra.domain.timeparse import utcnow
from telemetra.notify import DeliveryResult, EmailConfig, WebhookConfig, next_delay, send_email, send_webhook
from telemetra.notify.backoff import MAX_ATTEMPTS
from telemetra.notify.outbound import OutboundPolicy
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["Dispatcher", "send_notification", "TEST_EVENT", "LEASE_S"]

CLAIM_BATCH = 20
# Longer than any channel timeout (at most 60 s): a claim must not lapse while its delivery is still being
# attempted. It is also how long a notification whose sender died waits before another process sends it.
LEASE_S = 120.0
TEST_EVENT = "channel.test"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        *,
        interval_s: float = 1.0,
        backoff_base_s: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
        lease_s: float = LEASE_S,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._store = store
        # Public addresses only unless the operator allowed more (TELEMETRA_OUTBOUND_ALLOW), checked at every
        # connection: a channel accepted yesterday may resolve elsewhere today, or the allowance be withdrawn.
        self._outbound = outbound or OutboundPolicy()
        self.lease = timedelta(seconds=lease_s)
        self.interval_s = interval_s
        self.backoff_base_s = backoff_base_s
        self.max_attempts = max_attempts
        self._http = self._outbound.http_client()

    async def close(self) -> None:
        await self._http.aclose()

    async def run(self) -> None:
        while True:
            try:
                while await self.deliver_due():
                    pass
            except Exception:  # the loop must outlive a failed pass (a database restart, say)
                logger.exception("notification delivery pass failed")
            await asyncio.sleep(self.interval_s)

    async def deliver_due(self) -> int:
        """One pass: deliver what is due now; return how many were attempted."""
        items = await self._store.alerts.claim_due(utcnow(), CLAIM_BATCH, self.lease)
        for item in items:
            await self._deliver(item)
        return len(items)

    async def _deliver(self, item: OutboxItem) -> None:
        channel = await self._store.alerts.get_channel(item.channel_id)
        if channel is None or not channel.enabled:
            result = DeliveryResult(
                ok=False,
                status_code=None,
                error="the channel was deleted or disabled",
                duration_ms=0.0,
                retryable=False,
            )
        else:
            result = await self._send(channel, item)
        attempt = item.attempts + 1
        retry_at = None
        if not result.ok and result.retryable and attempt < self.max_attempts:
            retry_at = utcnow() + timedelta(seconds=next_delay(attempt, base_s=self.backoff_base_s))
        await self._store.alerts.finish_attempt(
            item,
            utcnow(),
            ok=result.ok,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
            retry_at=retry_at,
        )
        kind = channel.kind if channel else "deleted"
        metrics.NOTIFICATIONS.labels(kind, "delivered" if result.ok else ("retry" if retry_at else "failed")).inc()
        if not result.ok:
            logger.warning(
                "notification %s via channel %s attempt %d failed: %s%s",
                item.id,
                item.channel_id,
                attempt,
                result.error,
                "" if retry_at else " (given up)",
            )

    async def _send(self, channel: Channel, item: OutboxItem) -> DeliveryResult:
        return await send_notification(self._http, self._outbound, channel, item)


async def send_notification(
    http: httpx.AsyncClient, outbound: OutboundPolicy, channel: Channel, item: OutboxItem
) -> DeliveryResult:
    """Hand one notification to its channel's sender (webhook or e-mail); never raises."""
    try:
        if channel.kind == "webhook":
            webhook = WebhookConfig.from_json(channel.config)
            return await send_webhook(
                http, webhook, orjson.dumps(item.payload), idempotency_key=item.idempotency_key, event=item.event
            )
        email = EmailConfig.from_json(channel.config)
        subject, text = _mail(item)
        return await send_email(email, subject, text, idempotency_key=item.idempotency_key, outbound=outbound)
    except ValueError as exc:  # a stored configuration that no longer validates
        return DeliveryResult(ok=False, status_code=None, error=str(exc), duration_ms=0.0, retryable=False)


MAIL_FIELDS = ("status", "severity", "key", "count", "first_value", "last_value", "first_ts", "last_ts", "cleared_at")


def device_label(alert: dict) -> str:
    """The device as people know it: its name, with its id (the id alone when it has no other name)."""
    device_id, name = alert.get("device_id"), alert.get("device_name")
    return f"{name} ({device_id})" if name and name != device_id else str(device_id)


def mail_text(event: str, alert: dict) -> tuple[str, str]:
    """The subject and plain-text body of the e-mail of ``event``; a field the alert does not have (yet) is
    left out, never printed as None."""
    state = "cleared" if event == "alert.cleared" else str(alert.get("severity") or "alert").upper()
    subject = f"[Telemetra] {state}: {alert.get('rule')} on {device_label(alert)}"
    lines = [
        alert.get("message") or subject,
        "",
        f"device: {device_label(alert)}",
        *(f"{name}: {alert[name]}" for name in MAIL_FIELDS if alert.get(name) not in (None, "")),
        "",
        f"Alert {alert.get('id')}, event {event}.",
    ]
    return subject, "\n".join(lines)


def _mail(item: OutboxItem) -> tuple[str, str]:
    if item.event == TEST_EVENT:
        channel = item.payload.get("channel", {})
        return f"[Telemetra] test of channel {channel.get('name')}", str(item.payload.get("message", ""))
    return mail_text(item.event, item.payload.get("alert", {}))
