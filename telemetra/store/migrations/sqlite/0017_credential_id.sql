-- A random id per password (new at every change), carried by the login tokens issued with it. The version
-- alone was not enough: it starts at 1 again for a device deleted and registered anew under the same id, and
-- a pk is no better here (SQLite gives a deleted highest rowid out again), so the deleted device's tokens
-- matched the new one's password. Existing passwords get an id of their own; tokens issued before, which
-- carry none, must log in again.
ALTER TABLE device_credentials ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
UPDATE device_credentials SET credential_id = lower(hex(randomblob(16)));
