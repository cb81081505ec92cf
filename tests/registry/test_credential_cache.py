"""The authentication cache: what it serves, and when it must not."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from telemetra.domain.models import ApiKey, Device
from telemetra.registry.credential_cache import CredentialCache

KEY = ApiKey(
    id=1,
    kind="tenant",
    prefix="tlmt_abc",
    tenant_id=1,
    device_pk=None,
    scope="full",
    name="",
    created_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
    expires_at=None,
    revoked_at=None,
    last_used_at=None,
    usage_count=0,
)


def test_a_lookup_that_a_clear_overtook_is_not_kept() -> None:
    cache = CredentialCache(ttl_s=300)
    generation = cache.generation  # the lookup starts reading the database...
    cache.clear()  # ...a revocation clears the cache before the read returns...
    cache.put(b"h", KEY, None, generation)  # ...so what it read may predate the revocation
    assert cache.get(b"h") is None
    cache.put(b"h", KEY, None, cache.generation)
    assert cache.get(b"h") == (KEY, None)


def test_entries_last_their_ttl_and_the_oldest_goes_first() -> None:
    cache = CredentialCache(ttl_s=0.05, max_entries=2)
    for name in (b"a", b"b", b"c"):
        cache.put(name, KEY, None, cache.generation)
    assert cache.get(b"a") is None and cache.get(b"c") == (KEY, None)
    time.sleep(0.06)
    assert cache.get(b"c") is None
    off = CredentialCache(ttl_s=0)
    off.put(b"a", KEY, None, off.generation)
    assert off.get(b"a") is None


def test_a_cache_that_follows_the_epoch_serves_only_while_it_was_read_recently() -> None:
    cache = CredentialCache(ttl_s=300, follows_epoch=True)
    cache.put(b"a", KEY, None, cache.generation)
    assert cache.get(b"a") is None  # the epoch was never read
    cache.epoch_read(7, time.monotonic() + 60)
    cache.put(b"a", KEY, None, cache.generation)
    assert cache.get(b"a") == (KEY, None)
    cache.epoch_read(7, time.monotonic() + 60)  # unchanged: entries stay
    assert cache.get(b"a") == (KEY, None)
    cache.epoch_read(7, time.monotonic() - 1)  # not read again in time (the watcher stalled)
    assert cache.get(b"a") is None
    cache.epoch_read(8, time.monotonic() + 60)  # moved elsewhere: everything is read again
    assert cache.get(b"a") is None


def test_devices_follow_the_same_rules_as_keys() -> None:
    device = Device(pk=1, id="d1", tenant_id=1, name="d1")
    cache = CredentialCache(ttl_s=300, follows_epoch=True)
    assert cache.devices({"d1"}) == ({}, ["d1"])  # the epoch was never read
    cache.epoch_read(1, time.monotonic() + 60)
    stale = cache.generation
    cache.clear()
    cache.put_devices([device], stale)  # read before a change that cleared the cache: not kept
    assert cache.devices({"d1", "d2"})[0] == {}
    cache.put_devices([device], cache.generation)
    assert cache.devices({"d1", "d2"}) == ({"d1": device}, ["d2"])
    cache.epoch_read(2, time.monotonic() + 60)  # a device changed elsewhere
    assert cache.devices({"d1"}) == ({}, ["d1"])
