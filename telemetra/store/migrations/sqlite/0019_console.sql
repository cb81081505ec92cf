-- The console's counters and the indexes of its device list.
-- Messages per tenant and minute (of their arrival, microseconds since the epoch), for the overview's last
-- 24 hours; written by the writer in the batch's transaction; kept two days (Store.apply_retention).
CREATE TABLE minute_counts (
    tenant_id  INTEGER NOT NULL,
    minute     INTEGER NOT NULL,
    messages   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, minute)
) WITHOUT ROWID;
-- Messages a device sent, added in the UPDATE of its row that every batch makes already (last_seen).
ALTER TABLE devices ADD COLUMN messages_sent INTEGER NOT NULL DEFAULT 0;
-- Keyset paging of a tenant's devices by id, its id and name prefixes, and its filters.
CREATE INDEX devices_tenant_id ON devices (tenant_id, id);
CREATE INDEX devices_tenant_name ON devices (tenant_id, lower(name));
CREATE INDEX devices_tenant_type ON devices (tenant_id, device_type, id);
CREATE INDEX devices_tenant_status ON devices (tenant_id, status, id);
CREATE INDEX devices_tenant_location ON devices (tenant_id, location, id);
