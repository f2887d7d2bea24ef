-- Accounts: users, their settings and their bearer tokens.
-- Timestamps are milliseconds since the Unix epoch (UTC) in every backend,
-- so one set of queries reads them the same way.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Always stored lowercased: usernames are case-insensitive.
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    bio           TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    active        INTEGER NOT NULL DEFAULT 1,
    -- The user's settings as a JSON object; defaults are filled in by the app.
    settings      TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL
);

-- Emails are unique case-insensitively.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- BLAKE2 hash of the bearer token: a leaked database holds no usable token.
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE INDEX tokens_user ON tokens (user_id);
