-- Password reset codes (contract v1.5): an admin issues one for a user who
-- forgot their password; it is stored only as a hash, used once, and a
-- newer code replaces the user's older one (one row a user).
CREATE TABLE reset_codes (
    user_id    BIGINT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
