-- Rate limits set for one tenant (device_pk NULL: the tenant's keys, and the default of its devices) or one
-- device, overriding the defaults of the settings. name: device, device_telemetry, tenant or batch;
-- rate: a `limits` rate such as '100/minute'. A scope's rows are replaced together.
CREATE TABLE rate_limit_overrides (
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_pk  INTEGER REFERENCES devices(pk) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    rate       TEXT NOT NULL
);
CREATE INDEX rate_limit_overrides_scope ON rate_limit_overrides (tenant_id, device_pk);
