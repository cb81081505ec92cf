-- A random id per password (new at every change), carried by the login tokens issued with it. The version
-- alone was not enough: it starts at 1 again for a device deleted and registered anew under the same id, so
-- the deleted device's tokens matched the new one's password. Existing passwords get an id of their own;
-- tokens issued before, which carry none, must log in again.
ALTER TABLE device_credentials ADD COLUMN credential_id text;
UPDATE device_credentials SET credential_id = replace(gen_random_uuid()::text, '-', '');
ALTER TABLE device_credentials ALTER COLUMN credential_id SET NOT NULL;
