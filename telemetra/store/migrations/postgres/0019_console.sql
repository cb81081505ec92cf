-- The console's counters and the indexes of its device list.
-- Messages per tenant and minute (of their arrival), for the overview's last 24 hours; written by the writer
-- in the batch's transaction, a slot per writing connection as daily_counts does (no queue on one row);
-- kept two days (Store.apply_retention).
CREATE TABLE minute_counts (
    tenant_id  integer NOT NULL,
    minute     timestamptz NOT NULL,
    slot       smallint NOT NULL,
    messages   bigint NOT NULL,
    PRIMARY KEY (tenant_id, minute, slot)
);
-- Messages a device sent, added in the UPDATE of its row that every batch makes already (last_seen): no
-- index names it, so the update stays HOT.
ALTER TABLE devices ADD COLUMN messages_sent bigint NOT NULL DEFAULT 0;
-- Keyset paging of a tenant's devices by id (byte order), its id and name prefixes, and its filters.
CREATE INDEX devices_tenant_id ON devices (tenant_id, id COLLATE "C");
CREATE INDEX devices_tenant_name ON devices (tenant_id, lower(name) COLLATE "C");
CREATE INDEX devices_tenant_type ON devices (tenant_id, device_type, id COLLATE "C");
CREATE INDEX devices_tenant_status ON devices (tenant_id, status, id COLLATE "C");
CREATE INDEX devices_tenant_location ON devices (tenant_id, location, id COLLATE "C");
