-- The hourly statistics are no longer merged point by point in every batch: points with times before
-- `sealed_until` are (a late point is merged by its batch, as before), points from `sealed_until` on are
-- left raw, and the sealer adds a slice of them at a time (`Store.seal_rollups`), moving `sealed_until`
-- forward. Readers take rollup rows before it and aggregate raw points from it, in one statement.
-- Times are integer microseconds since the Unix epoch, UTC, as everywhere in this database.
CREATE TABLE rollup_seal (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    sealed_until  INTEGER NOT NULL
);
-- Every numeric point written so far is in rollup_hourly: start after its newest hour (or at this hour).
INSERT INTO rollup_seal
SELECT 1, coalesce(max(hour) + 3600000000,
                   (CAST((julianday('now') - 2440587.5) * 86400 AS INTEGER) / 3600) * 3600000000)
FROM rollup_hourly;
-- The sealer reads the points of a time slice.
CREATE INDEX points_ts ON points (ts);
