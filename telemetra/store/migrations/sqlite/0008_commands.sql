-- Times are integer microseconds since the Unix epoch, UTC.
-- Commands to devices and their lifecycle; desired state; watches of seed 004's monitoring API.

-- How long a device stays online after it was last heard of; NULL: TELEMETRA_ONLINE_WINDOW_S.
ALTER TABLE devices ADD COLUMN offline_after_s INTEGER;
-- When the broker last reported the device's MQTT state (attributes.connection says which).
ALTER TABLE devices ADD COLUMN connection_at INTEGER;
-- The online status last announced as an event ('online', 'offline'; NULL: never): a change is claimed by
-- one conditional update, so with several processes each change is announced once.
ALTER TABLE devices ADD COLUMN presence TEXT;

CREATE TABLE commands (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_pk     INTEGER NOT NULL REFERENCES devices(pk) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    params        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'succeeded', 'failed', 'expired')),
    transport     TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    delivered_at  INTEGER,
    completed_at  INTEGER,
    result        TEXT
);
-- A device's pending commands in order, and the expiry sweep.
CREATE INDEX commands_device ON commands (device_pk, seq);
CREATE INDEX commands_open ON commands (expires_at) WHERE status IN ('queued', 'sent');

CREATE TABLE desired_state (
    device_pk   INTEGER PRIMARY KEY REFERENCES devices(pk) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE watches (
    device_pk        INTEGER PRIMARY KEY REFERENCES devices(pk) ON DELETE CASCADE,
    tenant_id        INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    registered_at    INTEGER NOT NULL,
    last_queried_at  INTEGER NOT NULL
);
CREATE INDEX watches_tenant ON watches (tenant_id, registered_at);
