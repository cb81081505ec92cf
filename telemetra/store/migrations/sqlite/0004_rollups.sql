-- Times are integer microseconds since the Unix epoch, UTC, as everywhere in this database.
-- Rollups, written in the same transaction as the points they summarise (so they are never behind).
-- Hours are UTC hours; daily and coarser answers in a time zone are composed from them where the zone's
-- offset is a whole number of hours.

-- Numeric points per device, key and UTC hour: enough for count, mean, min, max, stddev, first, last.
CREATE TABLE rollup_hourly (
    device_pk  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    sum        REAL NOT NULL,
    sumsq      REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    first_ts   INTEGER NOT NULL,
    first_v    REAL NOT NULL,
    last_ts    INTEGER NOT NULL,
    last_v     REAL NOT NULL,
    PRIMARY KEY (device_pk, key_id, hour)
) WITHOUT ROWID;

-- Energy (Wh) of a power key per device and UTC hour: the integral of the power step function, each
-- value holding until the next one (at most the configured hold). covered_s: seconds of the hour with
-- a known value. The newest value's own step is still open and is added at query time.
CREATE TABLE energy_hourly (
    device_pk  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    wh         REAL NOT NULL,
    covered_s  REAL NOT NULL,
    PRIMARY KEY (device_pk, key_id, hour)
) WITHOUT ROWID;

-- The same summed over a tenant's devices, so that a month's report for a whole client reads 720 rows.
CREATE TABLE tenant_energy_hourly (
    tenant_id  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    wh         REAL NOT NULL,
    covered_s  REAL NOT NULL,
    PRIMARY KEY (tenant_id, key_id, hour)
) WITHOUT ROWID;
