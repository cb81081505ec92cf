-- How many days a tenant's raw points and messages are kept (NULL: for ever). Rollups are kept regardless.
ALTER TABLE tenants ADD COLUMN retention_days INTEGER;
