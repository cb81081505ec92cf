-- People who sign in: a tenant's users (tenant_id set, with a role) and platform admins (no tenant). The
-- e-mail is unique across the platform (the sign-in form has no tenant field), kept lower-cased. The password
-- is an argon2id hash, never the password.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    platform_admin  INTEGER NOT NULL DEFAULT 0,
    password_hash   TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,              -- microseconds since the epoch, UTC
    last_sign_in_at INTEGER,
    CHECK (platform_admin = 1 OR tenant_id IS NOT NULL)
);
CREATE INDEX users_tenant ON users (tenant_id, id);

-- A signed-in browser: the SHA-256 of the random session id its cookie holds (never the id itself), and the
-- times its idle and absolute expiry are counted from. Read at every request the session carries.
CREATE TABLE user_sessions (
    id_hash      BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX user_sessions_user ON user_sessions (user_id, created_at);
