-- One counter that moves, in the same transaction, with every change of a key or a device that a process's
-- authentication cache may hold (a key revoked or given an expiry, a device changed or deleted). Every process
-- reads it about once a second and empties its cache when it moved: a change made through another process,
-- or by the `telemetra` command, is seen within about a second, whatever the cache's TTL.
CREATE TABLE credential_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO credential_epoch (id, value) VALUES (1, 0);
