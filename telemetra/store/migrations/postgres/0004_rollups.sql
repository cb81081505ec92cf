-- Rollups, written in the same transaction as the points they summarise (so they are never behind).
-- Hours are UTC hours; daily and coarser answers in a time zone are composed from them where the zone's
-- offset is a whole number of hours.

-- Numeric points per device, key and UTC hour: enough for count, mean, min, max, stddev, first, last.
CREATE TABLE rollup_hourly (
    device_pk  integer NOT NULL,
    key_id     integer NOT NULL,
    hour       timestamptz NOT NULL,
    n          bigint NOT NULL,
    sum        double precision NOT NULL,
    sumsq      double precision NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    first_ts   timestamptz NOT NULL,
    first_v    double precision NOT NULL,
    last_ts    timestamptz NOT NULL,
    last_v     double precision NOT NULL,
    PRIMARY KEY (device_pk, key_id, hour)
);

-- Energy (Wh) of a power key per device and UTC hour: the integral of the power step function, each
-- value holding until the next one (at most the configured hold). covered_s: seconds of the hour with
-- a known value. The newest value's own step is still open and is added at query time.
CREATE TABLE energy_hourly (
    device_pk  integer NOT NULL,
    key_id     integer NOT NULL,
    hour       timestamptz NOT NULL,
    wh         double precision NOT NULL,
    covered_s  double precision NOT NULL,
    PRIMARY KEY (device_pk, key_id, hour)
);

-- The same summed over a tenant's devices, so that a month's report for a whole client reads 720 rows.
CREATE TABLE tenant_energy_hourly (
    tenant_id  integer NOT NULL,
    key_id     integer NOT NULL,
    hour       timestamptz NOT NULL,
    wh         double precision NOT NULL,
    covered_s  double precision NOT NULL,
    PRIMARY KEY (tenant_id, key_id, hour)
);
