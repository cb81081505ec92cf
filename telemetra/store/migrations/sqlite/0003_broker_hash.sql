-- The MQTT broker's own hash of a device key (Mosquitto's PBKDF2-SHA512 "$7$" line), computed while the
-- clear key is known (at creation or rotation) so that `telemetra mqtt-sync` can write the broker's
-- password file. NULL for keys that are not device keys and for device keys made before this column.
ALTER TABLE api_keys ADD COLUMN broker_hash TEXT;
