-- The hourly statistics are no longer merged point by point in every batch: points with times before
-- `sealed_until` are (a late point is merged by its batch, as before), points from `sealed_until` on are
-- left raw, and the sealer adds a slice of them at a time (`Store.seal_rollups`), moving `sealed_until`
-- forward. Readers take rollup rows before it and aggregate raw points from it, in one statement.
CREATE TABLE rollup_seal (
    id            smallint PRIMARY KEY CHECK (id = 1),
    sealed_until  timestamptz NOT NULL
);
-- Every numeric point written so far is in rollup_hourly: start after its newest hour (or at this hour).
INSERT INTO rollup_seal
SELECT 1, coalesce(max(hour) + interval '1 hour', date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
FROM rollup_hourly;
-- The sealer reads the points of a time slice: a BRIN index finds them among the partition's pages
-- (points arrive roughly in time order) at a tiny fraction of a B-tree's cost on every insert.
CREATE INDEX points_ts_brin ON points USING brin (ts);
