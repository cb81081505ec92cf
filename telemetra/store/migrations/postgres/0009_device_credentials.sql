-- A device's password for seed 003's login (argon2id hash; the password itself is never stored). `version`
-- goes up at every change and is carried by the tokens issued with it, so a change revokes earlier tokens.
CREATE TABLE device_credentials (
    device_pk     integer PRIMARY KEY REFERENCES devices(pk) ON DELETE CASCADE,
    password_hash text NOT NULL,
    version       integer NOT NULL,
    changed_at    timestamptz NOT NULL
);
