-- Times are integer microseconds since the Unix epoch, UTC.
CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE devices (
    pk                INTEGER PRIMARY KEY,          -- integer surrogate used by the hot tables
    id                TEXT NOT NULL UNIQUE,         -- the string id the API speaks, unique across tenants
    tenant_id         INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    device_type       TEXT NOT NULL DEFAULT 'sensor',
    status            TEXT NOT NULL DEFAULT 'active',
    location          TEXT,
    firmware_version  TEXT,
    hardware_version  TEXT,
    attributes        TEXT NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_seen         INTEGER,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('admin', 'tenant', 'device')),
    hash          BLOB NOT NULL UNIQUE,             -- SHA-256 of the key; the key itself is never stored
    prefix        TEXT NOT NULL,
    tenant_id     INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
    device_pk     INTEGER REFERENCES devices(pk) ON DELETE CASCADE,
    scope         TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'ingest')),
    name          TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER,
    usage_count   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
CREATE INDEX api_keys_device ON api_keys (device_pk);

-- Key dictionary: the hot tables hold a small integer instead of the key name.
CREATE TABLE ts_keys (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

-- Each accepted message as sent.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    device_pk    INTEGER NOT NULL REFERENCES devices(pk) ON DELETE CASCADE,
    ts           INTEGER NOT NULL,
    type         TEXT NOT NULL,
    data         TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX messages_device_ts ON messages (device_pk, ts);
CREATE INDEX messages_ts ON messages (ts);

-- The hot table: narrow, clustered on its primary key, no second index.
CREATE TABLE points (
    device_pk  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    v_num      REAL,
    v_str      TEXT,
    v_bool     INTEGER,
    v_json     TEXT,
    PRIMARY KEY (device_pk, key_id, ts)
) WITHOUT ROWID;

-- Device memory: the newest value of every key of every device.
CREATE TABLE latest (
    device_pk  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    v_num      REAL,
    v_str      TEXT,
    v_bool     INTEGER,
    v_json     TEXT,
    PRIMARY KEY (device_pk, key_id)
) WITHOUT ROWID;

-- Points written per UTC day, kept by the writer so the dashboard never scans the hot table.
CREATE TABLE daily_counts (
    day       INTEGER PRIMARY KEY,                  -- days since the epoch
    messages  INTEGER NOT NULL DEFAULT 0,
    points    INTEGER NOT NULL DEFAULT 0
);
