"""What a channel receives, documented: the webhook request (the OpenAPI document's `webhooks`) and the e-mail.

Documentation only: the body is built by ``domain.alerts.notification_payload`` and the mail by
``alerts.dispatcher.mail_text``; tests send both to real receivers and check them against what is said here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetra.api.alert_schemas import ALERT_OUT_EXAMPLE, AlertOut

__all__ = ["NotificationBody", "EMAIL_DESCRIPTION", "webhooks_section"]

EVENTS = ("alert.raised", "alert.cleared")

EMAIL_DESCRIPTION = """An **e-mail channel** sends each notification as one plain-text message to the channel's
`recipients`, from its `sender`, with `Message-ID: <{Idempotency-Key}@telemetra>` (the same on every
redelivery).

- Subject: `[Telemetra] {SEVERITY}: {rule} on {device}` when an alert is raised (the severity in capitals, e.g.
  `MAJOR`), `[Telemetra] cleared: {rule} on {device}` when it clears; `{device}` is the device's name followed by
  its id in brackets (`Boiler 12 (boiler-12)`), or the id alone when the device has no other name.
- Body: the alert's message, a blank line, `device: {device}`, then one `name: value` line for each of `status`,
  `severity`, `key`, `count`, `first_value`, `last_value`, `first_ts`, `last_ts` and `cleared_at` that the alert
  has (a field it does not have, such as `cleared_at` of an active alert, is left out), a blank line, and
  `Alert {id}, event {alert.raised|alert.cleared}.`
- The delivery log (`GET /api/v1/channels/{id}/deliveries`) gives `status_code` 250 when the server took the
  message, and the server's own reply code when it refused it.
"""

WEBHOOK_DESCRIPTION = """A **webhook channel** receives each notification as one JSON POST to the channel's
`url` (redirects are not followed). Headers:

- `X-Telemetra-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body with the channel's secret; check it before
  trusting the body.
- `X-Telemetra-Event`: `alert.raised` or `alert.cleared`, as in the body.
- `Idempotency-Key`: the same on every redelivery of one notification (`alert-{id}-{event}-channel-{id}`), so a
  receiver can drop repeats: delivery is at least once.
- `Content-Type: application/json`, `User-Agent: telemetra/<version>`.

Any 2xx answer counts as delivered. 408, 425, 429 and 5xx answers, and no answer, are retried with an
exponential back-off (a `Retry-After` is honoured) up to `TELEMETRA_NOTIFY_MAX_ATTEMPTS`; any other answer gives
up at once. The notifications of one alert reach one channel in order: `alert.cleared` is sent only once the
`alert.raised` before it was delivered or given up.
"""


class NotificationBody(BaseModel):
    """The JSON body of a webhook notification."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"event": "alert.raised", "tenant_id": 4, "alert": ALERT_OUT_EXAMPLE}]},
    )
    event: Literal["alert.raised", "alert.cleared"]
    tenant_id: int = Field(description="The tenant whose rule raised the alert.")
    alert: AlertOut = Field(description="The alert as it stands after the event (as `GET /api/v1/alerts` lists it).")


def webhooks_section() -> dict[str, Any]:
    """The OpenAPI 3.1 `webhooks` entries: one per event, the request Telemetra sends to a webhook channel."""
    headers = [
        ("X-Telemetra-Signature", "`sha256=` and the hex HMAC-SHA256 of the raw body with the channel's secret."),
        ("X-Telemetra-Event", "The event: `alert.raised` or `alert.cleared`."),
        ("Idempotency-Key", "The same on every redelivery of one notification."),
    ]
    section: dict[str, Any] = {}
    for event in EVENTS:
        section[event] = {
            "post": {
                "summary": f"The notification of {event} to a webhook channel",
                "description": WEBHOOK_DESCRIPTION,
                "tags": ["alerts"],
                "parameters": [
                    {"name": name, "in": "header", "required": True, "description": text, "schema": {"type": "string"}}
                    for name, text in headers
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotificationBody"}}},
                },
                "responses": {
                    "2XX": {"description": "Delivered."},
                    "default": {"description": "408, 425, 429 and 5xx are retried; any other answer gives up."},
                },
            }
        }
    return section
