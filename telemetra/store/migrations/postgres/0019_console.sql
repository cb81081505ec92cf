-- The console's counters, and the directory its device list pages through.
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
-- The device list's keyset paging by id (byte order) and its id and name prefixes use indexes of their own
-- table, not of `devices`: every batch updates its devices' rows, and an update that is not HOT (the page
-- is full) writes an entry in every index of the table; two more indexes there cost batch ingest about a
-- fifth with concurrent writers. A trigger keeps the directory; the writer's UPDATE names no column of it.
CREATE TABLE device_directory (
    pk         integer PRIMARY KEY REFERENCES devices(pk) ON DELETE CASCADE,
    tenant_id  integer NOT NULL,
    id         text NOT NULL,
    name_key   text NOT NULL
);
INSERT INTO device_directory SELECT pk, tenant_id, id, lower(name) FROM devices;
CREATE INDEX device_directory_id ON device_directory (tenant_id, id COLLATE "C");
CREATE INDEX device_directory_name ON device_directory (tenant_id, name_key COLLATE "C");
CREATE FUNCTION device_directory_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_directory (pk, tenant_id, id, name_key) VALUES (NEW.pk, NEW.tenant_id, NEW.id, lower(NEW.name))
    ON CONFLICT (pk) DO UPDATE SET tenant_id = excluded.tenant_id, id = excluded.id, name_key = excluded.name_key;
    RETURN NULL;
END
$$;
CREATE TRIGGER devices_directory AFTER INSERT OR UPDATE OF id, tenant_id, name ON devices
FOR EACH ROW EXECUTE FUNCTION device_directory_sync();
