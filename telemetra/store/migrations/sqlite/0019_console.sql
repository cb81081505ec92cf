-- The console's counters, and the directory its device list pages through.
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
-- The device list's keyset paging by id and its id and name prefixes use a table of their own, kept by
-- triggers (see the PostgreSQL migration: the writer's UPDATE of `devices` pays for every index there).
CREATE TABLE device_directory (
    pk         INTEGER PRIMARY KEY REFERENCES devices(pk) ON DELETE CASCADE,
    tenant_id  INTEGER NOT NULL,
    id         TEXT NOT NULL,
    name_key   TEXT NOT NULL
);
INSERT INTO device_directory SELECT pk, tenant_id, id, lower(name) FROM devices;
CREATE INDEX device_directory_id ON device_directory (tenant_id, id);
CREATE INDEX device_directory_name ON device_directory (tenant_id, name_key);
CREATE TRIGGER devices_directory_insert AFTER INSERT ON devices BEGIN
    INSERT OR REPLACE INTO device_directory (pk, tenant_id, id, name_key)
    VALUES (NEW.pk, NEW.tenant_id, NEW.id, lower(NEW.name));
END;
CREATE TRIGGER devices_directory_update AFTER UPDATE OF id, tenant_id, name ON devices BEGIN
    INSERT OR REPLACE INTO device_directory (pk, tenant_id, id, name_key)
    VALUES (NEW.pk, NEW.tenant_id, NEW.id, lower(NEW.name));
END;
CREATE TRIGGER devices_directory_delete AFTER DELETE ON devices BEGIN
    DELETE FROM device_directory WHERE pk = OLD.pk;
END;
