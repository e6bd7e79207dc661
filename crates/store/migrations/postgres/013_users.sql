-- The people who sign in to the interface, and their sessions (docs/security.md,
-- "Authentication").
--
-- username_key is the username lower-cased: usernames are unique whatever their case, and
-- sign-in finds a user whatever case is typed. password_hash is an Argon2id PHC string (its
-- parameters and salt inside it). totp_secret is the base32 TOTP secret of an administrator who
-- enrolled a second factor; it has to be kept as is, since codes are computed from it.
-- totp_last_step is the time step of the last code accepted: a code is taken once.
-- failed_logins and locked_until are the sign-in lockout, kept here so that it holds across a
-- restart.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    organisation  TEXT,
    password_hash TEXT NOT NULL,
    totp_secret   TEXT,
    totp_last_step BIGINT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

-- A signed-in session. id_hash is the SHA-256 of the cookie's 256-bit secret and csrf_hash that
-- of the session's CSRF token: a copy of the database gives no one a working session. A session
-- ends at expires_at (the absolute timeout), after the idle timeout past last_seen_at, or when
-- revoked (signing out, the user disabled).
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    csrf_hash    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- API tokens may be scoped to an organisation (a carrier's integration sees its own data once
-- the permission matrix scopes data; unset, the token is the platform's own).
ALTER TABLE api_tokens ADD COLUMN organisation TEXT;
