"""The console's views of a tenant's fleet: the overview's counts, and the device list (search, filters,
keyset paging that stays fast at 100,000 devices).

Both routes need the permission `read` (role `viewer` or higher, or a tenant key of scope `full`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from telemetra.api.deps import ReadDep, ServicesDep
from telemetra.api.errors import error_responses
from telemetra.api.queries import QUERY_ERRORS, run_query
from telemetra.domain.ids import DEVICE_ID_PATTERN
from telemetra.domain.online import is_online
from telemetra.domain.rule_definitions import SEVERITIES
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.errors import ValidationFailed
from telemetra.store.console_reads import FleetFilter

router = APIRouter(prefix="/api/v1", tags=["console"], responses=error_responses(401, 403, 429, *QUERY_ERRORS))

OVERVIEW_SPAN = timedelta(hours=24)
MAX_PAGE = 200
MAX_CURSOR_CHARS = 400
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/overview", summary="The tenant's fleet at a glance")
async def overview(request: Request, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    """Devices online, offline and never seen; messages per minute of arrival over the last 24 hours (1440
    minutes, oldest first, zeros included); active (unacknowledged or acknowledged) alerts by severity; the
    ten devices that sent most messages since they were registered. Role: viewer."""
    console, tenant_id, now = services.store.console, principal.tenant_id, utcnow()
    first_minute = now.replace(second=0, microsecond=0) - OVERVIEW_SPAN + timedelta(minutes=1)

    async def read() -> dict[str, Any]:
        presence = await console.presence_counts(tenant_id, now, services.settings.online_window_s)
        counted = dict(await console.minute_counts(tenant_id, first_minute))
        severities = await console.active_alerts_by_severity(tenant_id)
        top = await console.top_senders(tenant_id)
        minutes = [first_minute + timedelta(minutes=n) for n in range(int(OVERVIEW_SPAN.total_seconds() // 60))]
        return {
            "devices": {"online": presence.online, "offline": presence.offline, "never_seen": presence.never_seen},
            "messages_per_minute": [{"t": isoformat(m), "count": counted.get(m, 0)} for m in minutes],
            "alerts_by_severity": {
                s: severities.get(s, 0) for s in (*SEVERITIES, *sorted(set(severities) - set(SEVERITIES)))
            },
            "top_devices": [{"device_id": d, "name": name, "count": count} for d, name, count in top],
        }

    return await run_query(request, services.settings, read)


def _cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": last_id})).decode().rstrip("=")


def _after(cursor: str | None) -> str | None:
    """The last id of the previous page, from the cursor that page gave; 422 ``invalid_cursor`` otherwise."""
    if cursor is None:
        return None
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = doc["after"]
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        after = None
    if not isinstance(after, str) or not DEVICE_ID_PATTERN.fullmatch(after):
        raise ValidationFailed("'cursor' is not one this list gave; start again without it", code="invalid_cursor")
    return after


@router.get("/fleet/devices", summary="The tenant's devices: search, filters, keyset paging")
async def fleet_devices(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    q: Annotated[str | None, Query(max_length=100, description="Prefix of the id, or of the name (any case).")] = None,
    type: Text = None,
    status: Text = None,
    location: Text = None,
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the page before.")
    ] = None,
) -> dict[str, Any]:
    """Devices in id order, `limit` a page, each with whether it is online, when it was last seen and its
    latest value per key (the first 32 keys by name); `next_cursor` gives the next page (null at the end).
    `total` counts the matches on the first page (null on later pages, or past 100,000). Role: viewer."""
    now, window = utcnow(), services.settings.online_window_s
    flt = FleetFilter(
        tenant_id=principal.tenant_id,
        now=now,
        default_offline_after_s=window,
        q=q or None,
        device_type=type,
        status=status,
        location=location,
        online=online,
        after=_after(cursor),
        limit=limit + 1,  # one more tells whether a next page exists
    )
    console = services.store.console

    async def read() -> dict[str, Any]:
        devices = await console.fleet_page(flt)
        more, devices = len(devices) > limit, devices[:limit]
        latest = await console.latest_of([d.pk for d in devices])
        total = await console.fleet_count(flt) if cursor is None else None
        return {
            "items": [
                {
                    "device_id": d.id,
                    "name": d.name,
                    "type": d.device_type,
                    "status": d.status,
                    "location": d.location,
                    "online": is_online(d, now, window),
                    "last_seen": isoformat(d.last_seen),
                    "latest": {key: value for key, (_, value) in latest.get(d.pk, {}).items()},
                }
                for d in devices
            ],
            "next_cursor": _cursor(devices[-1].id) if more else None,
            "total": total,
        }

    return await run_query(request, services.settings, read)
