-- Times are integer microseconds since the Unix epoch, UTC.
-- Rules, the alerts they raise, notification channels, and the outbox of notifications to deliver.

-- When a device last sent data (not a heartbeat, not a connection): what "no data" rules watch.
ALTER TABLE devices ADD COLUMN last_data_at INTEGER;

CREATE TABLE channels (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('webhook', 'email')),
    config      TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE rules (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    rule_id          INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_pk        INTEGER NOT NULL REFERENCES devices(pk) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'acknowledged', 'cleared')),
    count            INTEGER NOT NULL,
    first_value      REAL,
    last_value       REAL,
    first_ts         INTEGER NOT NULL,
    last_ts          INTEGER NOT NULL,
    message          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    cleared_at       INTEGER
);
-- One open alert per rule and device: a second process raising the same alert meets this index.
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, device_pk) WHERE status <> 'cleared';
CREATE INDEX alerts_tenant ON alerts (tenant_id, created_at);
CREATE INDEX alerts_device ON alerts (device_pk, last_ts);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER NOT NULL,
    channel_id       INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    alert_id         INTEGER,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claimed_until    INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    outbox_id    INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    channel_id   INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  REAL NOT NULL
);
CREATE INDEX deliveries_channel ON deliveries (channel_id, id);
