"""Receive-time stamps that never collide for one device."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

__all__ = ["ReceiveClock"]

ONE_MICROSECOND = timedelta(microseconds=1)
# Devices remembered; one that falls out of the memory has not sent for a long time, so "now" is
# already later than anything it was stamped with.
MAX_REMEMBERED_DEVICES = 200_000


class ReceiveClock:
    """Stamp messages without a timestamp with the receive time, strictly increasing per device.

    Two messages of one device arriving in the same microsecond would otherwise share (device, key, ts)
    and the second would overwrite the first although both were acknowledged.
    """

    def __init__(self) -> None:
        self._last: OrderedDict[int, datetime] = OrderedDict()

    def stamp(self, device_pk: int, now: datetime) -> datetime:
        last = self._last.get(device_pk)
        ts = now if last is None or now > last else last + ONE_MICROSECOND
        self._last[device_pk] = ts
        self._last.move_to_end(device_pk)
        if len(self._last) > MAX_REMEMBERED_DEVICES:
            self._last.popitem(last=False)
        return ts
