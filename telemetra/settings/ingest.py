"""Settings of ingest: what a message may hold, devices' presence, authentication caching, the writer, rollups."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IngestSettings(BaseModel):
    """Message limits, presence, the ingest writer and rollups (a group of ``Settings``)."""

    open_registration: bool = Field(
        False, description="Let devices register without a key; they land in the `default` tenant."
    )
    pull_url: str | None = Field(
        None,
        description="An upstream IoT objects API (seed 000's shapes: `/iot_objects`, `/iot_objects/{id}`, "
        "`/iot_data/{id}`) that `serve` polls: each object becomes a device of the tenant named after its "
        "client, created on first sight; its current metrics are stored with the upstream's timestamp.",
    )
    pull_every_s: float = Field(10.0, gt=0, le=86_400, description="Seconds between two polls of TELEMETRA_PULL_URL.")
    pull_clients: str = Field(
        "", description="Only these clients (comma-separated) of TELEMETRA_PULL_URL; empty: every client."
    )
    pull_concurrency: int = Field(8, ge=1, le=256, description="Requests to TELEMETRA_PULL_URL in flight at once.")
    pull_timeout_s: float = Field(
        5.0, gt=0, le=300, description="How long one request to TELEMETRA_PULL_URL may take before it counts as slow."
    )
    keep_raw_messages: bool = Field(
        True, description="Keep each accepted message as sent (GET /api/v1/devices/telemetry), besides its points."
    )
    sqlite_cache_mb: int = Field(
        64,
        ge=2,
        le=4096,
        description="Page cache of the SQLite connection that writes, in MiB (filled as "
        "pages are used). Smaller on a device short of memory; ingest slows as "
        "the stored series outgrow it.",
    )
    max_keys_per_message: int = Field(256, ge=1, description="Most values one telemetry message may carry.")
    max_key_length: int = Field(128, ge=1, description="Longest telemetry key name, in characters.")
    max_json_depth: int = Field(
        8, ge=1, description="Deepest nesting of objects and arrays in a body or an MQTT or NATS payload."
    )
    max_future_skew_s: int = Field(
        86_400, ge=0, description="How far in the future a message timestamp may lie, in seconds."
    )
    oldest_timestamp_year: int = Field(
        2000, ge=1970, description="Timestamps before 1 January of this year are refused."
    )
    online_window_s: int = Field(300, ge=1, description="A device seen within this many seconds counts as online.")
    presence_check_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="How often devices that fell silent past their `offline_after_s` are reported offline, in seconds.",
    )
    activity_flush_interval_s: float = Field(
        2.0, gt=0, description="How often key usage counts and device last-seen times reach the database."
    )
    auth_cache_ttl_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="How long an authenticated key (and its device), or a device a batch "
        "names, is kept in memory. A change through this process applies at "
        "once, through another within about `auth_epoch_poll_s`. 0: off.",
    )
    auth_epoch_poll_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often each process reads the credential epoch, which every key or "
        "device change moves, and empties its authentication cache when it moved.",
    )
    pg_pool_size: int = Field(10, ge=1, description="Connections in the PostgreSQL pool.")
    ingest_max_batch_messages: int = Field(
        2000, ge=1, description="Most messages the writer commits in one transaction."
    )
    ingest_writers: int = Field(
        2,
        ge=1,
        le=8,
        description="Batches in the store's hands at once: on PostgreSQL each is written on its own "
        "connection; on SQLite they wait in turn on the single writer, the next "
        "starting as the previous commits. A free writer commits what is queued at once; "
        "while all are busy, what arrives gathers for the next transaction.",
    )
    ingest_max_queue_messages: int = Field(
        20_000,
        ge=1,
        description="Most messages waiting for the writer; past it HTTP answers 503 and the "
        "broker sources stop pulling.",
    )
    # Issue 18: one tenant's load never turns another's requests away; a stopping process never hangs.
    ingest_tenant_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of TELEMETRA_INGEST_MAX_QUEUE_MESSAGES one tenant's HTTP messages may "
        "hold; past it that tenant alone gets 429 (code tenant_queue_full), and the "
        "others still get in. 1 turns the per-tenant share off.",
    )
    ingest_stop_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How long a stopping `serve` or `worker` gives the messages in hand to "
        "commit and be acknowledged, in seconds; what is left then stays "
        "unacknowledged (the broker sends it again) and the process exits.",
    )
    rollup_seal_lag_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="How far behind the clock the hourly statistics are sealed, in seconds: "
        "points older than this when they arrive are merged by their own batch "
        "(slower); newer ones wait for the sealer, which runs every few seconds.",
    )
    batch_max_messages: int = Field(5000, ge=1, description="Most messages in one POST /api/v1/telemetry/batch.")
    simulate_devices: int = Field(
        0,
        ge=0,
        le=1000,
        description="Demo devices simulated inside `telemetra serve` (tenant `demo`), one "
        "message each every 5 s; `make run` uses 5.",
    )
    energy_keys: str = Field(
        "instant_power", description="Power keys (W) whose energy (Wh per hour) is kept as a rollup, comma-separated."
    )
    energy_max_hold_s: float = Field(
        3600,
        gt=0,
        le=7 * 86400,
        description="How long a power value holds without a newer one; the rest of a "
        "longer gap counts as unknown. A change applies to new data; "
        "`telemetra rollup rebuild` applies it to the past.",
    )
