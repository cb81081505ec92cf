-- Which process evaluates the rules of which devices: device pk modulo the number of shards names the shard,
-- and each shard is leased by one process at a time.
CREATE TABLE rule_shards (
    shard        INTEGER PRIMARY KEY,
    owner        TEXT,
    lease_until  INTEGER
);
WITH RECURSIVE n(shard) AS (SELECT 0 UNION ALL SELECT shard + 1 FROM n WHERE shard < 63)
INSERT INTO rule_shards (shard) SELECT shard FROM n;

-- The processes that take part, so that each can take its fair share of the shards.
CREATE TABLE rule_workers (
    owner       TEXT PRIMARY KEY,
    seen_until  INTEGER NOT NULL
);

-- Points committed by a process that does not own their device's shard, waiting for the shard's owner.
CREATE TABLE rule_inbox (
    id         INTEGER PRIMARY KEY,
    shard      INTEGER NOT NULL,
    device_pk  INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    key        TEXT NOT NULL,
    value      REAL NOT NULL
);
CREATE INDEX rule_inbox_shard ON rule_inbox (shard, id);
