"""Delivery of alert notifications: signed webhooks and SMTP mail, each attempt ending in a DeliveryResult.

The alerts dispatcher owns the outbox and calls these; nothing here touches the store.

    send_webhook(client, WebhookConfig, body, idempotency_key=, event=) -> DeliveryResult
    send_email(EmailConfig, subject, text, idempotency_key=, html=)   -> DeliveryResult
    next_delay(attempt) -> seconds until the retry of a retryable failure
"""

from __future__ import annotations

from telemetra.notify.backoff import MAX_ATTEMPTS, next_delay
from telemetra.notify.email import EmailConfig, build_message, message_id, send_email
from telemetra.notify.result import DeliveryResult
from telemetra.notify.signing import SIGNATURE_HEADER, sign, verify
from telemetra.notify.webhook import WebhookConfig, is_retryable_status, send_webhook

__all__ = [
    "DeliveryResult",
    "MAX_ATTEMPTS",
    "next_delay",
    "SIGNATURE_HEADER",
    "sign",
    "verify",
    "WebhookConfig",
    "send_webhook",
    "is_retryable_status",
    "EmailConfig",
    "build_message",
    "message_id",
    "send_email",
]
